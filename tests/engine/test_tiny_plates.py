"""Plates of a few pixels: every backend runs from 1x1 except flow propagation, which is
refused with a sentence under 12x12 when the plate is opened (DIS optical flow raised an
OpenCV traceback there), on the local loop and on the propagation phase alike."""

from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.engine.stages import MIN_PLATE_SIDE
from vfxmatte.errors import InputError
from vfxmatte.io.image import read_image, write_image


def _shot(folder, height: int, width: int) -> PipelineConfig:
    rng = np.random.default_rng(height * 100 + width)
    folder.mkdir(parents=True, exist_ok=True)
    for f in (1001, 1002, 1003):
        write_image(folder / f"p.{f}.exr", rng.random((height, width, 3), np.float32), list("RGB"))
    mask = np.zeros((height, width, 1), np.float32)
    mask[height // 4 : height // 4 + max(1, height // 2), width // 4 : width // 4 + max(1, width // 2)] = 1
    for f in (1001, 1002, 1003):
        write_image(folder / f"m.{f}.png", mask, ["Y"], dtype="uint8")
    config = PipelineConfig(plate=str(folder / "p.####.exr"), mask=str(folder / "m.1001.png"),
                            output=str(folder / "out" / "o.####.exr"))
    config.engine.progress = False
    return config


@pytest.mark.parametrize("backend", ["flow", "snapcut"])
@pytest.mark.parametrize(("height", "width"), [(1, 1), (4, 4), (11, 11), (11, 40), (12, 12)])
def test_flow_needs_12_pixels_a_side(tmp_path, height, width, backend) -> None:
    config = _shot(tmp_path, height, width)
    config.propagate.backend = backend
    if min(height, width) < MIN_PLATE_SIDE[backend]:
        with pytest.raises(InputError, match=rf"is {width}x{height} pixels; propagate\.backend={backend} "
                                             r"needs at least 12x12\. Use --propagate\.backend static"):
            run_pipeline(config)
        config.engine.phase = "propagate"  # the farm's first job opens the plate the same way
        with pytest.raises(InputError, match="needs at least 12x12"):
            run_pipeline(config)
        assert not (tmp_path / "out").exists()
    else:
        assert run_pipeline(config).written == [1001, 1002, 1003]


NETWORKS = {"propagate": "static", "matte": "network", "refine": "sparse", "decontaminate": "network"}


@pytest.mark.parametrize(("height", "width", "backends"), [
    (1, 1, {"propagate": "static"}),
    (4, 4, {"propagate": "static"}),
    (11, 11, {"propagate": "static"}),
    (1, 1, {"propagate": "given"}),
    (4, 4, {"propagate": "given"}),
    (1, 1, NETWORKS),
], ids=["1x1 static", "4x4 static", "11x11 static", "1x1 given", "4x4 given", "1x1 networks"])
def test_other_backends_take_any_size(tmp_path, height, width, backends) -> None:
    config = _shot(tmp_path, height, width)
    config.propagate.backend = backends["propagate"]
    if backends["propagate"] == "given":
        config.mask = str(tmp_path / "m.####.png")
    config.matte.backend = backends.get("matte", "classical")
    config.refine.backend = backends.get("refine", "none")
    config.decontaminate.backend = backends.get("decontaminate", "multilevel")
    expected = [1001] if backends is NETWORKS else [1001, 1002, 1003]  # the networks are slow
    config.frames = ",".join(map(str, expected))
    assert run_pipeline(config).written == expected
    alpha = read_image(tmp_path / "out" / "o.1001.exr").pixels[..., 3]
    assert alpha.shape == (height, width) and np.isfinite(alpha).all()
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0


def test_sam2_takes_a_tiny_plate(tmp_path) -> None:
    pytest.importorskip("sam2")
    config = _shot(tmp_path, 4, 4)
    config.propagate.backend = "sam2"
    config.propagate.sam2.random_weights = True
    config.propagate.sam2.image_size = 128
    config.frames = "1001-1002"
    assert run_pipeline(config).written == [1001, 1002]


def test_panoptic_flow_propagation_refuses_a_tiny_plate(tmp_path) -> None:
    from vfxmatte.panoptic.run import PanopticJob, run_panoptic

    config = _shot(tmp_path, 4, 4)
    labels = np.zeros((4, 4, 1), np.float32)
    labels[1:3, 1:3] = 1
    write_image(tmp_path / "l.1001.exr", labels, ["Y"], dtype="float")
    job = PanopticJob(plate=config.plate, labels=str(tmp_path / "l.1001.exr"),
                      output=str(tmp_path / "pan.####.exr"), propagate="flow")
    with pytest.raises(InputError, match=r"is 4x4 pixels; propagate\.backend=flow needs at least "
                                         r"12x12\. Use --propagate sam2"):
        run_panoptic(job)


def test_propagating_images_from_a_host_refuses_a_tiny_plate() -> None:
    """The ComfyUI propagate node hands frames in memory to ``propagate_objects``."""
    from vfxmatte.engine.guidance import propagate_objects
    from vfxmatte.engine.stages import ColourContext
    from vfxmatte.io.frame import Frame

    class Images:
        frames = [0, 1]

        def read(self, number: int) -> Frame:
            return Frame(number, np.full((4, 4, 3), 0.5, np.float32), ("R", "G", "B"), {}, None)

    colour = ColourContext.resolve("sRGB", Images().read(0))
    keys = {0: {1: np.ones((4, 4), np.float32)}}
    config = PipelineConfig()
    config.propagate.backend = "flow"
    with pytest.raises(InputError, match=r"^The plate is 4x4 pixels; propagate\.backend=flow"):
        list(propagate_objects(config, Images(), colour, keys))
