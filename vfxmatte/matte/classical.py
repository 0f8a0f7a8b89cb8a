"""Weight-free matting: closed-form alpha solved only in the trimap's unknown band.

The classical matte stage turns a frame and a coarse guidance mask into a soft alpha
and a per-pixel confidence, with no learned weights:

1. a trimap from the guidance whose band width adapts to the object's size
   (:func:`vfxmatte.matte.trimap.trimap_from_mask`);
2. the band cut into a few padded crops (:func:`vfxmatte.matte.trimap.band_bbox`);
3. in each crop, closed-form matting (Levin, Lischinski & Weiss, "A Closed-Form
   Solution to Natural Image Matting", TPAMI 2008): minimise ``α^T L α`` with the
   matting Laplacian ``L`` of §3 (eq. 12) and the known trimap pixels as *hard*
   constraints, i.e. solve ``L_UU α_U = -L_UK α_K`` (the limit λ→∞ of the
   soft-constrained system of §3.1, eq. 14, as in pymatting's
   ``estimate_alpha_cf``), so alpha equals the trimap exactly where it is known;
4. a confidence map from the distance to the band edge and from how decisive the
   solved alpha is (:func:`confidence_map`).

**Cost follows the band, not the frame.** No Laplacian is ever built for the frame
nor even for a whole crop: :func:`matting_laplacian_band` builds only the rows of
the unknown pixels, from only the 3x3 windows that touch one, so memory and time
grow with the number of unknown pixels. Outside the crops the work is a few
vectorised OpenCV passes (threshold, dilate, erode, connected components). Crops
larger than ``max_crop_pixels`` are solved at reduced resolution and their alpha
upsampled inside the band only, which bounds the cost on 4K plates.

The solver is a Jacobi-preconditioned conjugate gradient written here with
element-wise reductions: it never calls BLAS, so it does not oversubscribe the
CPU when frames are processed in parallel. ``preconditioner="ichol"`` uses
pymatting's thresholded incomplete Cholesky instead (fewer iterations, costlier
set-up; numba-compiled on first use).
"""

from __future__ import annotations

import functools
import logging
import math
import time
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from vfxmatte.config import param, param_specs, validate_value
from vfxmatte.errors import BackendUnavailableError, ConfigError, InputError
from vfxmatte.matte.trimap import (
    BAND_MODES,
    FG,
    UNKNOWN,
    band_bbox,
    band_kernel_size,
    trimap_from_mask,
)

if TYPE_CHECKING:
    import scipy.sparse

__all__ = [
    "ClassicalMatteConfig",
    "confidence_map",
    "estimate_alpha_cf_band",
    "matte_classical",
    "matting_laplacian_band",
]

logger = logging.getLogger(__name__)

_INSTALL_HINT = "pip install 'vfxmatte[classical]'"
_RANGE_SLACK = 1e-3  # display values this far outside [0, 1] are rounding, not linear light


@dataclass
class ClassicalMatteConfig:
    """Options of the weight-free (classical) matte stage."""

    band_fraction: float = param(
        0.04, "Width of the unknown band as a fraction of the object's size.", min=0.001, max=0.5
    )
    band_mode: str = param(
        "bbox",
        "How the object's size is measured: short side of its bounding box (MGMatting in the "
        "Wild) or diameter of the disk of equal area (SEMat).",
        choices=BAND_MODES,
    )
    min_band: int = param(3, "Narrowest unknown band, pixels.", min=1, max=1024)
    max_band: int = param(64, "Widest unknown band, pixels.", min=1, max=1024)
    threshold: float = param(0.5, "Guidance values above this are foreground.", min=0.0, max=1.0)
    solver: str = param(
        "cf", "Alpha solver in the band: 'cf', closed-form matting (Levin et al. 2008).",
        choices=("cf",),
    )
    preconditioner: str = param(
        "jacobi",
        "Conjugate-gradient preconditioner: 'jacobi' (no set-up) or 'ichol' (pymatting's "
        "incomplete Cholesky: fewer iterations, costly set-up).",
        choices=("jacobi", "ichol"),
    )
    epsilon: float = param(
        1e-7,
        "Regularisation of the colour-line model (epsilon of Levin et al. eq. 12); larger gives "
        "smoother alpha and faster convergence.",
        min=1e-10, max=1.0,
    )
    max_crop_pixels: int = param(
        1_000_000,
        "Crops around the band larger than this are solved at reduced resolution.",
        min=4096, max=100_000_000,
    )
    cg_tolerance: float = param(
        1e-5, "Conjugate-gradient stop: residual relative to the right-hand side.",
        min=1e-12, max=0.1,
    )
    cg_max_iterations: int = param(
        5000, "Conjugate-gradient iteration cap per crop.", min=1, max=1_000_000
    )

    def __post_init__(self) -> None:
        for spec in param_specs(type(self)):
            value = validate_value(spec, getattr(self, spec.name), where="classical.")
            setattr(self, spec.name, value)
        if self.min_band > self.max_band:
            raise ConfigError(
                f"Option 'classical.min_band' ({self.min_band}) must not exceed "
                f"'classical.max_band' ({self.max_band})."
            )


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
        the trimap's foreground, exactly 0 in its background and solved in the band.
        ``confidence`` is described in :func:`confidence_map`.

    Raises:
        InputError: wrong shapes, dtypes, or NaN/inf values.
        BackendUnavailableError: scipy (or pymatting for ``preconditioner='ichol'``)
            is missing.
    """
    cfg = config if config is not None else ClassicalMatteConfig()
    img, guide = _check_inputs(image, guidance)
    _require(cfg)
    binary = guide > cfg.threshold
    trimap = trimap_from_mask(
        guide, band_fraction=cfg.band_fraction, band_mode=cfg.band_mode,
        min_band=cfg.min_band, max_band=cfg.max_band, threshold=cfg.threshold,
    )
    k = band_kernel_size(binary, band_fraction=cfg.band_fraction,
                         band_mode=cfg.band_mode,
                         min_band=cfg.min_band, max_band=cfg.max_band)
    radius = max(1, k // 2)  # half-width of the band
    pad = radius + 2  # >= radius: confidence is exact; >= 2: every band window has constraints
    alpha = trimap.copy()
    alpha[trimap == UNKNOWN] = 0.0
    confidence = np.ones_like(trimap)
    for crop in band_bbox(trimap, pad, merge_gap=pad):
        t0 = time.perf_counter()
        tri_c = trimap[crop.slices]
        a_c = _solve_crop(img[crop.slices], tri_c, cfg)
        alpha[crop.slices] = a_c
        confidence[crop.slices] = confidence_map(a_c, tri_c, radius)
        logger.debug("classical: crop %s (%d px, %d unknown) solved in %.3f s", crop,
                     crop.size, int(np.count_nonzero(tri_c == UNKNOWN)), time.perf_counter() - t0)
    return alpha, confidence


def _check_inputs(image: Any, guidance: Any) -> tuple[np.ndarray, np.ndarray]:
    img = np.asarray(image)
    guide = np.asarray(guidance)
    if img.ndim != 3 or img.shape[2] != 3:
        raise InputError(f"image must be HxWx3 RGB; got shape {img.shape}. "
                         "Drop alpha/extra channels or stack a grey image to 3 channels.")
    if img.dtype.kind != "f":
        raise InputError(f"image must be float in [0,1]; got dtype {img.dtype}. "
                         "Convert with image.astype(np.float32) / 255 for 8-bit data.")
    if guide.ndim == 3 and guide.shape[2] == 1:
        guide = guide[:, :, 0]
    if guide.shape != img.shape[:2]:
        raise InputError(f"guidance must be HxW matching image {img.shape} (HxWx3); "
                         f"got guidance shape {guide.shape}. Resize the mask to the frame.")
    if guide.dtype != bool and guide.dtype.kind not in "fiu":
        raise InputError(f"guidance must be float or bool; got dtype {guide.dtype}.")
    if not np.isfinite(img).all():
        raise InputError("image contains NaN or infinite values; fix the plate or its "
                         "colour conversion before matting.")
    if guide.dtype.kind == "f" and not np.isfinite(guide).all():
        raise InputError("guidance contains NaN or infinite values.")
    lo, hi = float(img.min()), float(img.max())
    if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
        warnings.warn(
            f"image values span [{lo:.3g}, {hi:.3g}], outside the display range [0,1]; they "
            "are clipped. Convert scene-linear plates to display sRGB before matting.",
            RuntimeWarning, stacklevel=3,
        )
    img = np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)
    return img, guide.astype(np.float32, copy=False)


def _require(cfg: ClassicalMatteConfig) -> None:
    """Fail early, with the extra to install, when an optional dependency is missing."""
    try:
        import scipy.sparse  # noqa: F401
    except ImportError as exc:
        raise BackendUnavailableError(
            f"The classical matte backend needs scipy; install it with {_INSTALL_HINT}."
        ) from exc
    if cfg.preconditioner == "ichol":
        _import_pymatting()


def _import_pymatting() -> Any:
    try:
        import pymatting
    except ImportError as exc:
        raise BackendUnavailableError(
            f"preconditioner='ichol' of the classical matte backend needs pymatting; install "
            f"it with {_INSTALL_HINT}, or use preconditioner='jacobi'."
        ) from exc
    return pymatting


def _solve_crop(image: np.ndarray, trimap: np.ndarray, cfg: ClassicalMatteConfig) -> np.ndarray:
    """Alpha of one crop (HxW float32), downscaled first when the crop is too large."""
    h, w = trimap.shape
    solve = functools.partial(
        estimate_alpha_cf_band, epsilon=cfg.epsilon, preconditioner=cfg.preconditioner,
        rtol=cfg.cg_tolerance, max_iterations=cfg.cg_max_iterations,
    )
    if h * w <= cfg.max_crop_pixels:
        return solve(image, trimap)
    s = math.sqrt(cfg.max_crop_pixels / (h * w))
    size = (max(8, round(w * s)), max(8, round(h * s)))  # cv2 order: (width, height)
    img_lo = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    # A low-resolution pixel stays known only if all the pixels it covers agree.
    fg_lo = cv2.resize((trimap == FG).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    bg_lo = cv2.resize((trimap == 0.0).astype(np.float32), size, interpolation=cv2.INTER_AREA)
    tri_lo = np.full(fg_lo.shape, UNKNOWN, dtype=np.float32)
    tri_lo[fg_lo > 1.0 - 1e-4] = FG
    tri_lo[bg_lo > 1.0 - 1e-4] = 0.0
    if (tri_lo == UNKNOWN).all():  # too coarse to keep any constraint: solve at full size
        return solve(image, trimap)
    logger.debug("classical: crop %dx%d solved at %dx%d", w, h, *size)
    a_lo = solve(img_lo, tri_lo)
    a = cv2.resize(a_lo, (w, h), interpolation=cv2.INTER_LINEAR)
    return np.where(trimap == UNKNOWN, np.clip(a, 0.0, 1.0), trimap).astype(np.float32)


def estimate_alpha_cf_band(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    epsilon: float = 1e-7,
    preconditioner: str = "jacobi",
    rtol: float = 1e-5,
    max_iterations: int = 5000,
) -> np.ndarray:
    """Closed-form alpha (Levin et al. 2008) of one image or crop, solved on the band only.

    Solves ``L_UU α_U = -L_UK α_K`` (known pixels as hard constraints) by
    preconditioned conjugate gradient.

    Args:
        image: HxWx3 float RGB, display-referred in [0,1].
        trimap: HxW float, 0 background, 1 foreground, anything else unknown.
        epsilon: colour-line regularisation (eq. 12).
        preconditioner: ``"jacobi"`` or ``"ichol"`` (needs pymatting).
        rtol: stop when ``|r| <= rtol |b|``.
        max_iterations: iteration cap; on reaching it a ``RuntimeWarning`` is issued
            and the current iterate is used.

    Returns:
        HxW float32 alpha in [0,1], equal to the trimap where it is 0 or 1.
    """
    tri = np.asarray(trimap, dtype=np.float64)
    alpha = tri.astype(np.float32)
    unknown = (tri != 0.0) & (tri != 1.0)
    if not unknown.any():
        return alpha
    if unknown.all() or min(tri.shape) < 3:
        raise InputError(
            f"Closed-form matting needs a trimap of at least 3x3 pixels with some known "
            f"pixels; got shape {tri.shape} with {int(unknown.sum())} of {unknown.size} "
            "unknown. The guidance mask must leave some certain foreground or background."
        )
    A, b, index = matting_laplacian_band(image, tri, epsilon=epsilon)
    # Started from zero: a blurred-trimap or a half-resolution warm start was measured
    # to save no iterations (the slow modes are not the ones a smooth guess fixes).
    x = _pcg(A, b, np.zeros_like(b), _preconditioner(A, preconditioner), rtol, max_iterations)
    alpha.ravel()[index] = np.clip(x, 0.0, 1.0)
    return alpha


def matting_laplacian_band(
    image: np.ndarray, trimap: np.ndarray, *, epsilon: float = 1e-7
) -> tuple[scipy.sparse.csr_matrix, np.ndarray, np.ndarray]:
    """The closed-form system restricted to the unknown pixels (Levin et al. 2008, eq. 12).

    For every 3x3 window ``w`` that touches an unknown pixel, the window's block
    ``δ_ij - (1 + (I_i-μ)^T (Σ + ε/9 I_3)^-1 (I_j-μ)) / 9`` is added to the rows of its
    unknown pixels; entries on known columns move to the right-hand side. Equal to
    ``L[U][:, U]`` and ``-L[U][:, K] α_K`` of ``pymatting.cf_laplacian`` (windows fully
    inside the image), at a cost proportional to the number of unknown pixels.

    Args:
        image: HxWx3 float RGB in [0,1] (computed in float64).
        trimap: HxW float, 0 / 1 known, anything else unknown.
        epsilon: colour-line regularisation.

    Returns:
        ``(A, b, index)``: ``A`` the NxN symmetric positive (semi-)definite CSR matrix
        of the N unknown pixels, ``b`` the float64 right-hand side (N,), and ``index``
        (N,) the flat (row-major) positions of the unknown pixels.
    """
    import scipy.sparse

    img = np.asarray(image, dtype=np.float64)
    tri = np.asarray(trimap, dtype=np.float64)
    h, w = tri.shape
    unknown = (tri != 0.0) & (tri != 1.0)
    index = np.flatnonzero(unknown)
    n = index.size
    # Row number of each pixel in the system; known pixels map to a dummy row ``n``.
    itype = np.int32 if h * w < 2**31 else np.int64  # halves the index arrays
    row_of = np.full(h * w, n, dtype=itype)
    row_of[index] = np.arange(n)
    V = _accumulate_windows(img, unknown, row_of, n, epsilon)  # (n, 25) stencil values
    dy, dx = np.mgrid[-2:3, -2:3]
    # Neighbours across the crop's edge wrap around, but no window holds such a pair: their
    # stencil value is exactly 0 and they drop out below.
    nb = np.clip(index[:, None] + (dy * w + dx).ravel(), 0, h * w - 1).astype(itype)
    col = row_of[nb]
    b = -(V * (tri.ravel() == 1.0)[nb]).sum(axis=1)
    keep = (col < n) & (V != 0.0)
    # Offsets are in raster order, so the columns of each row come out sorted.
    indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    A = scipy.sparse.csr_matrix((V[keep], col[keep], indptr), shape=(n, n))
    return A, b, index


_CHUNK = 1 << 14  # windows per batch: bounds the temporaries to about 50 MB


def _accumulate_windows(
    img: np.ndarray, unknown: np.ndarray, row_of: np.ndarray, n: int, epsilon: float
) -> np.ndarray:
    """Sum the 9x9 blocks of the windows touching ``unknown`` into an (n, 25) stencil."""
    h, w, _ = img.shape
    centres = cv2.dilate(unknown.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    centres[[0, -1], :] = False  # windows must lie inside the image
    centres[:, [0, -1]] = False
    cflat = np.flatnonzero(centres)
    oy, ox = (a.ravel() for a in np.mgrid[-1:2, -1:2])
    offsets = oy * w + ox
    # Stencil slot (0..24) of pixel j relative to pixel i, for i, j in a window.
    slot = (oy[None, :] - oy[:, None] + 2) * 5 + (ox[None, :] - ox[:, None] + 2)
    colours = img.reshape(-1, 3)
    V = np.zeros((n + 1) * 25)
    for start in range(0, cflat.size, _CHUNK):
        pix = cflat[start:start + _CHUNK, None] + offsets  # (W, 9)
        c = colours[pix]
        c -= c.mean(axis=1, keepdims=True)  # (W, 9, 3) centred window colours
        cov = np.matmul(c.transpose(0, 2, 1), c)
        cov += epsilon * np.eye(3)
        cov /= 9.0
        G = np.matmul(np.matmul(c, np.linalg.inv(cov)), c.transpose(0, 2, 1))
        G += 1.0
        G *= -1.0 / 9.0
        G[:, np.arange(9), np.arange(9)] += 1.0  # (W, 9, 9) window blocks
        keys = (row_of[pix].astype(np.int64)[:, :, None] * 25 + slot).ravel()
        lo, hi = int(keys.min()), int(keys.max())
        V[lo:hi + 1] += np.bincount(keys - lo, weights=G.ravel(), minlength=hi - lo + 1)
    return V[: n * 25].reshape(n, 25)


def _preconditioner(A: scipy.sparse.csr_matrix, kind: str) -> Any:
    if kind == "ichol":
        return _ichol_rcm(A)
    if kind != "jacobi":
        raise ConfigError(f"preconditioner got {kind!r}; valid choices: jacobi, ichol.")
    inv_diag = 1.0 / A.diagonal()
    return lambda r: r * inv_diag


def _ichol_rcm(A: scipy.sparse.csr_matrix) -> Any:
    """pymatting's incomplete Cholesky of ``A`` in reverse Cuthill-McKee order.

    A band is long and thin: in raster order its matrix has a bandwidth of about a
    crop row and the factor fills in; reordered along the band, the fill and the
    factorisation time drop by half or more.
    """
    from scipy.sparse.csgraph import reverse_cuthill_mckee

    pymatting = _import_pymatting()
    perm = reverse_cuthill_mckee(A, symmetric_mode=True)
    factor = pymatting.ichol(A[perm][:, perm].tocsc(), discard_threshold=1e-3,
                             max_nnz=max(20 * A.nnz, 1 << 20))
    inverse = np.empty_like(perm)
    inverse[perm] = np.arange(perm.size)
    return lambda r: factor(r[perm])[inverse]


def _dot(a: np.ndarray, b: np.ndarray) -> float:
    # einsum's own loop, not BLAS: no thread pool to oversubscribe.
    return float(np.einsum("i,i->", a, b))


def _pcg(A: Any, b: np.ndarray, x0: np.ndarray, M: Any, rtol: float, maxiter: int) -> np.ndarray:
    """Preconditioned conjugate gradient (Hestenes & Stiefel 1952) for SPD ``A``."""
    norm_b = math.sqrt(_dot(b, b))
    if norm_b == 0.0:  # no foreground constraint reaches these pixels: alpha = 0
        return np.zeros_like(b)
    x = x0.astype(np.float64, copy=True)
    r = b - A @ x
    stop = rtol * norm_b
    if math.sqrt(_dot(r, r)) <= stop:
        return x
    z = M(r)
    p = z.copy()
    rz = _dot(r, z)
    for it in range(1, maxiter + 1):
        Ap = A @ p
        step = rz / _dot(p, Ap)
        x += step * p
        r -= step * Ap
        if math.sqrt(_dot(r, r)) <= stop:
            logger.debug("classical: CG converged in %d iterations (n=%d)", it, b.size)
            return x
        z = M(r)
        rz_new = _dot(r, z)
        p *= rz_new / rz
        p += z
        rz = rz_new
    warnings.warn(
        f"Closed-form matting stopped after {maxiter} conjugate-gradient iterations at relative "
        f"residual {math.sqrt(_dot(r, r)) / norm_b:.1e} (target {rtol:.0e}); "
        "alpha may be slightly off. Raise cg_max_iterations or epsilon.",
        RuntimeWarning, stacklevel=3,
    )
    return x


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

