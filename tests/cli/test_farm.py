"""``vfxmatte farm-split`` and ``vfxmatte matte --guidance``: a shot split into farm jobs."""

from __future__ import annotations

import json
import shlex

import numpy as np
import pytest

from vfxmatte.cli import build_parser, main
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.io.image import read_image
from vfxmatte.synth import ShotSpec, write_shot

FRAMES = list(range(1001, 1006))


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    spec = ShotSpec(width=128, height=80, frames=5, seed=5, speed=2.0)
    return write_shot(tmp_path_factory.mktemp("farmshot"), spec)


@pytest.fixture(scope="module")
def local(shot, tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    config = PipelineConfig(plate=shot.plate, mask=shot.mask, output=str(out / "m.####.exr"))
    config.output_options.kinds = "rgba,alpha"
    config.matte.classical.band_fraction = 0.05
    config.engine.progress = False
    assert run_pipeline(config).written == FRAMES
    return out


def _split(capsys, shot, out, *extra) -> str:
    code = main(
        [
            "farm-split",
            shot.plate,
            "-m",
            shot.mask,
            "-o",
            str(out / "m.####.exr"),
            "--outputs",
            "rgba,alpha",
            "--set",
            "matte.classical.band_fraction=0.05",
            "--chunk-size",
            "2",
            "--overlap",
            "1",
            *extra,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return captured.out


def test_farm_split_jobs_reproduce_the_local_run(shot, local, tmp_path, capsys) -> None:
    out = tmp_path / "farm"
    plan = json.loads(_split(capsys, shot, out, "--json"))
    jobs = plan["jobs"]
    assert [j["name"] for j in jobs] == ["propagate", "chunk-001", "chunk-002", "chunk-003"]
    assert [j["frames"] for j in jobs] == ["1001-1005", "1001-1002", "1003-1004", "1005"]
    assert jobs[0]["depends_on"] == [] and all(j["depends_on"] == ["propagate"] for j in jobs[1:])
    assert plan["guidance"] == str(out / "guidance" / "m_guidance.####.exr")
    assert "--phase" in jobs[0]["argv"] and "--matte.classical.band-fraction" not in jobs[0]["argv"]
    # The plain form holds the same commands, one shell line each.
    lines = _split(capsys, shot, out).splitlines()
    commands = [shlex.split(line) for line in lines if not line.startswith("#")]
    assert commands == [j["argv"] for j in jobs]
    assert all(shlex.split(j["command"]) == j["argv"] for j in jobs)
    # Chunks first: they refuse to run without the propagation job's guidance.
    assert main(jobs[2]["argv"][1:]) == 2
    err = capsys.readouterr().err
    assert "lacks 2 frame(s): 1003-1004; run the propagation job first" in err
    for job in jobs:  # the propagation job, then the chunks in any order
        assert job["argv"][0] == "vfxmatte"
        build_parser().parse_args(job["argv"][1:])
    for job in [jobs[0], *reversed(jobs[1:])]:
        assert main(job["argv"][1:]) == 0, capsys.readouterr().err
    for f in FRAMES:
        for name in ("m", "m_alpha"):
            np.testing.assert_array_equal(
                read_image(out / f"{name}.{f}.exr").pixels,
                read_image(local / f"{name}.{f}.exr").pixels,
            )
    # Every job again: nothing is redone.
    for job in jobs:
        assert main(job["argv"][1:]) == 0
        assert " 0 frame(s) written" in capsys.readouterr().out


def test_farm_split_with_given_masks_has_no_propagation_job(shot, tmp_path, capsys) -> None:
    out = _split(
        capsys,
        shot,
        tmp_path,
        "--propagate.backend",
        "given",
        "--program",
        "/opt/venv/bin/python -m vfxmatte",
        "--json",
    )
    jobs = json.loads(out)["jobs"]
    assert [j["name"] for j in jobs] == ["chunk-001", "chunk-002", "chunk-003"]
    assert all(j["depends_on"] == [] for j in jobs)
    argv = jobs[0]["argv"]
    assert argv[:4] == ["/opt/venv/bin/python", "-m", "vfxmatte", "matte"]
    assert argv[argv.index("--guidance") + 1] == shot.mask
    assert "--propagate.backend" not in argv


def test_farm_split_errors(shot, tmp_path, capsys) -> None:
    code = main(
        [
            "farm-split",
            shot.plate,
            "-m",
            shot.mask,
            "-o",
            str(tmp_path / "m.####.exr"),
            "--set",
            "propagate.backend=flow",
            "--set",
            "propagate.flow.feed=matte",
        ]
    )
    assert code == 2 and "feed=matte" in capsys.readouterr().err
    code = main(["farm-split", shot.plate, "-m", shot.mask, "-o", str(tmp_path / "m.exr")])
    assert code == 2 and "has no frame token" in capsys.readouterr().err
    code = main(
        ["matte", shot.plate, "-o", str(tmp_path / "m.####.exr"), "--set", "engine.executor=dsak"]
    )
    assert code == 2 and "Did you mean 'dask'" in capsys.readouterr().err


def test_matte_has_the_scale_out_flags(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["matte", "--help"])
    out = capsys.readouterr().out
    for flag in (
        "--executor",
        "--scheduler",
        "--workers",
        "--chunk-size",
        "--overlap",
        "--guidance",
        "--phase",
    ):
        assert flag in out
