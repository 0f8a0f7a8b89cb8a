"""The ``snapcut`` backend in the engine: the local loop, the propagation phase, the drift report."""

from __future__ import annotations

import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.errors import ConfigError
from vfxmatte.io.image import read_image
from vfxmatte.synth import ShotSpec, write_shot
from vfxmatte.worker.protocol import report_data


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    spec = ShotSpec(width=160, height=96, frames=5, seed=3, speed=2.0, supersample=2)
    return write_shot(tmp_path_factory.mktemp("shot"), spec)


def _config(shot, out, **kw) -> PipelineConfig:
    config = PipelineConfig(plate=shot.plate, mask=shot.mask, output=str(out / "m.####.exr"), **kw)
    config.engine.progress = False
    config.output_options.kinds = "alpha"
    config.propagate.backend = "snapcut"
    return config


def test_local_run_reports_drift_for_every_frame(shot, tmp_path):
    report = run_pipeline(_config(shot, tmp_path))
    assert report.ok and report.written == list(range(1001, 1006))
    confidence = report.drift.confidence()
    assert sorted(confidence) == list(range(1001, 1006))
    assert confidence[1001] == 1.0  # the keyframe
    assert all(0.0 <= c <= 1.0 for c in confidence.values())
    data = report_data(report)
    assert set(data["drift"]["frames"]) == {str(n) for n in range(1001, 1006)}
    assert data["drift_summary"].startswith("propagation drift:")


def test_propagation_phase_gives_the_same_guidance_and_drift(shot, tmp_path):
    local = _config(shot, tmp_path / "a", guidance_output=str(tmp_path / "a" / "g.####.exr"))
    a = run_pipeline(local)
    phase = _config(shot, tmp_path / "b", guidance_output=str(tmp_path / "b" / "g.####.exr"))
    phase.engine.phase = "propagate"
    b = run_pipeline(phase)
    assert a.ok and b.ok
    for n in range(1001, 1006):
        ga = read_image(tmp_path / "a" / f"g.{n}.exr").pixels
        gb = read_image(tmp_path / "b" / f"g.{n}.exr").pixels
        assert (ga == gb).all()
    assert a.drift.confidence() == b.drift.confidence()


def test_matte_feed_is_refused_for_a_propagation_phase(shot, tmp_path):
    config = _config(shot, tmp_path, guidance_output=str(tmp_path / "g.####.exr"))
    config.propagate.snapcut.feed = "matte"
    config.engine.phase = "propagate"
    with pytest.raises(ConfigError, match="propagate.snapcut.feed=matte"):
        run_pipeline(config)


def test_propagate_cli_with_snapcut_writes_one_layer_per_object(shot, tmp_path, capsys):
    from vfxmatte.cli import main

    code = main(["propagate", shot.plate, "-m", shot.mask, "-m", shot.mask, "-o",
                 str(tmp_path / "g.####.exr"), "--key-frame", "1003",
                 "--propagate.backend", "snapcut"])  # fmt: skip
    assert code == 0 and "wrote guidance for 5 frame(s)" in capsys.readouterr().out
    g = read_image(tmp_path / "g.1005.exr").pixels
    assert g[..., 0].max() == 1.0
    assert (g[..., 0] == g[..., 1]).all()


def test_a_later_keyframe_is_blended_the_same_in_the_loop_and_the_phase(shot, tmp_path):
    """With a second keyframe (here 4 px larger than the first, at frame 1005) the frames
    between take some of it (they are unchanged with ``blend_keys`` off), and the local
    loop and a propagation phase give the same guidance."""
    import cv2
    import numpy as np

    from vfxmatte.io.image import write_image

    key = read_image(shot.mask).pixels[..., 0]
    larger = cv2.dilate((key > 0.5).astype(np.uint8), np.ones((9, 9), np.uint8))
    write_image(tmp_path / "key1005.exr", larger.astype(np.float32)[..., None], ["A"])
    guides = {}
    for name, blend, phase in (
        ("off", False, "all"),
        ("loop", True, "all"),
        ("phase", True, "propagate"),
    ):
        out = tmp_path / name
        config = _config(
            shot, out, keyframes=f"1005={tmp_path / 'key1005.exr'}",
            guidance_output=str(out / "g.####.exr"),
        )  # fmt: skip
        config.propagate.snapcut.blend_keys = blend
        config.engine.phase = phase
        assert run_pipeline(config).ok
        guides[name] = [read_image(out / f"g.{n}.exr").pixels[..., 0] for n in range(1001, 1006)]
    for a, b in zip(guides["loop"], guides["phase"], strict=True):
        assert (a == b).all()
    grown = [float(b.sum() - a.sum()) for a, b in zip(guides["off"], guides["loop"], strict=True)]
    assert grown[0] == 0 and grown[3] > 0, (
        grown
    )  # the first keyframe, and the frame before the second
