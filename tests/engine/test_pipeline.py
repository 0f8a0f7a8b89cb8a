from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import plan_passes, run_pipeline
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.image import probe_image, read_image, write_image
from vfxmatte.io.sequence import FramePattern


def _config(shot, out, **kwargs) -> PipelineConfig:
    config = PipelineConfig(plate=shot.plate, mask=shot.mask, output=str(out / "m.####.exr"))
    config.engine.progress = False
    for key, value in kwargs.items():
        section, _, name = key.partition("__")
        if name:
            setattr(getattr(config, section), name, value)
        else:
            setattr(config, key, value)
    return config


def _pixels(pattern: str, frames) -> list[np.ndarray]:
    p = FramePattern.parse(pattern)
    return [read_image(p.path(f)).pixels for f in frames]


FRAMES = list(range(1001, 1007))


def test_plan_passes() -> None:
    assert plan_passes([1, 2, 3, 4, 5], 1) == [[1, 2, 3, 4, 5]]
    assert plan_passes([1, 2, 3, 4, 5], 3) == [[3, 4, 5], [3, 2, 1]]


def test_every_output_kind_and_channel_names(small_shot, tmp_path) -> None:
    config = _config(small_shot, tmp_path, output_options__kinds="rgba,alpha,fg,confidence,multilayer",
                     output_options__preview="checker", frames="1001-1002")
    report = run_pipeline(config)
    assert report.ok and report.written == [1001, 1002]
    expected = {
        "m.1001.exr": ("R", "G", "B", "A"),
        "m_alpha.1001.exr": ("A",),
        "m_fg.1001.exr": ("R", "G", "B"),
        "m_confidence.1001.exr": ("Y",),
        "m_multilayer.1001.exr": ("R", "G", "B", "A", "confidence.Y", "fg.R", "fg.G", "fg.B", "matte.A"),
    }
    for name, channels in expected.items():
        assert set(probe_image(tmp_path / name).channels) == set(channels), name
    ml = read_image(tmp_path / "m_multilayer.1001.exr", "RGBA").pixels
    fg = read_image(tmp_path / "m_multilayer.1001.exr", "fg").pixels
    alpha = read_image(tmp_path / "m_multilayer.1001.exr", "matte.A").pixels[..., 0]
    # Premultiplied: RGB = alpha * straight fg (half precision).
    np.testing.assert_allclose(ml[..., :3], fg * alpha[..., None], atol=2e-3, rtol=2e-3)
    np.testing.assert_array_equal(ml[..., 3], alpha)
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    assert (tmp_path / "preview" / "m.1001.png").is_file()
    meta = probe_image(tmp_path / "m.1001.exr").metadata
    assert meta["framesPerSecond"] == (24, 1) and "smpte:TimeCode" in meta


def test_resume_after_cancel_gives_identical_outputs(small_shot, tmp_path) -> None:
    full = tmp_path / "full"
    run_pipeline(_config(small_shot, full, output_options__kinds="rgba,confidence"))
    part = tmp_path / "part"
    config = _config(small_shot, part, output_options__kinds="rgba,confidence")
    seen: list[int] = []
    report = run_pipeline(config, on_progress=lambda e: seen.append(e.number),
                          should_cancel=lambda: len(seen) >= 3)
    assert report.cancelled and report.written == [1001, 1002, 1003]
    report = run_pipeline(config)
    assert report.reused == [1001, 1002, 1003] and report.written == [1004, 1005, 1006]
    for kind in ("m", "m_confidence"):
        for a, b in zip(_pixels(str(full / f"{kind}.####.exr"), FRAMES),
                        _pixels(str(part / f"{kind}.####.exr"), FRAMES), strict=True):
            np.testing.assert_array_equal(a, b)
    report = run_pipeline(_config(small_shot, part, engine__overwrite=True))
    assert report.written == FRAMES


def test_resume_with_matte_feedback_is_identical(small_shot, tmp_path) -> None:
    kwargs = {"output_options__kinds": "rgba"}
    full, part = tmp_path / "full", tmp_path / "part"
    cfg_full = _config(small_shot, full, **kwargs)
    cfg_full.propagate.flow.feed = "matte"
    run_pipeline(cfg_full)
    cfg_part = _config(small_shot, part, **kwargs)
    cfg_part.propagate.flow.feed = "matte"
    n = []
    run_pipeline(cfg_part, on_progress=lambda e: n.append(1), should_cancel=lambda: len(n) >= 2)
    run_pipeline(cfg_part)
    for a, b in zip(_pixels(str(full / "m.####.exr"), FRAMES),
                    _pixels(str(part / "m.####.exr"), FRAMES), strict=True):
        np.testing.assert_array_equal(a, b)


def test_killed_run_resumes(small_shot, tmp_path) -> None:
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "vfxmatte", "matte", small_shot.plate, "--mask", small_shot.mask,
           "-o", str(out / "m.####.exr"), "--no-engine.progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and not (out / "m.1002.exr").exists():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = sorted(n for n in os.listdir(out) if not n.startswith("."))
    assert 1 <= len(done) < 6
    # Whatever the kill left is either a complete frame or a hidden temporary file.
    for name in done:
        read_image(out / name)
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "already done" in result.stdout
    reference = tmp_path / "ref"
    run_pipeline(_config(small_shot, reference))
    for a, b in zip(_pixels(str(reference / "m.####.exr"), FRAMES),
                    _pixels(str(out / "m.####.exr"), FRAMES), strict=True):
        np.testing.assert_array_equal(a, b)


def _plate_with_nan(shot, tmp_path) -> str:
    folder = tmp_path / "plate"
    folder.mkdir()
    src = FramePattern.parse(shot.plate)
    for f in FRAMES:
        frame = read_image(src.path(f))
        pixels = frame.pixels.copy()
        if f == 1003:
            pixels[10, 10, 0] = np.nan
        write_image(folder / f"p.{f}.exr", pixels, list(frame.channels), dtype="float")
    return str(folder / "p.####.exr")


def test_on_error_skip_and_stop(small_shot, tmp_path) -> None:
    plate = _plate_with_nan(small_shot, tmp_path)
    config = _config(small_shot, tmp_path / "skip", plate=plate, engine__on_error="skip")
    report = run_pipeline(config)
    assert list(report.failed) == [1003] and "NaN" in report.failed[1003]
    assert report.written == [1001, 1002, 1004, 1005, 1006] and not report.ok
    assert not (tmp_path / "skip" / "m.1003.exr").exists()
    with pytest.raises(InputError, match=r"Frame 1003 .* NaN or infinite"):
        run_pipeline(_config(small_shot, tmp_path / "stop", plate=plate))
    cli = subprocess.run(
        [sys.executable, "-m", "vfxmatte", "matte", plate, "--mask", small_shot.mask, "-o",
         str(tmp_path / "cli" / "m.####.exr"), "--on-error", "skip", "--frames", "1002-1003"],
        capture_output=True, text=True, timeout=300)
    assert cli.returncode == 1 and "frame 1003 failed" in cli.stderr


def test_mask_of_wrong_size(small_shot, tmp_path) -> None:
    mask = read_image(small_shot.mask).pixels
    write_image(tmp_path / "big.png", np.kron(mask, np.ones((2, 2, 1), np.float32)),
                ["R", "G", "B"][: mask.shape[2]] if mask.shape[2] == 3 else ["Y"], dtype="uint8")
    config = _config(small_shot, tmp_path / "o", mask=str(tmp_path / "big.png"), frames="1001-1002")
    with pytest.raises(InputError, match="is 320x192 but the plate is 160x96; .*--mask-resize"):
        run_pipeline(config)
    config.input.mask_resize = True
    assert run_pipeline(config).written == [1001, 1002]


def test_empty_and_full_masks(small_shot, tmp_path) -> None:
    write_image(tmp_path / "empty.png", np.zeros((96, 160, 1), np.float32), ["Y"], dtype="uint8")
    with pytest.raises(InputError, match="is empty"):
        run_pipeline(_config(small_shot, tmp_path / "e", mask=str(tmp_path / "empty.png")))
    write_image(tmp_path / "full.png", np.ones((96, 160, 1), np.float32), ["Y"], dtype="uint8")
    config = _config(small_shot, tmp_path / "f", mask=str(tmp_path / "full.png"),
                     frames="1001-1002", output_options__kinds="alpha")
    assert run_pipeline(config).ok
    alpha = read_image(tmp_path / "f" / "m.1001.exr").pixels
    assert alpha.min() == 1.0


def test_keyframe_in_the_middle_and_config_errors(small_shot, tmp_path) -> None:
    config = _config(small_shot, tmp_path / "k", key_frame=1001, keyframes=f"1004={small_shot.mask}")
    assert run_pipeline(config).written == FRAMES
    config = _config(small_shot, tmp_path / "k2", key_frame=1003)
    order: list[int] = []
    run_pipeline(config, on_progress=lambda e: order.append(e.number))
    assert order == [1003, 1004, 1005, 1006, 1002, 1001]
    with pytest.raises(ConfigError, match="keyframe 999 is not among the frames"):
        run_pipeline(_config(small_shot, tmp_path / "k3", key_frame=999))
    with pytest.raises(ConfigError, match="no frame token"):
        run_pipeline(_config(small_shot, tmp_path, output=str(tmp_path / "out.exr")))
