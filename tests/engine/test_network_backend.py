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


def _refine_weights(folder, feature_channels):
    from vfxmatte.refine.sparse_net import SparseRefineArch, SparseRefineNet

    torch.manual_seed(1)
    arch = SparseRefineArch(width=8, blocks=1, feature_channels=feature_channels)
    net = SparseRefineNet(arch)
    path = folder / f"refine{feature_channels}.safetensors"
    save_checkpoint(path, "refine", dataclasses.asdict(arch), net.state_dict())
    return str(path)


@pytest.mark.parametrize("feature_channels", [0, 8])
def test_sparse_refine_runs_after_the_network_and_changes_only_uncertain_pixels(
    small_shot, weights, tmp_path, feature_channels
):
    from vfxmatte.engine.stages import Stages

    config = PipelineConfig(plate=small_shot.plate, mask=small_shot.mask)
    config.matte.backend = "network"
    config.matte.network.weights = weights
    config.matte.network.device = "cpu"
    config.refine.backend = "sparse"
    config.refine.sparse.weights = _refine_weights(tmp_path, feature_channels)
    config.refine.sparse.tau = 0.3
    config.decontaminate.backend = "none"
    frame = open_plate(small_shot.plate).read(1001)
    colour = ColourContext.for_plate(config, frame)
    display = colour.display(frame.pixels[..., :3])
    guidance = read_mask(small_shot.mask)
    refined = Stages(config, colour).process(frame, guidance, display)
    coarse = NetworkMatte(config.matte.network).matte(display, guidance)
    selected = (1.0 - coarse.confidence) > 0.3
    assert selected.any()
    assert np.array_equal(refined.alpha[~selected], coarse.alpha[~selected])
    assert not np.allclose(refined.alpha[selected], coarse.alpha[selected])


def test_refiner_needing_features_refuses_the_classical_matte(small_shot, tmp_path):
    from vfxmatte.engine.stages import Stages
    from vfxmatte.errors import ConfigError

    config = PipelineConfig(plate=small_shot.plate, mask=small_shot.mask)
    config.refine.backend = "sparse"
    config.refine.sparse.weights = _refine_weights(tmp_path, 8)
    frame = open_plate(small_shot.plate).read(1001)
    with pytest.raises(ConfigError, match="decoder feature channels"):
        Stages(config, ColourContext.for_plate(config, frame))


def test_the_shipped_starter_weights_need_no_set_up(small_shot, tmp_path, monkeypatch):
    from vfxmatte.weights import shipped_weights

    monkeypatch.setenv("VFXMATTE_HOME", str(tmp_path / "home"))  # only the repository's copy
    assert shipped_weights("matte").endswith("weights/matte_small.safetensors")
    assert shipped_weights("colour").endswith("weights/colour.safetensors")
    assert shipped_weights("refine").endswith("weights/refine.safetensors")
    config = PipelineConfig(plate=small_shot.plate, mask=small_shot.mask, frames="1001-1002")
    config.output = str(tmp_path / "m.####.exr")
    config.engine.progress = False
    config.matte.backend = "network"
    config.decontaminate.backend = "network"
    report = run_pipeline(config)
    assert report.ok and report.written == [1001, 1002]
    alpha = read_image(tmp_path / "m.1001.exr").pixels[..., 3]
    truth = read_image(small_shot.alpha.replace("####", "1001")).pixels[..., 0]
    guidance = read_mask(small_shot.mask)
    # the trained starter network beats its own guidance mask on this shot's key frame
    assert np.abs(alpha - truth).sum() < np.abs(guidance - truth).sum()
    # ...and the starter refiner (it reads the network's features) needs no set-up either
    config.refine.backend = "sparse"
    config.output = str(tmp_path / "r.####.exr")
    assert run_pipeline(config).ok
    refined = read_image(tmp_path / "r.1001.exr").pixels[..., 3]
    assert not np.array_equal(refined, alpha)
    assert np.abs(refined - truth).sum() < np.abs(guidance - truth).sum()
