"""Losses of the matting and colour networks (pure tensor functions).

All tensors are ``N x C x H x W``; ``weight`` is an ``N x 1 x H x W`` mask (or
``None`` for every pixel) that restricts where a loss counts, as the PRN's
self-guidance masks do (MGMatting Eq. 5). Weighted means divide by the weight's
sum (times channels), so a loss does not shrink with the size of the region.

* :func:`l1_loss`, :func:`composition_loss` (Deep Image Matting),
* :func:`laplacian_loss`: L1 between 5-level Laplacian pyramids, level ``k``
  (1-based, finest first) weighted ``2^(k-1)`` (MGMatting's ``lap_loss``),
* :func:`gradient_loss`: L1 between finite-difference gradients,
* :func:`confidence_loss`: ``|c - |a_pred - a_gt||`` with the target detached
  (Mask2Alpha §3.2),
* :func:`trimap_loss`: cross-entropy of a three-class trimap head with the
  gradient harmonizing mechanism (SEMat §4.2, GHM-C of Li et al. 2019),
* :func:`prn_loss`: the sum over levels OS8/OS4/OS1 with level weights (1:2:3 by
  default) and each level's self-guidance mask.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F

from vfxmatte.io.colour_torch import srgb_encode as linear_to_srgb

__all__ = [
    "composition_loss",
    "confidence_loss",
    "gaussian_kernel",
    "gradient_loss",
    "l1_loss",
    "laplacian_loss",
    "laplacian_pyramid",
    "linear_to_srgb",
    "prn_loss",
    "trimap_loss",
    "trimap_target",
]

_EPS = 1e-6


def _weighted_mean(error: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    if weight is None:
        return error.mean()
    w = weight.expand_as(error)
    return (error * w).sum() / (w.sum() + _EPS)


def l1_loss(
    pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean ``|pred - gt|`` over ``weight``."""
    return _weighted_mean((pred - gt).abs(), weight)


def composition_loss(
    alpha: torch.Tensor,
    fg: torch.Tensor,
    bg: torch.Tensor,
    image: torch.Tensor,
    weight: torch.Tensor | None = None,
    linear: bool = False,
) -> torch.Tensor:
    """Mean ``|alpha F + (1 - alpha) B - I|`` over ``weight`` and the 3 channels.

    With ``linear`` the composite is made in linear light and put through the sRGB
    curve before the comparison (the image is display-referred).
    """
    comp = alpha * fg + (1.0 - alpha) * bg
    if linear:
        comp = linear_to_srgb(comp)
    return _weighted_mean((comp - image).abs(), weight)


def gaussian_kernel(channels: int = 1, device: torch.device | None = None) -> torch.Tensor:
    """The 5x5 binomial kernel ``[1 4 6 4 1]^T [1 4 6 4 1] / 256`` as ``C x 1 x 5 x 5``."""
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0], device=device)
    k2 = torch.outer(k, k) / 256.0
    return k2.expand(channels, 1, 5, 5).contiguous()


def _blur(x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    # reflection needs more than 2 pixels; the coarsest levels of small crops replicate
    mode = "reflect" if min(x.shape[-2:]) > 2 else "replicate"
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode=mode), kernel, groups=x.shape[1])


def laplacian_pyramid(x: torch.Tensor, levels: int = 5) -> list[torch.Tensor]:
    """The ``levels`` band-pass levels of the Laplacian pyramid of ``x``, finest first.

    Level ``k`` is ``current - upsample(downsample(blur(current)))`` with the 5x5
    binomial kernel (the zero-stuffed upsample is blurred with 4x the kernel, as in
    Burt & Adelson); ``current`` then becomes the downsampled image. The low-pass
    residual is not returned (as in MGMatting's ``lap_loss``).
    """
    kernel = gaussian_kernel(x.shape[1], x.device).to(x.dtype)
    current = x
    pyramid = []
    for _ in range(levels):
        down = _blur(current, kernel)[:, :, ::2, ::2]
        up = torch.zeros(
            (down.shape[0], down.shape[1], down.shape[2] * 2, down.shape[3] * 2),
            dtype=x.dtype,
            device=x.device,
        )
        up[:, :, ::2, ::2] = down * 4.0
        up = _blur(up, kernel)[:, :, : current.shape[2], : current.shape[3]]
        pyramid.append(current - up)
        current = down
    return pyramid


def laplacian_loss(
    pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None, levels: int = 5
) -> torch.Tensor:
    """``sum_k 2^(k-1) mean|L_k(pred w) - L_k(gt w)|`` over ``levels`` (k = 1 finest)."""
    if weight is not None:
        pred, gt = pred * weight, gt * weight
    total = pred.new_zeros(())
    for k, (p, g) in enumerate(
        zip(laplacian_pyramid(pred, levels), laplacian_pyramid(gt, levels), strict=True)
    ):
        total = total + (2.0**k) * (p - g).abs().mean()
    return total


def _gradients(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    return x[:, :, :, 1:] - x[:, :, :, :-1], x[:, :, 1:, :] - x[:, :, :-1, :]


def gradient_loss(
    pred: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Mean ``|d/dx pred - d/dx gt| + |d/dy pred - d/dy gt|`` (forward differences).

    ``weight`` counts a difference where both of its pixels are inside.
    """
    px, py = _gradients(pred)
    gx, gy = _gradients(gt)
    wx = wy = None
    if weight is not None:
        wx = weight[:, :, :, 1:] * weight[:, :, :, :-1]
        wy = weight[:, :, 1:, :] * weight[:, :, :-1, :]
    return _weighted_mean((px - gx).abs(), wx) + _weighted_mean((py - gy).abs(), wy)


def confidence_loss(
    error: torch.Tensor, alpha: torch.Tensor, gt: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """``mean |c - |alpha - gt||``: the error head learns the network's own error (detached)."""
    target = (alpha.detach() - gt).abs()
    return _weighted_mean((error - target).abs(), weight)


def trimap_target(alpha: torch.Tensor, tolerance: float = 1.0 / 255.0) -> torch.Tensor:
    """``N x H x W`` int64 classes of ``N x 1 x H x W`` alpha: 0 background, 1 unknown, 2 fg.

    Background is ``alpha <= tolerance``, foreground ``alpha >= 1 - tolerance``.
    """
    a = alpha[:, 0]
    target = torch.ones_like(a, dtype=torch.long)
    target[a <= tolerance] = 0
    target[a >= 1.0 - tolerance] = 2
    return target


def trimap_loss(
    logits: torch.Tensor, alpha: torch.Tensor, bins: int = 10, tolerance: float = 1.0 / 255.0
) -> torch.Tensor:
    """Gradient-harmonised cross-entropy of trimap logits (SEMat §4.2, GHM-C).

    Every pixel's gradient norm ``g = 1 - p_true`` (softmax probability of its GT
    class, detached) falls in one of ``bins`` equal bins of [0, 1]; pixel ``i`` is
    weighted ``N / (count(bin_i) * n)`` with ``n`` the number of non-empty bins, so
    the loss is the mean over the non-empty bins of the bins' mean cross-entropy:
    the many easy pixels (flat background and foreground) no longer drown the few
    hard ones at the edge, and outliers (g near 1) do not dominate either.

    Args:
        logits: ``N x 3 x H x W`` (background, unknown, foreground).
        alpha: ``N x 1 x H x W`` GT alpha (:func:`trimap_target` makes the classes).
        bins: number of gradient-density bins.
    """
    target = trimap_target(alpha, tolerance)
    ce = F.cross_entropy(logits.float(), target, reduction="none").flatten()
    with torch.no_grad():
        p_true = torch.softmax(logits.float(), dim=1).gather(1, target[:, None]).flatten()
        g = 1.0 - p_true
        index = torch.clamp((g * bins).long(), 0, bins - 1)
        counts = torch.bincount(index, minlength=bins).to(ce.dtype)
        nonempty = (counts > 0).sum().to(ce.dtype)
        weight = ce.numel() / (counts[index] * nonempty)
    return (weight * ce).sum() / ce.numel()


def prn_loss(
    levels: Mapping[str, tuple[torch.Tensor, torch.Tensor | None, float]],
    gt: torch.Tensor,
    *,
    fg: torch.Tensor | None = None,
    bg: torch.Tensor | None = None,
    image: torch.Tensor | None = None,
    comp_valid: torch.Tensor | None = None,
    linear: bool = False,
    l1: float = 1.0,
    composition: float = 1.0,
    laplacian: float = 1.0,
    gradient: float = 0.0,
) -> dict[str, torch.Tensor]:
    """The PRN objective (MGMatting Eq. 5): level-weighted losses inside each level's mask.

    Args:
        levels: ``name -> (alpha, mask or None, level weight)`` e.g. OS8 with no
            mask (whole image), OS4 and OS1 with their self-guidance masks.
        gt: GT alpha ``N x 1 x H x W``.
        fg, bg, image: for the composition loss (``N x 3 x H x W``); skipped if None.
        comp_valid: ``N`` bool, samples whose composite identity holds.
        linear: fg/bg are scene-linear (see :func:`composition_loss`).
        l1, composition, laplacian, gradient: term weights.

    Returns:
        Every term summed over levels (``l1``, ``composition``, ...) and ``total``.
    """
    terms: dict[str, torch.Tensor] = {}
    norm = sum(w for _, _, w in levels.values()) or 1.0

    def add(name: str, value: torch.Tensor) -> None:
        terms[name] = terms.get(name, gt.new_zeros(())) + value

    for alpha, mask, level_weight in levels.values():
        s = level_weight / norm
        if l1 > 0:
            add("l1", s * l1_loss(alpha, gt, mask))
        if laplacian > 0:
            add("laplacian", s * laplacian_loss(alpha, gt, mask))
        if gradient > 0:
            add("gradient", s * gradient_loss(alpha, gt, mask))
        if composition > 0 and fg is not None and bg is not None and image is not None:
            w = mask if mask is not None else torch.ones_like(gt)
            if comp_valid is not None:
                w = w * comp_valid.to(w.dtype).view(-1, 1, 1, 1)
            if float(w.sum()) > 0:
                add("composition", s * composition_loss(alpha, fg, bg, image, w, linear))
    scale = {"l1": l1, "composition": composition, "laplacian": laplacian, "gradient": gradient}
    terms["total"] = sum((scale[k] * v for k, v in terms.items()), gt.new_zeros(()))
    return terms
