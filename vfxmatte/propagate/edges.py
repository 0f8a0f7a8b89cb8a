"""Edge-aware step of the ``snapcut`` propagator: a guided filter of the object probability.

Video SnapCut ends each frame with a graph cut over the combined probability
(Bai et al., SIGGRAPH 2009, section 3.3). Here the probability is filtered with
the guided filter (He, Sun and Tang, "Guided Image Filtering", ECCV 2010 /
TPAMI 2013, algorithm 1) steered by the frame's grey values and then
thresholded: locally the result is an affine function of the image, so the
0.5 level snaps to the image's edges, and it costs a few box filters (no max-flow
solver is among the project's dependencies).
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["guided_filter"]


def _box(values: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(
        values, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT
    )


def guided_filter(guide: np.ndarray, values: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Filter ``values`` guided by ``guide``.

    Args:
        guide: ``h x w`` float32 grey image in [0, 1].
        values: ``h x w`` float32 to filter (the object probability).
        radius: window radius in pixels.
        eps: regularisation; larger smooths across weaker edges.

    Returns:
        ``h x w`` float32, clipped to [0, 1].
    """
    mean_i = _box(guide, radius)
    mean_p = _box(values, radius)
    cov_ip = _box(guide * values, radius) - mean_i * mean_p
    var_i = _box(guide * guide, radius) - mean_i * mean_i
    a = cov_ip / (var_i + np.float32(eps))
    b = mean_p - a * mean_i
    out = _box(a, radius) * guide + _box(b, radius)
    return np.clip(out, 0.0, 1.0, out=out)
