from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from vfxmatte.cli import main
from vfxmatte.io.image import write_image


def test_help_lists_the_subcommands(capsys) -> None:
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for name in ("info", "synth", "demo", "matte", "eval", "propagate", "panoptic", "train", "export"):
        assert name in out


def test_console_script_entry_point() -> None:
    result = subprocess.run([sys.executable, "-m", "vfxmatte", "--version"],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.startswith("vfxmatte ")


def test_info_reports_versions_and_backends(capsys) -> None:
    assert main(["info"]) == 0
    out = capsys.readouterr().out
    assert "OpenImageIO" in out and "devices: " in out and "cpu" in out
    for name in ("pymatting", "sam2", "spconv", "dask"):
        assert name in out


def test_matte_flags_are_generated_from_the_config(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["matte", "--help"])
    out = capsys.readouterr().out
    for flag in ("--matte.classical.band-fraction", "--propagate.flow.method", "--on-error",
                 "--mask-resize", "--outputs", "--overwrite", "--set", "--config"):
        assert flag in out


def test_train_with_a_missing_config_says_so(capsys) -> None:
    assert main(["train", "x.yaml"]) == 2
    assert "Cannot read the config file 'x.yaml'" in capsys.readouterr().err


def test_config_errors_are_one_sentence(tmp_path, capsys) -> None:
    code = main(["matte", "p.####.exr", "--set", "matte.clasical.band_fraction=1"])
    err = capsys.readouterr().err
    assert code == 2 and "Unknown option 'matte.clasical'" in err and "Did you mean 'classical'" in err
    code = main(["matte", str(tmp_path / "none.####.exr"), "-m", "m.png", "-o", "o.####.exr"])
    assert code == 2 and "No file matches" in capsys.readouterr().err


def test_synth_and_eval(tmp_path, capsys) -> None:
    assert main(["synth", str(tmp_path / "s"), "--width", "96", "--height", "64", "--frames", "3",
                 "--objects", "2"]) == 0
    assert (tmp_path / "s" / "plate" / "plate.1003.exr").is_file()
    gt = str(tmp_path / "s" / "gt" / "alpha.####.exr")
    capsys.readouterr()
    assert main(["eval", gt, gt]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:3] == ["frame", "SAD", "MSE"]
    assert table[-1].split()[:3] == ["mean", "0", "0"]
    for f in (1, 2):
        write_image(tmp_path / f"p.{f:04d}.exr", np.full((8, 8, 1), 0.5, np.float32), ["A"])
        write_image(tmp_path / f"g.{f:04d}.exr", np.ones((8, 8, 1), np.float32), ["A"])
    assert main(["eval", str(tmp_path / "p.####.exr"), str(tmp_path / "g.####.exr")]) == 0
    mean = capsys.readouterr().out.splitlines()[-1].split()
    assert mean[0] == "mean" and float(mean[1]) == pytest.approx(0.032)  # 64 * 0.5 / 1000


def test_demo_runs_end_to_end(tmp_path, capsys) -> None:
    code = main(["demo", str(tmp_path / "d"), "--width", "160", "--height", "96", "--frames", "4"])
    out = capsys.readouterr().out
    assert code == 0, out
    assert "guidance mask" in out and "SAD" in out and "dtSSD" in out
    assert (tmp_path / "d" / "montage.1003.png").is_file()
    assert (tmp_path / "d" / "matte" / "shot.1004.exr").is_file()
