"""Mask trust by construction: the band gate of the matting network."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import cv2
import numpy as np
import torch

from vfxmatte.matte.network.arch import PRNMattingNet
from vfxmatte.matte.network.backend import NetworkMatte
from vfxmatte.matte.network.band import band_gate, edge_distance
from vfxmatte.matte.network.options import NetworkMatteConfig
from vfxmatte.weights import load_checkpoint, save_checkpoint

TINY = {
    "name": "custom", "stem": (8, 8, 8), "enc_planes": (8, 16, 16, 16), "enc_blocks": (1, 1, 1, 1),
    "skip_planes": (8, 8, 8, 16, 16), "aspp_mid": 8, "aspp_out": 16, "dec_blocks": (1, 1, 1, 1),
    "head_mid": 8,
}  # fmt: skip


def _disk(h=96, w=128, r=30.0):
    yy, xx = np.mgrid[:h, :w]
    return (np.hypot(yy - h / 2, xx - w / 2) < r).astype(np.float32)


def _net(**arch):
    torch.manual_seed(0)
    model = PRNMattingNet({**TINY, **arch})
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            torch.nn.init.uniform_(m.weight, 0.5, 1.5)
            torch.nn.init.uniform_(m.bias, -0.3, 0.3)
    return model.eval()


def test_edge_distance_follows_the_euclidean_distance_to_the_contour():
    mask = _disk()
    d = edge_distance(torch.from_numpy(mask)[None, None], 20)[0, 0].numpy()
    inside = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5)
    outside = cv2.distanceTransform(1 - mask.astype(np.uint8), cv2.DIST_L2, 5)
    euclid = np.maximum(inside, outside)  # ~1 on the pixels either side of the contour
    near = euclid < 18
    assert np.abs(d[near] - (euclid[near] - 1.0)).max() <= 0.1 * 18 + 1.0
    assert (d[euclid > 24] == 20).all() and (d[euclid <= 1.01] == 0).all()


def test_frame_border_is_not_an_edge():
    full = torch.ones(1, 1, 40, 50)
    assert (edge_distance(full, 6) == 6).all()
    gate = band_gate(full, torch.tensor(5.0), 5.0, 2.0)
    assert not gate.any()


def test_far_from_the_guidance_edge_the_output_is_the_guidance():
    model = _net()
    guide = torch.from_numpy(_disk())[None, None]
    image = torch.rand(1, 3, 96, 128, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(image, guide)
        free = _net(band_max=0.0)(image, guide)
    d = edge_distance(guide, 30)
    far = d >= model.band_max
    assert far.any() and (d < model.band_max - model.band_ramp).any()
    for key in ("alpha", "alpha_os8", "alpha_os4", "alpha_os1"):
        assert torch.equal(out[key][far], guide[far])
    assert not out["error"][far].any()
    # without the gate the same random network changes the guidance far from its edge
    assert (free["alpha"][far] - guide[far]).abs().max() > 0.05
    near = d <= model.band_max - model.band_ramp
    assert torch.equal(out["alpha"][near], free["alpha"][near])


def test_band_is_measured_from_the_coarse_mask_in_iterative_decoding():
    model = _net()
    coarse = torch.from_numpy(_disk())[None, None]
    state = torch.from_numpy(_disk(r=42.0))[None, None]  # a decoded state that moved outwards
    image = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        out = model(image, state, coarse)
    far = edge_distance(coarse, 30) >= model.band_max
    assert torch.equal(out["alpha"][far], coarse[far])


def test_learned_radius_is_bounded_trained_and_saved(tmp_path):
    model = _net(band_learned=True).train()
    assert 0 < float(model.band_radius()) < model.band_max
    guide = torch.from_numpy(_disk(64, 64, 20.0))[None, None].repeat(2, 1, 1, 1)
    out = model(torch.rand(2, 3, 64, 64), guide)
    out["alpha"].mean().backward()
    assert model.band_logit.grad is not None and model.band_logit.grad.abs() > 0
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, "matte", {"arch": dataclasses.asdict(model.arch)}, model.state_dict())
    assert "band_logit" in load_checkpoint(path, "matte").state_dict
    net = NetworkMatte(NetworkMatteConfig(weights=str(path), device="cpu", iterations=1))
    assert torch.equal(net.model.band_logit, model.band_logit.detach())


def test_checkpoints_without_band_options_get_the_gate(tmp_path):
    """Weights saved before the band gate existed (no band_* keys) load with it on."""
    model = _net()
    arch = dataclasses.asdict(model.arch)
    for key in ("band_max", "band_ramp", "band_learned"):
        del arch[key]
    path = tmp_path / "old.safetensors"
    save_checkpoint(path, "matte", {"arch": arch}, model.state_dict())
    net = NetworkMatte(NetworkMatteConfig(weights=str(path), device="cpu", iterations=1))
    assert net.model.band_max == 20.0 and float(net.model.band_radius()) == 20.0


def test_photo_weights_learned_a_radius_inside_the_bound():
    path = Path(__file__).resolve().parents[2] / "weights" / "matte_small_photos.safetensors"
    net = NetworkMatte(NetworkMatteConfig(weights=str(path), device="cpu", iterations=1))
    assert net.model.arch.band_learned and 4.0 < float(net.model.band_radius()) < 20.0
