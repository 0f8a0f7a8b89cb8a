"""Closed-form matting (Levin, Lischinski & Weiss, TPAMI 2008) solved on a band only.

``α^T L α`` with the matting Laplacian ``L`` of §3 (eq. 12) is minimised over the
unknown pixels of a trimap, the known pixels being *hard* constraints: ``L_UU α_U =
-L_UK α_K`` (the limit λ→∞ of the soft-constrained system of §3.1, eq. 14, as in
pymatting's ``estimate_alpha_cf``). An optional *data term* ``λ Σ_U (α_i - α̂_i)^2``
pulls the unknown pixels weakly towards a prior ``α̂`` (the soft constraints of
eq. 14 applied to the unknown pixels too, like the data term that Wang & Cohen's
"Optimized Color Sampling for Robust Matting", CVPR 2007, adds to the same
Laplacian): ``(L_UU + λI) α_U = -L_UK α_K + λ α̂_U``. It decides the alpha of
regions the colour-line model leaves free, such as a flat semi-transparent veil,
whose level no edge pins down.

**Cost follows the band, not the image.** :func:`matting_laplacian_band` builds only
the rows of the unknown pixels, from only the 3x3 windows that touch one, so memory
and time grow with the number of unknown pixels.

The solver is a Jacobi-preconditioned conjugate gradient written here with
element-wise reductions: it never calls BLAS, so it does not oversubscribe the CPU
when frames are processed in parallel. ``preconditioner="ichol"`` uses pymatting's
thresholded incomplete Cholesky instead (fewer iterations, costlier set-up;
numba-compiled on first use).
"""

from __future__ import annotations

import logging
import math
import warnings
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from vfxmatte.errors import BackendUnavailableError, ConfigError, InputError

if TYPE_CHECKING:
    import scipy.sparse

__all__ = ["estimate_alpha_cf_band", "matting_laplacian_band"]

logger = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'vfxmatte[classical]'"


def import_pymatting() -> Any:
    """pymatting, or a :class:`BackendUnavailableError` naming the extra to install."""
    try:
        import pymatting
    except ImportError as exc:
        raise BackendUnavailableError(
            f"preconditioner='ichol' of the classical matte backend needs pymatting; install "
            f"it with {INSTALL_HINT}, or use preconditioner='jacobi'."
        ) from exc
    return pymatting


def estimate_alpha_cf_band(
    image: np.ndarray,
    trimap: np.ndarray,
    *,
    epsilon: float = 1e-7,
    preconditioner: str = "jacobi",
    rtol: float = 1e-5,
    max_iterations: int = 5000,
    prior: np.ndarray | None = None,
    prior_weight: float | np.ndarray = 0.0,
) -> np.ndarray:
    """Closed-form alpha (Levin et al. 2008) of one image or crop, solved on the band only.

    Solves ``(L_UU + λI) α_U = -L_UK α_K + λ α̂_U`` (known pixels as hard constraints,
    ``λ = prior_weight``, ``α̂ = prior``) by preconditioned conjugate gradient; with
    ``λ = 0`` this is the plain closed-form system.

    Args:
        image: HxWx3 float RGB, display-referred in [0,1].
        trimap: HxW float, 0 background, 1 foreground, anything else unknown.
        epsilon: colour-line regularisation (eq. 12).
        prior: HxW float in [0,1], the data term's target at the unknown pixels
            (ignored elsewhere); needed when ``prior_weight > 0``.
        prior_weight: ``λ`` >= 0, the data term's weight relative to the Laplacian: a
            number, or an HxW array of per-pixel weights (``diag(λ)`` for ``λI``).
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
    weights = np.asarray(prior_weight, dtype=np.float64)
    if weights.ndim not in (0, 2) or (weights.ndim == 2 and weights.shape != tri.shape):
        raise InputError(f"prior_weight must be a number or an array of the trimap's shape "
                         f"{tri.shape}; got shape {weights.shape}.")
    if not np.isfinite(weights).all() or (weights < 0.0).any():
        raise ConfigError(f"prior_weight must be finite and >= 0; got min {weights.min()}.")
    use_prior = bool((weights > 0.0).any())
    if use_prior and (prior is None or np.shape(prior) != tri.shape):
        raise InputError(f"prior must be an HxW array of the trimap's shape {tri.shape}; "
                         f"got {None if prior is None else np.shape(prior)}.")
    A, b, index = matting_laplacian_band(image, tri, epsilon=epsilon)
    # Without a prior, started from zero: a blurred-trimap or a half-resolution warm start
    # was measured to save no iterations (the slow modes are not the ones a smooth guess
    # fixes). Started from the prior, the data-term system needs 5-20% fewer.
    x0 = np.zeros_like(b)
    if use_prior:
        x0 = np.asarray(prior, dtype=np.float64).ravel()[index]
        lam = weights.ravel()[index] if weights.ndim == 2 else np.full(index.size, weights)
        A = A + _diagonal(lam)
        b = b + lam * x0
    x = _pcg(A, b, x0, _preconditioner(A, preconditioner), rtol, max_iterations)
    alpha.ravel()[index] = np.clip(x, 0.0, 1.0)
    return alpha


def _diagonal(values: np.ndarray) -> scipy.sparse.csr_matrix:
    import scipy.sparse

    return scipy.sparse.diags(values, format="csr")


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

    pymatting = import_pymatting()
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
