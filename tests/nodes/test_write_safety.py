"""Matte Shot never writes its plate or masks (ComfyUI's input and output folders may be one)."""

from __future__ import annotations

import hashlib
import shutil

import pytest
import torch

from vfxmatte.errors import InputOverwriteError
from vfxmatte.io.mask import read_mask


def _digest(folder) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.fixture
def shared(comfy, shot):
    """ComfyUI set up with one folder for inputs and outputs, the plate in ``plates/``."""
    comfy.input_dir = comfy.output_dir
    shutil.copytree(shot.frame(shot.plate, 1001).rsplit("/", 1)[0], comfy.output_dir / "plates")
    shutil.copy(shot.mask, comfy.output_dir / "key.1001.png")
    return comfy.output_dir


def test_matte_shot_onto_its_own_plate_is_refused(nodes, shared) -> None:
    (plate,) = nodes["VfxMatte.OpenPlate"]().open(plate="plates/plate.####.exr")[:1]
    before = _digest(shared)
    for output, extra in (
        ("plates/plate.####.exr", {}),
        ("plates/plate.%04d.exr", {"engine_overwrite": True}),
        ("key.####.png", {"output_options_kinds": "alpha"}),
    ):
        with pytest.raises(InputOverwriteError, match=r"is the (plate frame 1001|mask)"):
            nodes["VfxMatte.MatteShot"]().run(
                plate=plate, output=output, mask="key.1001.png", **extra
            )
    assert _digest(shared) == before


def test_a_saved_key_mask_never_lands_on_a_plate_frame(nodes, shared, shot) -> None:
    keyframes = shared / "k" / "keyframes"
    keyframes.mkdir(parents=True)
    for f in range(1001, 1006):
        shutil.copy(shared / "plates" / f"plate.{f}.exr", keyframes / f"m_key.{f}.exr")
    (plate,) = nodes["VfxMatte.OpenPlate"]().open(plate="k/keyframes/m_key.####.exr")[:1]
    mask = torch.from_numpy(read_mask(shot.mask))[None]
    before = _digest(shared)
    with pytest.raises(InputOverwriteError, match="key mask of frame 1001 .* is the plate frame"):
        nodes["VfxMatte.MatteShot"]().run(plate=plate, output="k/m.####.exr", key_mask=mask)
    assert _digest(shared) == before
