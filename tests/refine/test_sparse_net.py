"""Tests of vfxmatte.refine.sparse_net: the three sparse paths agree, gradients, checkpoints."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from vfxmatte.errors import ConfigError, InputError, WeightsError
from vfxmatte.refine.sparse_conv import ActiveSet
from vfxmatte.refine.sparse_net import (
    SparseRefineArch,
    SparseRefineNet,
    dense_inputs,
    sample_features,
    sparse_inputs,
)
from vfxmatte.weights import save_checkpoint

HAS_SPCONV = importlib.util.find_spec("spconv") is not None
needs_spconv = pytest.mark.skipif(not HAS_SPCONV, reason="spconv is not installed")


def case(h=29, w=43, density=0.25, feature_channels=4, seed=0, width=8, blocks=2):
    g = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    net = SparseRefineNet(
        SparseRefineArch(width=width, blocks=blocks, feature_channels=feature_channels)
    )
    image = torch.rand(h, w, 3, generator=g)
    alpha = torch.rand(h, w, generator=g)
    error = torch.rand(h, w, generator=g)
    features = torch.randn(1, feature_channels, 7, 11, generator=g) if feature_channels else None
    active = ActiveSet.from_mask(error < density)
    return net, active, sparse_inputs(image, alpha, error, active, features)


@pytest.mark.parametrize("h, w, density", [(29, 43, 0.25), (1, 1, 1.0), (5, 3, 0.5), (31, 9, 0.9)])
def test_torch_path_equals_dense_reference(h, w, density):
    net, active, inputs = case(h, w, density)
    with torch.no_grad():
        sparse = net(inputs, active, impl="torch")
        dense = net(inputs, active, impl="dense_reference")
    assert sparse.shape == (len(active),)
    torch.testing.assert_close(sparse, dense, rtol=1e-5, atol=1e-5)
    assert torch.all((sparse >= 0) & (sparse <= 1))
    assert not torch.equal(sparse, inputs[:, 3])  # the network changed something


@needs_spconv
def test_spconv_path_equals_dense_reference_and_restores_threads():
    # 32 channels: with two threads the CPU wheel is wrong at this size (FACTS.md).
    net, active, inputs = case(64, 80, 0.3, seed=1, width=32)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)  # spconv's CPU path must switch to one thread by itself
    try:
        with torch.no_grad():
            got = net(inputs, active, impl="spconv")
        assert torch.get_num_threads() == 2
        dense = net(inputs, active, impl="dense_reference").detach()
    finally:
        torch.set_num_threads(previous)
    torch.testing.assert_close(got, dense, rtol=1e-5, atol=1e-5)


def test_empty_active_set_for_every_path():
    net, active, inputs = case(6, 7, 0.0)
    assert len(active) == 0
    for impl in ("torch", "dense_reference") + (("spconv",) if HAS_SPCONV else ()):
        assert net(inputs, active, impl=impl).shape == (0,)


def test_gradients_reach_every_parameter_torch_path():
    net, active, inputs = case(seed=2)
    inputs.requires_grad_(True)
    net(inputs, active).sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name
    assert inputs.grad.abs().sum() > 0


@needs_spconv
def test_spconv_gradients_equal_torch_gradients_with_two_threads():
    net, active, inputs = case(seed=3, width=32)
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        grads = {}
        for impl in ("torch", "spconv"):
            net.zero_grad()
            x = inputs.clone().requires_grad_(True)
            weights = torch.linspace(-1, 1, len(active))
            (net(x, active, impl=impl) * weights).sum().backward()
            grads[impl] = [x.grad] + [p.grad.clone() for p in net.parameters()]
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(previous)
    for a, b in zip(grads["torch"], grads["spconv"], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_deterministic():
    net, active, inputs = case(seed=4)
    net2, _, _ = case(seed=4)
    with torch.no_grad():
        assert torch.equal(net(inputs, active), net(inputs, active))
        assert torch.equal(net(inputs, active), net2(inputs, active))
    grads = []
    for _ in range(2):
        net.zero_grad()
        net(inputs, active).sum().backward()
        grads.append([p.grad.clone() for p in net.parameters()])
    assert all(torch.equal(a, b) for a, b in zip(*grads, strict=True))


def test_forward_dense_equals_sparse_with_every_pixel_active():
    g = torch.Generator().manual_seed(5)
    net, _, _ = case(seed=5, feature_channels=0)
    image, alpha, error = (
        torch.rand(13, 19, 3, generator=g),
        torch.rand(13, 19, generator=g),
        torch.rand(13, 19, generator=g),
    )
    active = ActiveSet.from_mask(torch.ones(13, 19, dtype=torch.bool))
    with torch.no_grad():
        dense = net.forward_dense(dense_inputs(image, alpha, error))
        sparse = net(sparse_inputs(image, alpha, error, active), active)
    assert dense.shape == (1, 1, 13, 19)
    torch.testing.assert_close(sparse, dense.flatten(), rtol=1e-5, atol=1e-5)


def test_sampled_features_equal_the_upsampled_map_at_active_pixels():
    g = torch.Generator().manual_seed(6)
    features = torch.randn(1, 5, 9, 14, generator=g)
    active = ActiveSet.from_mask(torch.rand(37, 58, generator=g) < 0.3)
    full = F.interpolate(features, size=(37, 58), mode="bilinear", align_corners=False)
    torch.testing.assert_close(
        sample_features(features, active),
        active.gather(full[0].permute(1, 2, 0)),
        rtol=1e-5,
        atol=1e-5,
    )


def test_bad_inputs_and_impl_are_named():
    net, active, inputs = case()
    with pytest.raises(InputError, match="expects 9 input channels"):
        net(inputs[:, :5], active)
    with pytest.raises(InputError, match="input rows"):
        net(inputs[:-1], active)
    with pytest.raises(
        ConfigError, match="valid: torch, spconv, dense_reference. Did you mean 'spconv'"
    ):
        net(inputs, active, impl="spconvv")
    with pytest.raises(ConfigError, match="refine.arch.width"):
        SparseRefineArch(width=0)


@pytest.mark.parametrize("name", ["r.safetensors", "r.pt"])
def test_checkpoint_round_trip(tmp_path, name):
    net, active, inputs = case(seed=7)
    path = tmp_path / name
    save_checkpoint(path, "refine", net.arch, net.state_dict())
    loaded = SparseRefineNet.from_checkpoint(path)
    assert loaded.arch == net.arch
    with torch.no_grad():
        assert torch.equal(loaded(inputs, active), net(inputs, active))


def test_checkpoint_errors(tmp_path):
    net, *_ = case()
    path = tmp_path / "m.safetensors"
    save_checkpoint(path, "matte", net.arch, net.state_dict())
    with pytest.raises(WeightsError, match="expected 'refine'"):
        SparseRefineNet.from_checkpoint(path)
    save_checkpoint(
        path,
        "refine",
        {"width": 8, "blocks": 2, "feature_channels": 4, "depth": 3},
        net.state_dict(),
    )
    with pytest.raises(WeightsError, match="Unknown option 'depth'"):
        SparseRefineNet.from_checkpoint(path)
    save_checkpoint(
        path, "refine", {"width": 16, "blocks": 2, "feature_channels": 4}, net.state_dict()
    )
    with pytest.raises(WeightsError, match="another shape"):
        SparseRefineNet.from_checkpoint(path)
