"""The bad-output cases of issue 15 through ``vfxmatte`` itself: one sentence, exit 2,
no traceback, no input file changed (the table in notes/i15-writes.md)."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from vfxmatte.cli import main
from vfxmatte.synth import ShotSpec, write_shot


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = ShotSpec(width=48, height=32, frames=3, seed=11, speed=2.0, supersample=1)
    return write_shot(tmp_path_factory.mktemp("tiny"), spec)


@pytest.fixture
def here(tiny, tmp_path, monkeypatch) -> Path:
    """A copy of the shot as the working folder: plates/p.####.exr, p_alpha.####.exr, m.1001.png."""
    (tmp_path / "plates").mkdir()
    for f in (1001, 1002, 1003):
        source = tiny.plate.replace("####", str(f))
        shutil.copy(source, tmp_path / "plates" / f"p.{f}.exr")
        shutil.copy(source, tmp_path / "plates" / f"p_alpha.{f}.exr")
    shutil.copy(tiny.mask, tmp_path / "m.1001.png")
    (tmp_path / "job.yaml").write_text("output_options: {dtype: half}\n")
    (tmp_path / "afile").write_text("not a folder")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


CASES = {
    "same pattern": (["matte", "plates/p.####.exr", "-m", "m.1001.png", "-o", "plates/p.####.exr"],
                     "The rgba output frame 1001 'plates/p.1001.exr' is the plate frame 1001"),
    "printf spelling, --overwrite": (
        ["matte", "plates/p.####.exr", "-m", "m.1001.png", "-o", "plates/p.%04d.exr", "--overwrite"],
        "'plates/p.1001.exr' is the plate frame 1001 'plates/p.1001.exr' (and 2 more"),
    "derived <name>_alpha": (
        ["matte", "plates/p_alpha.####.exr", "-m", "m.1001.png", "-o", "plates/p.####.exr",
         "--outputs", "rgba,alpha"], "The alpha output frame 1001 'plates/p_alpha.1001.exr'"),
    "output on the mask": (
        ["matte", "plates/p.####.exr", "-m", "m.1001.png", "-o", "m.####.png"],
        "The rgba output frame 1001 'm.1001.png' is the mask 'm.1001.png'"),
    "output on the YAML config": (
        ["matte", "plates/p.####.exr", "-m", "m.1001.png", "-o", "job.####.yaml",
         "--config", "job.1001.yaml"], "is the config file 'job.1001.yaml'"),
    "under a regular file": (
        ["matte", "plates/p.####.exr", "-m", "m.1001.png", "-o", "afile/x.####.exr"],
        "'afile' is a file, not a folder"),
    "linear rgba as PNG": (
        ["matte", "plates/p.####.exr", "-m", "m.1001.png", "-o", "o/x.####.png"],
        "png file, which holds 8-bit display values"),
    "farm-split on the plate": (
        ["farm-split", "plates/p.####.exr", "-m", "m.1001.png", "-o", "plates/p.####.exr"],
        "is the plate frame 1001"),
    "propagate onto the plate": (
        ["propagate", "plates/p.####.exr", "-m", "m.1001.png", "-o", "plates/p.####.exr"],
        "The guidance output frame 1001 'plates/p.1001.exr' is the plate frame 1001"),
    "panoptic onto the plate": (
        ["panoptic", "plates/p.####.exr", "--instances", "plates", "-o", "plates/p.####.exr"],
        "is the plate frame 1001"),
}  # fmt: skip


@pytest.mark.parametrize("case", list(CASES))
def test_a_bad_output_is_one_sentence_and_no_input_changes(here, capsys, case) -> None:
    argv, sentence = CASES[case]
    if "job.1001.yaml" in argv:
        shutil.copy("job.yaml", "job.1001.yaml")
    before = _digests(here)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert sentence in err, err
    assert "Traceback" not in err and err.count("\n") == 1
    assert _digests(here) == before
