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
    report = run_pipeline(config)
    assert report.written == [1001, 1002, 1003, 1004]
    guide = tmp_path / "guidance" / "m_guidance.1003.exr"
    assert probe_image(guide).channels == ("A",)
    stamp = guide.stat().st_mtime_ns
    again = run_pipeline(config)
    assert again.reused == [1001, 1002, 1003, 1004] and guide.stat().st_mtime_ns == stamp
