from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.errors import InputError
from vfxmatte.io.colour import linear_to_srgb
from vfxmatte.io.image import probe_image, read_image, write_image
from vfxmatte.io.sequence import FramePattern
from vfxmatte.io.timecode import pack_timecode
from vfxmatte.io.video_write import write_video


def _config(plate: str, mask: str, out, **kw) -> PipelineConfig:
    config = PipelineConfig(plate=plate, mask=mask, output=str(out / "m.####.exr"), **kw)
    config.engine.progress = False
    config.output_options.kinds = "alpha"
    return config


def test_static_backend_uses_the_key_mask_everywhere(small_shot, tmp_path) -> None:
    config = _config(small_shot.plate, small_shot.mask, tmp_path, guidance_output=str(tmp_path / "g.####.exr"))
    config.propagate.backend = "static"
    assert run_pipeline(config).ok
    key = read_image(tmp_path / "g.1001.exr").pixels
    for f in range(1002, 1007):
        np.testing.assert_array_equal(read_image(tmp_path / f"g.{f}.exr").pixels, key)


def test_given_backend_reads_a_mask_per_frame(small_shot, tmp_path) -> None:
    gt = FramePattern.parse(small_shot.alpha)
    for f in range(1001, 1007):
        a = read_image(gt.path(f)).pixels
        write_image(tmp_path / f"roto.{f}.exr", (a > 0.5).astype(np.float32), ["A"])
    config = _config(small_shot.plate, str(tmp_path / "roto.####.exr"), tmp_path / "o",
                     guidance_output=str(tmp_path / "g.####.exr"))
    config.propagate.backend = "given"
    assert run_pipeline(config).ok
    for f in (1001, 1004):
        np.testing.assert_array_equal(read_image(tmp_path / f"g.{f}.exr").pixels,
                                      read_image(tmp_path / f"roto.{f}.exr").pixels)
    (tmp_path / "roto.1005.exr").unlink()
    with pytest.raises(InputError, match=r"lacks frame\(s\) 1005"):
        run_pipeline(config)


def test_video_plate_end_to_end(small_shot, tmp_path) -> None:
    plate = FramePattern.parse(small_shot.plate)
    frames = [np.clip(linear_to_srgb(read_image(plate.path(f)).pixels), 0, 1) for f in range(1001, 1005)]
    write_video(tmp_path / "plate.mov", frames, fps=24, codec="prores_ks", timecode="01:00:00:00")
    config = _config(str(tmp_path / "plate.mov"), small_shot.mask, tmp_path / "v")
    config.output_options.kinds = "rgba"
    config.input.first_frame = 1001
    report = run_pipeline(config)
    assert report.written == [1001, 1002, 1003, 1004]
    meta = probe_image(tmp_path / "v" / "m.1001.exr").metadata
    assert meta["framesPerSecond"] == (24, 1)
    assert meta["smpte:TimeCode"] == pack_timecode(1, 0, 0, 0)
    assert probe_image(tmp_path / "v" / "m.1003.exr").metadata["smpte:TimeCode"] == pack_timecode(1, 0, 0, 2)
    # The video is sRGB; the RGBA written out is linear (premultiplied).
    rgba = read_image(tmp_path / "v" / "m.1001.exr").pixels
    gt = read_image(FramePattern.parse(small_shot.alpha).path(1001)).pixels[..., 0]
    mask = read_image(small_shot.mask).pixels[..., 0]
    assert np.abs(rgba[..., 3] - gt).mean() < np.abs(mask - gt).mean()
