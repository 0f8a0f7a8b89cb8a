"""The engine with the learned matte backend (random tiny weights): wiring, not quality."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.engine.stages import ColourContext
from vfxmatte.errors import WeightsError
from vfxmatte.io.image import read_image
from vfxmatte.io.mask import read_mask
from vfxmatte.io.plate import open_plate
from vfxmatte.matte.network.arch import PRNMattingNet
from vfxmatte.matte.network.backend import NetworkMatte
from vfxmatte.matte.network.options import NetworkMatteConfig
from vfxmatte.weights import save_checkpoint

TINY = {
    "name": "custom", "stem": (8, 8, 8), "enc_planes": (8, 8, 16, 16), "enc_blocks": (1, 1, 1, 1),
    "skip_planes": (8, 8, 8, 8, 16), "aspp_mid": 8, "aspp_out": 16, "dec_blocks": (1, 1, 1, 1),
    "head_mid": 8,
}  # fmt: skip


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = PRNMattingNet(TINY)
    path = tmp_path_factory.mktemp("w") / "tiny.safetensors"
    save_checkpoint(path, "matte", {"arch": dataclasses.asdict(model.arch)}, model.state_dict())
    return str(path)


def test_network_backend_through_the_engine_matches_a_direct_call(small_shot, weights, tmp_path):
    config = PipelineConfig(plate=small_shot.plate, mask=small_shot.mask, frames="1001-1002")
    config.output = str(tmp_path / "m.####.exr")
    config.engine.progress = False
    config.propagate.backend = "static"
    config.matte.backend = "network"
    config.matte.network.weights = weights
    config.matte.network.iterations = 2
    config.output_options.kinds = "alpha"
    config.output_options.dtype = "float"
    report = run_pipeline(config)
    assert report.ok and report.written == [1001, 1002]
    plate = open_plate(small_shot.plate)
    frame = plate.read(1002)
    colour = ColourContext.for_plate(config, frame)
    guidance = read_mask(small_shot.mask)
    direct, _ = NetworkMatte(config.matte.network)(colour.display(frame.pixels[..., :3]), guidance)
    written = read_image(tmp_path / "m.1002.exr").pixels[..., 0]
    np.testing.assert_allclose(written, direct, atol=1e-6)


def test_missing_weights_stop_the_run_before_any_frame(small_shot, tmp_path):
    config = PipelineConfig(plate=small_shot.plate, mask=small_shot.mask)
    config.output = str(tmp_path / "m.####.exr")
    config.engine.progress = False
    config.matte.backend = "network"
    config.matte.network = NetworkMatteConfig(weights=str(tmp_path / "none.safetensors"))
    with pytest.raises(WeightsError, match="not found"):
        run_pipeline(config)
    assert not list(tmp_path.glob("m*.exr"))
