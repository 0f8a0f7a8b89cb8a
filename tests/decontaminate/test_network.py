"""The foreground colour network backend (random weights): contract, band-only, exposure."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vfxmatte.decontaminate.colour_net import ColourNet
from vfxmatte.decontaminate.network import NetworkForeground, NetworkForegroundConfig
from vfxmatte.errors import InputError, WeightsError
from vfxmatte.weights import save_checkpoint


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    torch.manual_seed(0)
    model = ColourNet({"widths": (8, 8, 16, 16)})
    path = tmp_path_factory.mktemp("w") / "colour.safetensors"
    save_checkpoint(path, "colour", {"arch": dataclasses.asdict(model.arch)}, model.state_dict())
    return str(path)


def _frame(h=70, w=90, seed=0):
    rng = np.random.default_rng(seed)
    image = rng.random((h, w, 3), dtype=np.float32) * 2.0  # scene-linear, some values > 1
    yy, xx = np.mgrid[:h, :w]
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((20.0 - r) / 6.0 + 0.5, 0.0, 1.0).astype(np.float32)
    return image, alpha


def test_exact_outside_the_band_and_changed_inside(weights):
    net = NetworkForeground(NetworkForegroundConfig(weights=weights, device="cpu", tile_size=16))
    image, alpha = _frame()
    fg = net(image, alpha)
    assert fg.shape == image.shape and fg.dtype == np.float32 and np.isfinite(fg).all()
    opaque, clear = alpha >= 1 - 1e-3, alpha <= 1e-3
    assert np.array_equal(fg[opaque], image[opaque])
    assert np.all(fg[clear] == 0)
    band = ~opaque & ~clear
    assert band.any() and not np.allclose(fg[band], image[band])


def test_tiling_does_not_change_the_answer_much(weights):
    image, alpha = _frame()
    a = NetworkForeground(
        NetworkForegroundConfig(weights=weights, device="cpu", tile_size=16, context_margin=32)
    )(image, alpha)
    b = NetworkForeground(NetworkForegroundConfig(weights=weights, device="cpu", tile_size=512))(
        image, alpha
    )
    band = (alpha > 1e-3) & (alpha < 1 - 1e-3)
    # context of 32 px covers the receptive field's main part: tiles agree closely
    assert np.abs(a[band] - b[band]).max() < 0.05


def test_exposure_scaling_keeps_highlights(weights):
    net = NetworkForeground(NetworkForegroundConfig(weights=weights, device="cpu"))
    image, alpha = _frame()
    fg1 = net(image, alpha)
    fg8 = net(image * 8.0, alpha)
    band = (alpha > 1e-3) & (alpha < 1 - 1e-3)
    assert fg8[band].max() > 1.5  # not clipped to display range
    np.testing.assert_allclose(fg8[band], fg1[band] * 8.0, rtol=0.35, atol=0.05)


def test_no_band_means_no_network_call(weights, monkeypatch):
    net = NetworkForeground(NetworkForegroundConfig(weights=weights, device="cpu"))
    monkeypatch.setattr(net, "_run_crop", lambda *a: pytest.fail("network ran without a band"))
    image, _ = _frame()
    alpha = np.zeros(image.shape[:2], np.float32)
    alpha[10:30, 10:30] = 1.0
    fg = net(image, alpha)
    assert np.array_equal(fg[10:30, 10:30], image[10:30, 10:30])
    fg[10:30, 10:30] = 0
    assert not fg.any()


def test_errors(weights, tmp_path, monkeypatch):
    import vfxmatte.weights

    monkeypatch.setenv("VFXMATTE_HOME", str(tmp_path))
    monkeypatch.setitem(vfxmatte.weights.SHIPPED, "colour", "missing.safetensors")
    with pytest.raises(WeightsError, match="needs decontaminate.network.weights"):
        NetworkForeground(NetworkForegroundConfig())
    save_checkpoint(tmp_path / "m.safetensors", "matte", {}, {"x": torch.zeros(1)})
    with pytest.raises(WeightsError, match="expected 'colour'"):
        NetworkForeground(NetworkForegroundConfig(weights=str(tmp_path / "m.safetensors")))
    net = NetworkForeground(NetworkForegroundConfig(weights=weights, device="cpu"))
    image, alpha = _frame()
    with pytest.raises(InputError, match="same size"):
        net(image, alpha[:-1])
    alpha[0, 0] = np.inf
    with pytest.raises(InputError, match="NaN or infinite"):
        net(image, alpha)


def test_gradient_reaches_every_parameter():
    torch.manual_seed(0)
    model = ColourNet({"widths": (8, 8, 16, 16)})
    out = model(torch.rand(2, 3, 32, 40) * 0.5 + 0.25, torch.rand(2, 1, 32, 40))
    out.mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []
