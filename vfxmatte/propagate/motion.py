"""Motion for the ``snapcut`` propagator: dense flow both ways, its consistency, object motion.

Dense flow is DIS (Kroeger et al., ECCV 2016) on greyscale copies at the
working resolution, computed in both directions between consecutive frames.
Forward-backward consistency (as in Sundaram, Brox and Keutzer, "Dense point
trajectories by GPU-accelerated large displacement optical flow", ECCV 2010,
section 4.1) marks the pixels of the new frame whose flow does not come back to
where it started: they were hidden in the previous frame (background the object
uncovers, the part of an object that comes out from behind another) or the flow
there is unreliable. Video SnapCut (Bai et al., SIGGRAPH 2009, section 3.1)
moves its windows by a global motion of the object first, then by local flow;
:func:`object_motion` is that global motion, a similarity transform fitted with
RANSAC to the consistent flow of the object's inner pixels.

Flows are ``h x w x 2`` float32 ``(dx, dy)`` in working-resolution pixels.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = [
    "DIS_PRESETS",
    "backward_warp",
    "consistency",
    "flow_pair",
    "make_dis",
    "object_motion",
    "warp_affine",
]

DIS_PRESETS = {
    "ultrafast": cv2.DISOpticalFlow_PRESET_ULTRAFAST,
    "fast": cv2.DISOpticalFlow_PRESET_FAST,
    "medium": cv2.DISOpticalFlow_PRESET_MEDIUM,
}

# Inner pixels sampled to fit the object's motion, and the RANSAC inlier distance (px).
_MOTION_SAMPLES = 1500
_RANSAC_PX = 1.0
# A fit is kept with at least this many inliers and this share of the sample, and a
# zoom of at most this much per frame; otherwise the object keeps its last motion.
_MIN_INLIERS = 40
_MIN_SHARE = 0.4
_MAX_ZOOM = 0.02


def make_dis(preset: str) -> cv2.DISOpticalFlow:
    """A DIS flow object at the finest scale without variational refinement.

    The refinement spreads the background's motion into the object's border
    (see :func:`vfxmatte.propagate.flow._make_dis`); consistency is checked
    here instead.
    """
    dis = cv2.DISOpticalFlow_create(DIS_PRESETS[preset])
    dis.setFinestScale(0)
    dis.setVariationalRefinementIterations(0)
    return dis


def flow_pair(
    dis: cv2.DISOpticalFlow, grey: np.ndarray, prev_grey: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Flows between consecutive ``h x w`` uint8 frames.

    Returns:
        ``(back, fwd)``: ``back`` with ``grey(x) ~ prev_grey(x + back(x))`` and
        ``fwd`` with ``prev_grey(y) ~ grey(y + fwd(y))``, both ``h x w x 2`` float32.
    """
    back = dis.calc(grey, prev_grey, None)
    fwd = dis.calc(prev_grey, grey, None)
    return back, fwd


def _positions(flow: np.ndarray) -> np.ndarray:
    """Flow -> absolute sampling positions ``x + flow(x)`` for ``cv2.remap``."""
    h, w = flow.shape[:2]
    pos = flow.copy()
    pos[..., 0] += np.arange(w, dtype=np.float32)
    pos[..., 1] += np.arange(h, dtype=np.float32)[:, None]
    return pos


def backward_warp(values: np.ndarray, flow: np.ndarray, border: float = 0.0) -> np.ndarray:
    """Sample ``values`` (``h x w`` or ``h x w x c`` float32) at ``x + flow(x)``, bilinear."""
    return cv2.remap(
        values,
        _positions(flow),
        None,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=border,
    )


def consistency(flow: np.ndarray, other: np.ndarray, tolerance: float) -> np.ndarray:
    """How well ``flow`` comes back through ``other``: ``h x w`` float32 in (0, 1].

    ``err(x) = |flow(x) + other(x + flow(x))|``; the score is
    ``exp(-err^2 / tolerance^2)`` (1 where the round trip closes). The
    tolerance grows with the motion (1 px plus 5% of its length), since flow
    errors do too.
    """
    returned = backward_warp(other, flow, border=np.nan)
    err = flow + returned
    err2 = err[..., 0] ** 2 + err[..., 1] ** 2
    mag2 = flow[..., 0] ** 2 + flow[..., 1] ** 2
    tol2 = (tolerance + 0.05 * np.sqrt(mag2)) ** 2
    score = np.exp(-err2 / tol2)
    score[~np.isfinite(score)] = 0.0  # came back from outside the frame
    return score.astype(np.float32)


def object_motion(
    mask: np.ndarray,
    fwd: np.ndarray,
    fwd_ok: np.ndarray,
    fallback: np.ndarray | None,
    rng: np.random.Generator,
    *,
    reliable: bool = True,
) -> tuple[np.ndarray, int]:
    """Similarity transform of the object from the previous frame to this one.

    Args:
        mask: ``h x w`` float32, the object in the previous frame.
        fwd: forward flow of the previous frame (see :func:`flow_pair`).
        fwd_ok: ``h x w`` float32 consistency of ``fwd``.
        fallback: the transform of the frame before (constant velocity while
            the object is hidden), or None for the identity; it is used without
            its zoom, so that a hidden object keeps its size.
        rng: for the sample of inner pixels.
        reliable: False when too little of the object is in view for a fit
            (the fallback is used).

    Returns:
        ``(A, inliers)``: ``2 x 3`` float64 mapping previous-frame positions to
        this frame's, and the number of RANSAC inliers (0 when ``fallback`` was used).
    """
    inner = cv2.erode((mask > 0.5).astype(np.uint8), np.ones((5, 5), np.uint8))
    ys, xs = np.nonzero((inner > 0) & (fwd_ok > 0.5))
    fallback = np.float64([[1, 0, 0], [0, 1, 0]]) if fallback is None else _unzoomed(fallback)
    if len(ys) < _MIN_INLIERS or not reliable:
        return fallback, 0
    if len(ys) > _MOTION_SAMPLES:
        pick = rng.choice(len(ys), _MOTION_SAMPLES, replace=False)
        ys, xs = ys[pick], xs[pick]
    src = np.stack([xs, ys], axis=1).astype(np.float32)
    dst = src + fwd[ys, xs]
    model, inliers = cv2.estimateAffinePartial2D(
        src, dst, method=cv2.RANSAC, ransacReprojThreshold=_RANSAC_PX, maxIters=200
    )
    count = 0 if inliers is None else int(inliers.sum())
    if model is None or count < _MIN_INLIERS or count < _MIN_SHARE * len(ys):
        return fallback, 0
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    if abs(scale - 1.0) > _MAX_ZOOM:
        return fallback, 0  # a fit to a sliver (the object going out of view), not a zoom
    return model, count


def _unzoomed(model: np.ndarray) -> np.ndarray:
    """``model`` with its linear part scaled to a pure rotation (about its own centre of
    motion: the translation is kept)."""
    out = model.copy()
    scale = float(np.hypot(model[0, 0], model[1, 0]))
    if scale > 0:
        out[:, :2] /= scale
    return out


def warp_affine(values: np.ndarray, model: np.ndarray) -> np.ndarray:
    """``values`` (``h x w`` float32) moved forward by the ``2 x 3`` ``model``."""
    h, w = values.shape[:2]
    return cv2.warpAffine(
        values, model, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
