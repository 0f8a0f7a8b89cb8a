"""Loss functions against hand-computed values on tiny tensors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from vfxmatte.train.losses import (
    composition_loss,
    confidence_loss,
    gradient_loss,
    l1_loss,
    laplacian_loss,
    laplacian_pyramid,
    linear_to_srgb,
    prn_loss,
    trimap_loss,
    trimap_target,
)


def t(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float32)[None, None]


def test_l1_plain_and_weighted() -> None:
    pred, gt = t([[0.0, 0.5], [1.0, 0.25]]), t([[1.0, 0.5], [0.0, 0.0]])
    assert l1_loss(pred, gt).item() == pytest.approx((1 + 0 + 1 + 0.25) / 4)
    weight = t([[0.0, 1.0], [0.0, 1.0]])
    assert l1_loss(pred, gt, weight).item() == pytest.approx(0.25 / 2, rel=1e-5)


def test_composition_loss_by_hand() -> None:
    alpha = t([[0.5]])
    fg = torch.tensor([1.0, 0.0, 0.5]).view(1, 3, 1, 1)
    bg = torch.tensor([0.0, 1.0, 0.5]).view(1, 3, 1, 1)
    image = torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1)
    assert composition_loss(alpha, fg, bg, image).item() == pytest.approx(0.0)
    image2 = torch.tensor([0.6, 0.5, 0.2]).view(1, 3, 1, 1)
    assert composition_loss(alpha, fg, bg, image2).item() == pytest.approx((0.1 + 0 + 0.3) / 3)
    # in linear light: 0.5 linear -> sRGB 0.7353569
    lin = composition_loss(alpha, fg, bg, torch.full((1, 3, 1, 1), 0.7353569), linear=True)
    assert lin.item() == pytest.approx(0.0, abs=1e-6)


def test_linear_to_srgb_matches_io_colour() -> None:
    from vfxmatte.io.colour import linear_to_srgb as reference

    x = np.linspace(0.0, 1.0, 101, dtype=np.float32)
    assert np.allclose(linear_to_srgb(torch.from_numpy(x)).numpy(), reference(x), atol=1e-6)


def test_gradient_loss_by_hand() -> None:
    pred = t([[0.0, 1.0], [0.0, 1.0]])  # dx = 1, 1; dy = 0, 0
    gt = t([[0.0, 0.0], [0.0, 0.5]])  # dx = 0, 0.5; dy = 0, 0.5
    # |dx| mean = (1 + 0.5) / 2; |dy| mean = (0 + 0.5) / 2
    assert gradient_loss(pred, gt).item() == pytest.approx(0.75 + 0.25)


def test_confidence_loss_by_hand_and_detached() -> None:
    alpha = t([[0.2, 0.9]]).requires_grad_(True)
    gt = t([[0.0, 1.0]])
    error = t([[0.2, 0.0]]).requires_grad_(True)  # true errors 0.2 and 0.1
    loss = confidence_loss(error, alpha, gt)
    assert loss.item() == pytest.approx((0.0 + 0.1) / 2)
    loss.backward()
    assert alpha.grad is None  # the target is detached: no gradient into the alpha
    assert error.grad is not None


def _pyramid_reference(x: np.ndarray, levels: int) -> list[np.ndarray]:
    """Independent numpy Laplacian pyramid (reflect padding, binomial 5x5)."""
    k1 = np.array([1, 4, 6, 4, 1], np.float64) / 16.0
    k = np.outer(k1, k1)

    def blur(img):
        p = np.pad(img, 2, mode="reflect")
        h, w = img.shape
        return sum(k[i, j] * p[i : i + h, j : j + w] for i in range(5) for j in range(5))

    cur, out = x.astype(np.float64), []
    for _ in range(levels):
        down = blur(cur)[::2, ::2]
        up = np.zeros((down.shape[0] * 2, down.shape[1] * 2))
        up[::2, ::2] = 4 * down
        up = blur(up)[: cur.shape[0], : cur.shape[1]]
        out.append(cur - up)
        cur = down
    return out


def test_laplacian_pyramid_matches_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((16, 16)).astype(np.float32)
    ours = laplacian_pyramid(torch.from_numpy(x)[None, None], 3)
    ref = _pyramid_reference(x, 3)
    assert len(ours) == 3
    for a, b in zip(ours, ref, strict=True):
        assert np.allclose(a[0, 0].numpy(), b, atol=1e-5)


def test_laplacian_loss_weights_levels() -> None:
    rng = np.random.default_rng(1)
    a = rng.random((64, 64)).astype(np.float32)
    b = rng.random((64, 64)).astype(np.float32)
    pa, pb = _pyramid_reference(a, 5), _pyramid_reference(b, 5)
    expected = sum(2**k * np.abs(x - y).mean() for k, (x, y) in enumerate(zip(pa, pb, strict=True)))
    got = laplacian_loss(torch.from_numpy(a)[None, None], torch.from_numpy(b)[None, None])
    assert got.item() == pytest.approx(expected, rel=1e-4)
    # a constant offset has no band-pass content
    offset = laplacian_loss(torch.from_numpy(a)[None, None], torch.from_numpy(a + 0.3)[None, None])
    assert offset.item() == pytest.approx(0.0, abs=1e-5)


def test_prn_loss_level_weighting_and_masks() -> None:
    gt = torch.zeros(1, 1, 4, 4)
    os8 = torch.full((1, 1, 4, 4), 0.1)
    os4 = torch.full((1, 1, 4, 4), 0.2)
    os1 = torch.full((1, 1, 4, 4), 0.4)
    m4 = torch.zeros(1, 1, 4, 4)
    m4[..., :2, :] = 1
    m1 = torch.zeros(1, 1, 4, 4)
    m1[..., 0, 0] = 1
    levels = {"os8": (os8, None, 1.0), "os4": (os4, m4, 2.0), "os1": (os1, m1, 3.0)}
    terms = prn_loss(levels, gt, l1=1.0, composition=0.0, laplacian=0.0)
    expected = (1 * 0.1 + 2 * 0.2 + 3 * 0.4) / 6
    assert terms["l1"].item() == pytest.approx(expected, rel=1e-5)
    assert terms["total"].item() == pytest.approx(expected, rel=1e-5)
    # the OS1 level outside its mask does not count
    os1_outside = os1.clone()
    os1_outside[..., 3, 3] = 1.0
    levels["os1"] = (os1_outside, m1, 3.0)
    assert prn_loss(levels, gt, composition=0.0, laplacian=0.0)["l1"].item() == pytest.approx(
        expected, rel=1e-5
    )


def test_prn_loss_skips_composition_of_degraded_samples() -> None:
    gt = torch.zeros(2, 1, 2, 2)
    alpha = torch.zeros(2, 1, 2, 2)
    fg = torch.ones(2, 3, 2, 2)
    bg = torch.zeros(2, 3, 2, 2)
    image = torch.zeros(2, 3, 2, 2)
    image[1] = 0.5  # sample 1 is degraded: its identity does not hold
    levels = {"os8": (alpha, None, 1.0)}
    valid = torch.tensor([True, False])
    terms = prn_loss(levels, gt, fg=fg, bg=bg, image=image, comp_valid=valid, laplacian=0.0)
    assert terms["composition"].item() == pytest.approx(0.0)
    terms = prn_loss(levels, gt, fg=fg, bg=bg, image=image, laplacian=0.0)
    assert terms["composition"].item() == pytest.approx(0.25)


def test_trimap_target_classes() -> None:
    alpha = t([[0.0, 0.002, 0.5, 0.999, 1.0]])
    assert trimap_target(alpha).tolist() == [[[0, 0, 1, 2, 2]]]


def test_trimap_loss_harmonises_by_gradient_density() -> None:
    # Four pixels, GT classes bg, unknown, fg, bg.
    alpha = t([[0.0, 0.5, 1.0, 0.0]])
    logits = torch.tensor([[2.0, 0.0, 0.0, 2.0], [0.0, 0.0, 0.0, 0.0], [0.0, 0.0, 5.0, 0.0]])[
        None, :, None, :
    ].requires_grad_(True)  # N x 3 x 1 x 4
    ce_bg = math.log(1 + 2 * math.exp(-2))  # g = 0.21: bin 2 (twice)
    ce_unknown = math.log(3)  # g = 0.67: bin 6
    ce_fg = math.log(1 + 2 * math.exp(-5))  # g = 0.013: bin 0
    loss = trimap_loss(logits, alpha, bins=10)
    # Mean over the three non-empty bins of each bin's mean cross-entropy...
    assert loss.item() == pytest.approx((ce_bg + ce_unknown + ce_fg) / 3, rel=1e-5)
    # ...not the plain mean, which counts the easy background twice.
    assert loss.item() != pytest.approx((2 * ce_bg + ce_unknown + ce_fg) / 4, rel=1e-3)
    # One bin: the plain mean cross-entropy.
    assert trimap_loss(logits, alpha, bins=1).item() == pytest.approx(
        (2 * ce_bg + ce_unknown + ce_fg) / 4, rel=1e-5
    )
    loss.backward()  # the weights are constants: each pixel's gradient is w_i * dCE_i
    p = torch.softmax(logits.detach(), dim=1)[0, :, 0, 1]
    expected = (p - torch.tensor([0.0, 1.0, 0.0])) * (4 / (1 * 3)) / 4  # unknown pixel, w = 4/3
    assert torch.allclose(logits.grad[0, :, 0, 1], expected, atol=1e-6)
