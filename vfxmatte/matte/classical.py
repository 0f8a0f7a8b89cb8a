"""Weight-free matting: a trimap that follows the image, closed-form alpha in its band.

The classical matte stage turns a frame and a coarse guidance mask into a soft alpha
and a per-pixel confidence, with no learned weights:

1. a *search band* around the mask's edge, reaching ``band_fraction`` of the
   object's size inside the mask and ``outer_fraction`` outside
   (:func:`vfxmatte.matte.trimap.search_band`): wide enough to hold the true edge
   when the mask is off by several pixels, hair sticking out beyond it, and a
   translucent veil the mask covers;
2. the band cut into a few padded crops (:func:`vfxmatte.matte.trimap.band_bbox`);
3. in each crop, the band's pixels classified from the image
   (:func:`vfxmatte.matte.geodesic.trimap_geodesic`, ``trimap="geodesic"``): those
   that no edge separates from the mask's certain inside (or outside) become known
   foreground (background); mixed pixels (soft edges, hair, translucent regions)
   stay unknown, with a prior alpha. ``trimap="band"`` keeps the whole band unknown;
4. closed-form matting (Levin, Lischinski & Weiss, "A Closed-Form Solution to Natural
   Image Matting", TPAMI 2008) on the unknown pixels with the known ones as *hard*
   constraints and the prior as a weak data term
   (:func:`vfxmatte.matte.closed_form.estimate_alpha_cf_band`), so alpha equals the
   trimap exactly where it is known;
5. a confidence map from the distance to the unknown region and from how decisive
   the solved alpha is (:func:`confidence_map`).

**Cost follows the band, not the frame.** The geodesic graph has a node per band
pixel and the Laplacian a row per unknown pixel; outside the crops the work is a few
vectorised OpenCV passes. Crops larger than ``max_crop_pixels`` are processed at
reduced resolution and their alpha upsampled inside the unknown region only, which
bounds the cost on 4K plates.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import Any, NamedTuple

import cv2
import numpy as np

from vfxmatte.config import param, validate_fields
from vfxmatte.errors import BackendUnavailableError, ConfigError, InputError
from vfxmatte.matte.closed_form import (
    INSTALL_HINT,
    estimate_alpha_cf_band,
    import_pymatting,
    matting_laplacian_band,
)
from vfxmatte.matte.geodesic import trimap_geodesic
from vfxmatte.matte.infer import grow_unknown, infer_trimap
from vfxmatte.matte.temporal import TemporalPrior, TemporalState, WarpedPrior
from vfxmatte.matte.trimap import (
    BAND_MODES,
    BG,
    FG,
    UNKNOWN,
    band_bbox,
    band_kernel_size,
    band_radii,
    search_band,
)

__all__ = [
    "ClassicalMatte",
    "ClassicalMatteConfig",
    "confidence_map",
    "estimate_alpha_cf_band",
    "matte_classical",
    "matting_laplacian_band",
    "trimap_classical",
]

logger = logging.getLogger(__name__)

_RANGE_SLACK = 1e-3  # display values this far outside [0, 1] are rounding, not linear light
TRIMAPS: tuple[str, ...] = ("infer", "geodesic", "band")


@dataclass
class ClassicalMatteConfig:
    """Options of the weight-free (classical) matte stage."""

    legacy: bool = param(
        False,
        "Use the previous default path: the geodesic trimap (as trimap='geodesic') and "
        "no temporal prior, whatever trimap and temporal_weight say.",
    )
    trimap: str = param(
        "infer",
        "How the band around the mask's edge becomes a trimap: 'infer' segments it from local "
        "colour models of both sides and the image's edges (GrabCut) and leaves a strip "
        "around that boundary unknown; 'geodesic' classifies its pixels from the image's "
        "edges (mixed pixels stay unknown); 'band' keeps the whole band unknown.",
        choices=TRIMAPS,
    )
    unknown_fraction: float = param(
        0.025,
        "Half-width of the unknown strip around the inferred boundary "
        "(trimap='infer'), as a fraction of the object's size (at least min_band pixels).",
        min=0.0,
        max=1.0,
    )
    colour_seed: bool = param(
        False,
        "trimap='infer': start band pixels whose colour is more the certain inside's "
        "than the certain outside's (the mask deciding colours neither explains) as probable "
        "foreground, not all as probable background. Helps objects whose edge colour differs "
        "from their inside (a dark rim, hair of another colour); measured worse on the "
        "held-out photo shots (SAD 1.8 against 1.2).",
    )
    grow_rounds: int = param(
        1,
        "trimap='infer': solve, widen the strip where alpha is still mixed on its border "
        "(hair, veils), solve again; this many times.",
        min=0,
        max=8,
    )
    grabcut_iterations: int = param(
        3,
        "GrabCut iterations of trimap='infer' (colour models re-learned each time).",
        min=1,
        max=20,
    )
    grabcut_max_pixels: int = param(
        250_000,
        "trimap='infer' segments crops larger than this at reduced resolution (the "
        "alpha is still solved at full resolution).",
        min=4096,
        max=100_000_000,
    )
    band_fraction: float = param(
        0.2,
        "How far inside the mask's edge the band reaches, as a fraction of the object's "
        "size (covers a mask that is too large, or that covers a translucent region).",
        min=0.001,
        max=1.0,
    )
    outer_fraction: float = param(
        0.15,
        "How far outside the mask's edge the band reaches, as a fraction of the "
        "object's size (covers a mask that is too small, and hair beyond it).",
        min=0.001,
        max=1.0,
    )
    band_mode: str = param(
        "bbox",
        "How the object's size is measured: short side of its bounding box (MGMatting in the "
        "Wild) or diameter of the disk of equal area (SEMat).",
        choices=BAND_MODES,
    )
    min_band: int = param(3, "Shortest reach of the band on either side, pixels.", min=1, max=1024)
    max_band: int = param(
        256,
        "Longest reach of the band on either side, pixels (before any reduction of "
        "resolution by max_crop_pixels).",
        min=1,
        max=1024,
    )
    threshold: float = param(0.5, "Guidance values above this are foreground.", min=0.0, max=1.0)
    edge_threshold: float = param(
        0.004,
        "Smallest colour step between neighbouring pixels (display units) that counts "
        "as an edge in the geodesic trimap.",
        min=0.0,
        max=1.0,
    )
    texture_factor: float = param(
        3.0,
        "Colour steps up to this multiple of the band's median step count as texture or "
        "shading, not as edges, in the geodesic trimap.",
        min=0.0,
        max=100.0,
    )
    min_edge: float = param(
        0.03,
        "A band pixel that less total edge contrast than this separates from one side "
        "(and less than from the other) is that side's, in the geodesic trimap.",
        min=0.0,
        max=10.0,
    )
    certainty: float = param(
        0.85,
        "Geodesic foreground probability (or its complement) from which a band pixel is "
        "known rather than unknown; higher leaves more pixels to the solver.",
        min=0.5,
        max=1.0,
    )
    mask_trust: float = param(
        0.1,
        "Geodesic penalty per band reach of distance on the wrong side of the mask's edge: "
        "how much the mask's position counts against the image's edges.",
        min=0.0,
        max=10.0,
    )
    length_cost: float = param(
        0.02,
        "Geodesic cost of a path as long as the band's mean reach: the farther a pixel "
        "from one side, the less likely it is that side's.",
        min=0.0,
        max=10.0,
    )
    unknown_grow: int = param(
        1, "Dilation of the unknown pixels of the geodesic trimap, pixels.", min=0, max=64
    )
    prior_weight: float = param(
        1e-3,
        "Weight of the prior alpha as a data term against the matting Laplacian (the "
        "prior is the inferred segmentation for trimap='infer', the mean of the geodesic "
        "probability and the mask for 'geodesic', the mask for 'band'); decides flat "
        "translucent regions. 0: pure closed-form.",
        min=0.0,
        max=10.0,
    )
    temporal_weight: float = param(
        0.0,
        "Weight of the previous frame's alpha, warped by optical flow, as a data term "
        "where the warped frame matches this one (trimap='infer'); steadies unchanged "
        "regions. 0 (the default): frames are matted independently, so a resumed, chunked "
        "or farm run gives exactly the frames of an uninterrupted one; above 0 each frame "
        "depends on every frame before it in its run.",
        min=0.0,
        max=10.0,
    )
    solver: str = param(
        "cf",
        "Alpha solver in the band: 'cf', closed-form matting (Levin et al. 2008).",
        choices=("cf",),
    )
    preconditioner: str = param(
        "jacobi",
        "Conjugate-gradient preconditioner: 'jacobi' (no set-up) or 'ichol' (pymatting's "
        "incomplete Cholesky: fewer iterations, costly set-up).",
        choices=("jacobi", "ichol"),
    )
    epsilon: float = param(
        1e-5,
        "Regularisation of the colour-line model (epsilon of Levin et al. eq. 12); larger gives "
        "smoother alpha and faster convergence.",
        min=1e-10,
        max=1.0,
    )
    max_crop_pixels: int = param(
        500_000,
        "Crops around the band larger than this are processed at reduced resolution.",
        min=4096,
        max=100_000_000,
    )
    cg_tolerance: float = param(
        1e-5,
        "Conjugate-gradient stop: residual relative to the right-hand side.",
        min=1e-12,
        max=0.1,
    )
    cg_max_iterations: int = param(
        5000, "Conjugate-gradient iteration cap per crop.", min=1, max=1_000_000
    )

    def __post_init__(self) -> None:
        validate_fields(self, "classical.")
        if self.min_band > self.max_band:
            raise ConfigError(
                f"Option 'classical.min_band' ({self.min_band}) must not exceed "
                f"'classical.max_band' ({self.max_band})."
            )


class ClassicalMatte:
    """The classical matte backend as the engine builds it: one object per run.

    Calls are frames of one sequence in order: with ``temporal_weight > 0`` (and
    trimap='infer') each frame's solve is steadied by the previous frame's alpha
    (:mod:`vfxmatte.matte.temporal`). :meth:`reset` where frames stop being
    consecutive.
    """

    def __init__(self, config: ClassicalMatteConfig | None = None) -> None:
        self.config = config if config is not None else ClassicalMatteConfig()
        self._temporal = TemporalState()
        eff = _effective(self.config)
        self._uses_temporal = eff.trimap == "infer" and eff.temporal_weight > 0.0

    def __call__(self, image: np.ndarray, guidance: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(alpha, confidence)`` of the next frame; see :func:`matte_classical`."""
        if not self._uses_temporal:
            return matte_classical(image, guidance, self.config)
        img, guide = _check_inputs(image, guidance)
        alpha, confidence, _ = _run(
            img, guide, self.config, solve=True, temporal=self._temporal.prior(img)
        )
        self._temporal.update(img, alpha)
        return alpha, confidence

    def reset(self) -> None:
        """Forget the previous frame (a new pass or chunk)."""
        self._temporal.reset()


def matte_classical(
    image: np.ndarray,
    guidance: np.ndarray,
    config: ClassicalMatteConfig | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Soft alpha and confidence of one object from a frame and its coarse mask.

    Args:
        image: HxWx3 float (float32 preferred), display-referred sRGB-encoded RGB in
            [0,1]. Values slightly outside are clipped; values far outside (a
            scene-linear plate) are clipped with a warning: convert first.
        guidance: HxW (or HxWx1) float in [0,1] or bool, the coarse mask of the object
            at the same size as ``image``.
        config: options; defaults to :class:`ClassicalMatteConfig()`.

    Returns:
        ``(alpha, confidence)``, both HxW float32 in [0,1]. ``alpha`` is exactly 1 in
        the foreground of the trimap that :func:`trimap_classical` returns, exactly 0
        in its background and solved in its unknown region. ``confidence`` is
        described in :func:`confidence_map`.

    Raises:
        InputError: wrong shapes, dtypes, or NaN/inf values.
        BackendUnavailableError: scipy (or pymatting for ``preconditioner='ichol'``)
            is missing.
    """
    alpha, confidence, _ = _run(image, guidance, config, solve=True)
    return alpha, confidence


def trimap_classical(
    image: np.ndarray,
    guidance: np.ndarray,
    config: ClassicalMatteConfig | None = None,
) -> np.ndarray:
    """The trimap :func:`matte_classical` solves with (without solving, except for
    trimap='infer' with grow_rounds > 0, whose final strip depends on a first solve).

    Returns:
        HxW float32 in {0 background, 0.5 unknown, 1 foreground}, at the image's size.
    """
    cfg = _effective(config if config is not None else ClassicalMatteConfig())
    solve = cfg.trimap == "infer" and cfg.grow_rounds > 0
    return _run(image, guidance, cfg, solve=solve)[2]


class _Reach(NamedTuple):
    """How far the band reaches inside / outside the mask, and the unknown strip's
    half-width (trimap='infer'), pixels."""

    inner: int
    outer: int
    width: int

    def scaled(self, s: float) -> _Reach:
        return _Reach(*(max(1, round(v * s)) for v in self))


def _run(
    image: Any,
    guidance: Any,
    config: ClassicalMatteConfig | None,
    *,
    solve: bool,
    temporal: TemporalPrior | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(alpha, confidence, trimap)`` of the frame; alpha and confidence only if ``solve``.

    ``temporal``: the previous frame's alpha warped to this one and its weight, an extra
    data term of the solve (see :mod:`vfxmatte.matte.temporal`).
    """
    cfg = _effective(config if config is not None else ClassicalMatteConfig())
    img, guide = _check_inputs(image, guidance)
    _require(cfg)
    binary = guide > cfg.threshold
    inner, outer = band_radii(
        binary,
        inner_fraction=cfg.band_fraction,
        outer_fraction=cfg.outer_fraction,
        band_mode=cfg.band_mode,
        min_band=cfg.min_band,
        max_band=cfg.max_band,
    )
    width = band_kernel_size(
        binary,
        band_fraction=cfg.unknown_fraction,
        band_mode=cfg.band_mode,
        min_band=cfg.min_band,
        max_band=cfg.max_band,
    )
    reach = _Reach(inner, outer, width)
    region = search_band(binary, inner, outer)
    trimap = region.fg.astype(np.float32)  # outside the crops: certain fg or certain bg
    trimap[region.band] = UNKNOWN
    radius = max(1, min(inner, outer) // 2)  # confidence reaches 1 this far from the band
    pad = radius + 2  # >= radius: confidence is exact; >= 2: every band window has constraints
    if cfg.trimap == "infer":
        pad = max(pad, outer)  # background context for the local colour models
    alpha = region.fg.astype(np.float32)
    confidence = np.ones_like(alpha)
    for crop in band_bbox(trimap, pad, merge_gap=pad):
        t0 = time.perf_counter()
        prior_c = None if temporal is None else temporal.crop(crop.slices)
        a_c, tri_c = _matte_crop(img[crop.slices], binary[crop.slices], reach, cfg, solve, prior_c)
        trimap[crop.slices] = tri_c
        if solve:
            alpha[crop.slices] = a_c
            confidence[crop.slices] = confidence_map(a_c, tri_c, radius)
        logger.debug(
            "classical: crop %s (%d px, %d unknown) in %.3f s",
            crop,
            crop.size,
            int(np.count_nonzero(tri_c == UNKNOWN)),
            time.perf_counter() - t0,
        )
    return alpha, confidence, trimap


def _effective(cfg: ClassicalMatteConfig) -> ClassicalMatteConfig:
    """``cfg`` with ``legacy`` applied: the previous default path."""
    if not cfg.legacy:
        return cfg
    return dataclasses.replace(cfg, trimap="geodesic", temporal_weight=0.0, legacy=False)


def _matte_crop(
    image: np.ndarray,
    binary: np.ndarray,
    reach: _Reach,
    cfg: ClassicalMatteConfig,
    solve: bool,
    temporal: WarpedPrior | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, trimap)`` of one crop (HxW float32), downscaled first when too large.

    trimap='infer' solves at full resolution whatever the crop's size (its unknown strip
    is narrow; the segmentation itself is computed at reduced resolution).
    """
    h, w = binary.shape
    if h * w <= cfg.max_crop_pixels or cfg.trimap == "infer":
        return _matte_full(image, binary, reach, cfg, solve, temporal)
    s = math.sqrt(cfg.max_crop_pixels / (h * w))
    size = (max(8, round(w * s)), max(8, round(h * s)))  # cv2 order: (width, height)
    img_lo = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    bin_lo = cv2.resize(binary.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.5
    logger.debug("classical: crop %dx%d processed at %dx%d", w, h, *size)
    a_lo, tri_lo = _matte_full(img_lo, bin_lo, reach.scaled(s), cfg, solve)
    # A full-resolution pixel stays known only if all the low-resolution pixels it
    # interpolates agree.
    fg = cv2.resize((tri_lo == FG).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    bg = cv2.resize((tri_lo == BG).astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    trimap = np.full((h, w), UNKNOWN, dtype=np.float32)
    trimap[fg > 1.0 - 1e-4] = FG
    trimap[bg > 1.0 - 1e-4] = BG
    if not solve:
        return trimap, trimap
    a = cv2.resize(a_lo, (w, h), interpolation=cv2.INTER_LINEAR)
    alpha = np.where(trimap == UNKNOWN, np.clip(a, 0.0, 1.0), trimap).astype(np.float32)
    return alpha, trimap


def _matte_full(
    image: np.ndarray,
    binary: np.ndarray,
    reach: _Reach,
    cfg: ClassicalMatteConfig,
    solve: bool,
    temporal: WarpedPrior | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, trimap)`` of one crop at its own resolution."""
    inner, outer = reach.inner, reach.outer
    if cfg.trimap == "infer":
        return _matte_inferred(image, binary, reach, cfg, solve, temporal)
    if cfg.trimap == "geodesic":
        trimap, prior = trimap_geodesic(
            image,
            binary,
            inner=inner,
            outer=outer,
            edge_threshold=cfg.edge_threshold,
            texture_factor=cfg.texture_factor,
            min_edge=cfg.min_edge,
            certainty=cfg.certainty,
            mask_trust=cfg.mask_trust,
            length_cost=cfg.length_cost,
            grow=cfg.unknown_grow,
        )
    else:
        region = search_band(binary, inner, outer)
        trimap = region.fg.astype(np.float32)
        trimap[region.band] = UNKNOWN
        prior = binary.astype(np.float32)
    if not solve:
        return trimap, trimap
    return _solve(image, trimap, cfg, prior, cfg.prior_weight), trimap


def _solve(
    image: np.ndarray,
    trimap: np.ndarray,
    cfg: ClassicalMatteConfig,
    prior: np.ndarray,
    weight: float | np.ndarray,
) -> np.ndarray:
    """The closed-form solve of ``trimap``'s unknown pixels with ``cfg``'s solver options."""
    return estimate_alpha_cf_band(
        image,
        trimap,
        epsilon=cfg.epsilon,
        preconditioner=cfg.preconditioner,
        rtol=cfg.cg_tolerance,
        max_iterations=cfg.cg_max_iterations,
        prior=prior,
        prior_weight=weight,
    )


def _matte_inferred(
    image: np.ndarray,
    binary: np.ndarray,
    reach: _Reach,
    cfg: ClassicalMatteConfig,
    solve: bool,
    temporal: WarpedPrior | None,
) -> tuple[np.ndarray, np.ndarray]:
    """``(alpha, trimap)`` of one crop with the inferred trimap (:mod:`.infer`)."""
    inferred = infer_trimap(
        image,
        binary,
        inner=reach.inner,
        outer=reach.outer,
        width=reach.width,
        iterations=cfg.grabcut_iterations,
        max_pixels=cfg.grabcut_max_pixels,
        colour_seed=cfg.colour_seed,
        ambiguity=1.5 if cfg.colour_seed else 0.0,
    )
    trimap = inferred.trimap
    if not solve:
        return trimap, trimap
    # Data term: weakly towards the segmentation, and towards the previous frame's alpha
    # where it is trusted; one weighted target.
    weight = np.full(trimap.shape, cfg.prior_weight, np.float32)
    target = inferred.segmentation.astype(np.float32) * cfg.prior_weight
    if temporal is not None:
        w_t = temporal.weight * cfg.temporal_weight
        weight += w_t
        target += w_t * temporal.alpha
    target = np.divide(target, weight, out=np.zeros_like(target), where=weight > 0)
    for round_ in range(cfg.grow_rounds + 1):
        alpha = _solve(image, trimap, cfg, target, weight)
        wider = (
            None
            if round_ == cfg.grow_rounds
            else grow_unknown(trimap, alpha, inferred.region, reach.width)
        )
        if wider is None:
            break
        trimap = wider
    return alpha, trimap


def _check_inputs(image: Any, guidance: Any) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(image)
    guide = np.asarray(guidance)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(
            f"image must be HxWx3 RGB; got shape {img.shape}. "
            "Drop alpha/extra channels or stack a grey image to 3 channels."
        )
    if img.dtype.kind != "f":
        raise InputError(
            f"image must be float in [0,1]; got dtype {img.dtype}. "
            "Convert with image.astype(np.float32) / 255 for 8-bit data."
        )
    if guide.ndim == 3 and guide.shape[2] == 1:
        guide = guide[:, :, 0]
    if guide.shape != img.shape[:2]:
        raise InputError(
            f"guidance must be HxW matching image {img.shape} (HxWx3); "
            f"got guidance shape {guide.shape}. Resize the mask to the frame."
        )
    if guide.dtype != bool and guide.dtype.kind not in "fiu":
        raise InputError(f"guidance must be float or bool; got dtype {guide.dtype}.")
    if not np.isfinite(img).all():
        raise InputError(
            "image contains NaN or infinite values; fix the plate or its "
            "colour conversion before matting."
        )
    if guide.dtype.kind == "f" and not np.isfinite(guide).all():
        raise InputError("guidance contains NaN or infinite values.")
    lo, hi = float(img.min()), float(img.max())
    if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
        warnings.warn(
            f"image values span [{lo:.3g}, {hi:.3g}], outside the display range [0,1]; they "
            "are clipped. Convert scene-linear plates to display sRGB before matting.",
            RuntimeWarning,
            stacklevel=3,
        )
    if lo < 0.0 or hi > 1.0:  # a display image already in [0,1] needs no clipped copy
        img = np.clip(img, 0.0, 1.0)
    return img.astype(np.float32, copy=False), guide.astype(np.float32, copy=False)


def _require(cfg: ClassicalMatteConfig) -> None:
    """Fail early, with the extra to install, when an optional dependency is missing."""
    try:
        import scipy.sparse  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"The classical matte backend needs scipy; install it with {INSTALL_HINT}."
        ) from exc
    if cfg.preconditioner == "ichol":
        import_pymatting()


def confidence_map(alpha: np.ndarray, trimap: np.ndarray, band_radius: int) -> np.ndarray:
    """Per-pixel confidence of a solved alpha, in [0,1].

    With ``r = band_radius`` (half the band width), ``d_U`` a known pixel's Euclidean
    distance to the nearest unknown pixel, ``d_K`` an unknown pixel's distance to the
    nearest known one, and the decisiveness ``δ(α) = 1 - 4α(1-α)`` (1 at α∈{0,1},
    0 at α=0.5)::

        known:    c = 0.5 + 0.5 * min(1, d_U / r)              in (0.5, 1]
        unknown:  c = 0.5 * δ(α) * (1 - 0.5 * min(1, d_K / r)) in [0, 0.5)

    So ``c = 1`` in known regions at least ``r`` pixels from the band, ``c > 0.5``
    in all known pixels and ``c < 0.5`` in the band, lowest for undecided alpha deep
    inside it: thresholding at 0.5 recovers the band, and a higher threshold also
    selects the trimap's edge, where the guidance itself may be off. Distances are
    measured within the array given, so pass crops padded by at least ``r``.

    Args:
        alpha: HxW float alpha in [0,1].
        trimap: HxW float trimap (0 / 0.5 / 1) of the same crop.
        band_radius: ``r`` in pixels, >= 1.

    Returns:
        HxW float32 confidence in [0,1].
    """
    r = float(max(1, band_radius))
    unknown = np.asarray(trimap) == UNKNOWN
    conf = np.ones(unknown.shape, dtype=np.float32)
    if not unknown.any():
        return conf
    u8 = unknown.astype(np.uint8)
    d_u = cv2.distanceTransform(1 - u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    conf = 0.5 + 0.5 * np.minimum(1.0, d_u / r)
    if not unknown.all():
        d_k = cv2.distanceTransform(u8, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
        a = np.clip(np.asarray(alpha, dtype=np.float32), 0.0, 1.0)
        decisive = 1.0 - 4.0 * a * (1.0 - a)
        inner = 0.5 * decisive * (1.0 - 0.5 * np.minimum(1.0, d_k / r))
        conf = np.where(unknown, inner, conf)
    else:
        conf[unknown] = 0.0
    return conf.astype(np.float32)
