from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.cli import main
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.io.image import probe_image, read_image


def test_propagate_cli_writes_one_layer_per_object(small_shot, tmp_path, capsys) -> None:
    code = main(["propagate", small_shot.plate, "-m", small_shot.mask, "-m", small_shot.mask,
                 "-o", str(tmp_path / "g.####.exr"), "--key-frame", "1001"])
    assert code == 0 and "wrote guidance for 6 frame(s)" in capsys.readouterr().out
    assert probe_image(tmp_path / "g.1004.exr").channels == ("obj1.A", "obj2.A")
    g = read_image(tmp_path / "g.1004.exr").pixels
    np.testing.assert_array_equal(g[..., 0], g[..., 1])  # same mask, same result, kept apart
    # The guidance then drives matting frame by frame (what a farm chunk does).
    config = PipelineConfig(plate=small_shot.plate, mask=str(tmp_path / "g.####.exr"),
                            output=str(tmp_path / "o" / "m.####.exr"), frames="1004-1005")
    config.propagate.backend = "given"
    config.input.mask_channel = "obj2.A"
    config.engine.progress = False
    assert run_pipeline(config).written == [1004, 1005]


def test_engine_runs_sam2_as_a_first_phase_and_resumes(small_shot, tmp_path) -> None:
    pytest.importorskip("sam2")
    config = PipelineConfig(plate=small_shot.plate, mask=small_shot.mask,
                            output=str(tmp_path / "m.####.exr"), frames="1001-1004")
    config.propagate.backend = "sam2"
    config.propagate.sam2.random_weights = True
    config.propagate.sam2.image_size = 256
    config.engine.progress = False
    events = []
    report = run_pipeline(config, on_progress=events.append)
    assert report.written == [1001, 1002, 1003, 1004]
    # The SAM 2 pass reports each propagated frame before the matting pass reports its own.
    statuses = [(e.status, e.done, e.total) for e in events]
    assert statuses[:4] == [("propagated", i, 4) for i in range(1, 5)]
    assert statuses[4:] == [("written", i, 4) for i in range(1, 5)]
    guide = tmp_path / "guidance" / "m_guidance.1003.exr"
    assert probe_image(guide).channels == ("A",)
    stamp = guide.stat().st_mtime_ns
    again = run_pipeline(config)
    assert again.reused == [1001, 1002, 1003, 1004] and guide.stat().st_mtime_ns == stamp


def test_a_cancel_during_the_sam2_pass_stops_before_matting(small_shot, tmp_path) -> None:
    pytest.importorskip("sam2")
    config = PipelineConfig(plate=small_shot.plate, mask=small_shot.mask,
                            output=str(tmp_path / "m.####.exr"), frames="1001-1004")
    config.propagate.backend = "sam2"
    config.propagate.sam2.random_weights = True
    config.propagate.sam2.image_size = 256
    config.engine.progress = False
    events = []
    report = run_pipeline(
        config, on_progress=events.append, should_cancel=lambda: len(events) >= 2
    )
    assert report.cancelled and not report.ok and report.written == []
    assert [e.status for e in events] == ["propagated", "propagated"]
    assert not list(tmp_path.glob("m.*.exr"))  # nothing matted
    # A later run propagates again (the guidance is incomplete) and finishes.
    again = run_pipeline(config)
    assert again.written == [1001, 1002, 1003, 1004]
    assert report.outputs == again.outputs and report.outputs
