"""Foreground decontamination by fusing the multi-level solve with nearby opaque colour.

In the band ``0 < α < 1`` the compositing equation ``I = αF + (1-α)B`` says little
about ``F`` where ``α`` is small: the multi-level solver
(:mod:`vfxmatte.decontaminate.multilevel`, Germer et al. 2020) still returns an ``F``
that explains the plate, and in a strand's tip that is mostly noise and background
spill scaled up by ``1/α``. What is known there is that a strand has the colour of
the opaque object it grows from. So the estimate is a per-pixel blend of the two:

``F = w F_ml + (1 - w) F̄``, with ``w = α / (α + α0)``,

where ``F̄`` is the normalised-convolution mean (Knutsson & Westin, CVPR 1993) of the
plate over the nearby opaque pixels (``α >= opaque``, Gaussian of ``sigma`` px); where
no opaque pixel is near, ``F̄ = F_ml``.

Bounds. The solve is clipped per pixel at the plate's local maximum (pymatting's own
clip is at 1.0), the result at a per-pixel ceiling: the brightest channel of the
opaque pixels within ``3 sigma`` (a strand is no brighter than the object it grows
from; farther, the frame's brightest opaque pixel). Like pymatting's clip it bounds
the ``1/α`` blow-up of tiny alphas, but it scales with the plate (linear light: twice
the plate, twice the foreground), an object above 1.0 keeps its values, and a
highlight of the background behind a strand does not raise it (measured: the
crop-wide headroom of the multilevel backend left band fg MSE 20-50% above
pymatting's on the HDR photo shots).

Opaque pixels keep the plate. Transparent pixels get the solver's own smooth
extension of ``F`` inside the solved crops (as pymatting's solver extends ``F``
everywhere; measured better than the opaque average where the matte is too tight),
else ``F̄``; farther ones the same average over a 4x wider radius, and 0 beyond the
band's box grown by ``9 sigma``. The premultiplied result ``αF`` is unchanged.

All arithmetic is on the scene-linear plate (linear light), so a highlight above 1.0
is blended as light, not as a display value. Measured on the held-out photo shots of
``benchmarks/matte_bench.py``: band foreground MSE below pymatting's
``estimate_foreground_ml`` on the same alpha, both the true alpha and the default
matte's (see the benchmark's JSON).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from vfxmatte.config import param, validate_fields
from vfxmatte.decontaminate.multilevel import (
    MultilevelConfig,
    _checked_inputs,
    solve_band,
    solve_regions,
)
from vfxmatte.decontaminate.tiles import Slices, relative
from vfxmatte.errors import ConfigError

__all__ = ["FusionConfig", "estimate_foreground_fusion"]

_NEAR = 1e-3  # weight of opaque pixels in the averaging window that makes a pixel "near"


@dataclass
class FusionConfig:
    """Options of the fused foreground estimation."""

    alpha_scale: float = param(
        1.0,
        "alpha0 of the blend weight alpha / (alpha + alpha0) of the multi-level solve; "
        "larger trusts the nearby opaque colour more.",
        min=1e-6,
        max=100.0,
    )
    sigma: float = param(
        6.0,
        "Gaussian radius (px) over which the nearby opaque colour is averaged.",
        min=0.5,
        max=256.0,
    )
    opaque: float = param(
        0.98,
        "Alpha from which a pixel counts as opaque colour for the average.",
        min=0.5,
        max=1.0,
    )

    def __post_init__(self) -> None:
        validate_fields(self, "fusion.")


def _normalised_mean(
    image: np.ndarray, weight: np.ndarray, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    k = 2 * int(3.0 * sigma) + 1
    num = cv2.GaussianBlur(image * weight[..., None], (k, k), sigma)
    den = cv2.GaussianBlur(weight, (k, k), sigma)
    return num / np.maximum(den, 1e-6)[..., None], den


def _coarse_mean(image: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """:func:`_normalised_mean` over a 4x larger radius, computed at 1/4 resolution."""
    h, w = weight.shape
    size = (max(1, w // 4), max(1, h // 4))
    small_img = cv2.resize(image * weight[..., None], size, interpolation=cv2.INTER_AREA)
    small_w = cv2.resize(weight, size, interpolation=cv2.INTER_AREA)
    k = 2 * int(3.0 * sigma) + 1
    num = cv2.GaussianBlur(small_img, (k, k), sigma)
    den = cv2.GaussianBlur(small_w, (k, k), sigma)
    mean = num / np.maximum(den, 1e-6)[..., None]
    mean[den <= 1e-6] = 0.0
    return cv2.resize(mean, (w, h), interpolation=cv2.INTER_LINEAR)


def _channel_max(image: np.ndarray) -> np.ndarray:
    """``image.max(axis=2)``, the same values, several times faster on large frames (a
    reduction over a short last axis is slow in numpy)."""
    peak = image[..., 0].copy()
    for c in range(1, image.shape[2]):
        np.maximum(peak, image[..., c], out=peak)
    return peak


def _ceiling(
    image: np.ndarray, alpha: np.ndarray, opaque: float, sigma: float
) -> tuple[np.ndarray, np.ndarray]:
    """Upper bound of the straight foreground, and the solver's per-pixel scale (which
    must hold the background too: the larger of the bound and the plate's maximum
    over 9x9); H×W float32, > 0.

    The brightest channel of the opaque pixels within ``3 sigma``: a strand is no
    brighter than the object it grows from, so a highlight of the *background* behind
    it (spill, scaled up by ``1/alpha``) does not raise the bound, while an object
    above 1.0 keeps its values. Where no opaque pixel is that near: the brightest
    opaque pixel of the frame (the plate's maximum over 9x9 when there is none).
    Proportional to the plate (linear light).
    """
    peak = _channel_max(image)
    solid = alpha >= opaque
    k = 2 * int(3.0 * sigma) + 1
    disk = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    near = cv2.dilate(np.where(solid, peak, 0.0).astype(np.float32), disk)
    has_near = cv2.dilate(solid.astype(np.uint8), disk).astype(bool)
    local = cv2.dilate(peak, np.ones((9, 9), np.uint8))
    floor = np.float32(1e-6 * max(float(peak.max()), 1e-30))
    # Farther from any opaque pixel (strand tips): the brightest opaque colour of the
    # frame; only a matte without opaque pixels falls back to the plate itself.
    far = float(peak[solid].max()) if solid.any() else None
    bound = np.maximum(np.where(has_near, near, local if far is None else far), floor)
    # The solver's scale must hold the background too: at least the local plate maximum
    # (measured: a Gaussian-smoothed scale was worse, band fg MSE 113 against 107).
    scale = np.maximum(local, bound)
    return bound.astype(np.float32), scale.astype(np.float32)


def _bounds(
    image: np.ndarray, alpha: np.ndarray, area: Slices, outer: Slices, cfg: FusionConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ceiling, scale, extension)`` over ``area`` (``outer`` or the whole frame):
    :func:`_ceiling` inside ``outer``, the plate's maximum beyond it (proportional, no
    clip); ``extension`` NaN, for the solver to fill."""
    shape = (area[0].stop - area[0].start, area[1].stop - area[1].start)
    inner = relative(outer, area)
    if area == outer:
        ceiling, scale = _ceiling(image[outer], alpha[outer], cfg.opaque, cfg.sigma)
    else:
        top = np.float32(max(float(image.max()), 1e-30))
        ceiling = np.full(shape, top, np.float32)
        scale = np.full(shape, top, np.float32)
        ceiling[inner], scale[inner] = _ceiling(image[outer], alpha[outer], cfg.opaque, cfg.sigma)
    return ceiling, scale, np.full((*shape, image.shape[2]), np.nan, np.float32)


def estimate_foreground_fusion(
    image: np.ndarray, alpha: np.ndarray, config: FusionConfig | None = None
) -> np.ndarray:
    """Straight foreground colour of a plate, free of background spill.

    Args:
        image: ``H×W×3`` float plate, scene-linear; values above 1.0 are kept.
        alpha: ``H×W`` (or ``H×W×1``) float alpha in ``[0, 1]``.
        config: options; defaults to :class:`FusionConfig`.

    Returns:
        ``H×W×3`` float32 straight foreground, scene-linear: ``image`` where
        ``alpha >= 1-ε``; where ``alpha <= ε`` (ε of the multi-level backend's defaults)
        the solver's smooth extension of ``F`` near the band, else the nearby opaque
        colour, or 0 far from the band.

    Raises:
        InputError, BackendUnavailableError: as
        :func:`~vfxmatte.decontaminate.multilevel.estimate_foreground_multilevel`.
        ConfigError: ``config`` is not a :class:`FusionConfig`.
    """
    cfg = config if config is not None else FusionConfig()
    if not isinstance(cfg, FusionConfig):
        raise ConfigError(f"config must be a FusionConfig, got {type(cfg).__name__}.")
    image, alpha = _checked_inputs(image, alpha)
    solver = MultilevelConfig()  # the multi-level backend's defaults
    # The solver's clip follows the plate (pymatting's own clip to [0, 1] bounds the
    # 1/alpha blow-up of tiny alphas; a crop-wide headroom does not), and F is bounded by
    # the brightest opaque colour nearby.
    eps = solver.alpha_epsilon
    band = (alpha > eps) & (alpha < 1.0 - eps)
    fg = np.where((alpha >= 1.0 - eps)[..., None], image, np.float32(0.0))
    rows, cols = np.flatnonzero(band.any(axis=1)), np.flatnonzero(band.any(axis=0))
    if not rows.size:
        return fg
    # Work only in the band's box grown by the averaging reach; the bounds in the box
    # grown by the solver's reach (its crops are band tiles with context).
    h, w = alpha.shape

    def grown(r: int) -> tuple[slice, slice]:
        return np.s_[max(0, rows[0] - r):min(h, rows[-1] + r + 1),
                     max(0, cols[0] - r):min(w, cols[-1] + r + 1)]  # fmt: skip

    r = 3 * int(3.0 * cfg.sigma) + 1
    box = grown(r)
    outer = grown(max(r, solver.tile_size + solver.context_margin))
    # The solver's crops (frame coordinates) lie inside ``outer``, so it runs there,
    # unless it takes the whole frame at once.
    full = (slice(0, h), slice(0, w))
    regions = solve_regions(band, solver)
    area = full if regions == [(full, full)] else outer
    ceiling_a, scale_a, extension_a = _bounds(image, alpha, area, outer, cfg)
    local = [(relative(crop, area), relative(core, area)) for crop, core in regions]
    solve_band(image[area], alpha[area], solver, local, fg[area], ceiling=scale_a,
               solved_clear=extension_a)  # fmt: skip
    img, a, f = image[box], alpha[box], fg[box]
    mean, support = _normalised_mean(img, (a >= cfg.opaque).astype(np.float32), cfg.sigma)
    mean = np.where(support[..., None] > 1e-3, mean, f)
    weight = (a / (a + cfg.alpha_scale))[..., None]
    fused = weight * f + (1.0 - weight) * mean
    ceiling = ceiling_a[relative(box, area)]
    fused = np.clip(fused, 0.0, ceiling[..., None])
    sub = band[box]
    f[sub] = fused[sub]
    # Transparent pixels near the object get the solver's extension of F (else its nearby
    # opaque colour) instead of 0: no change to the premultiplied result (alpha F = 0),
    # but a straight colour that an edge grown later (a matte choke, a blur) shows as the
    # object's, not as black.
    near = (a <= eps) & (support > _NEAR)
    ext = extension_a[relative(box, area)]
    solved = (a <= eps) & np.isfinite(ext[..., 0])
    f[near] = np.clip(mean[near], 0.0, ceiling[near][:, None])
    f[solved] = np.clip(ext[solved], 0.0, ceiling[solved][:, None])
    # Beyond the solved crops: the colour averaged 4x wider, at 1/4 resolution.
    rest = (a <= eps) & ~near & ~solved
    if rest.any():
        far = _coarse_mean(img, (a >= cfg.opaque).astype(np.float32), cfg.sigma)
        f[rest] = np.clip(far[rest], 0.0, ceiling[rest][:, None])
    return fg
