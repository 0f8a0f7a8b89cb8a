"""The previous frame's alpha as a weak prior: mattes that do not flicker.

Solved frame by frame, a matte flickers even where nothing moved: the trimap's strip
and the solver's free modes shift a little with noise and with the mask, so chunks
of the band flip between frames (dtSSD, Erofeev et al. BMVC 2015). Here the alpha of
frame ``t-1`` is carried to frame ``t`` along the optical flow (DIS: Kroeger et al.,
"Fast Optical Flow using Dense Inverse Search", ECCV 2016, OpenCV's implementation)
and used as an extra data term of the closed-form solve, ``w_t c (α - α̃_{t-1})^2``,
with a per-pixel confidence ``c`` from how well the warped previous frame matches
this one (``exp(-(r / σ)^2)`` of the colour residual, box-filtered): where the image
changed (motion the flow missed, occlusion, new hair) the prior has no weight and
the frame decides alone.

Memory is finite: only frame ``t-1``'s alpha is kept, and since it is itself a
solve with a weak prior, the influence of frame ``t-k`` decays geometrically with
``k``; :meth:`TemporalState.reset` forgets it where frames stop being consecutive.
"""

from __future__ import annotations

import logging
from typing import NamedTuple

import cv2
import numpy as np

__all__ = ["TemporalPrior", "TemporalState", "warp_previous"]

logger = logging.getLogger(__name__)

_FLOW_SIDE = 640  # flow is computed with the long side at most this (cost), then upsampled


class TemporalPrior(NamedTuple):
    """The previous alpha warped to the current frame (HxW float32 in [0,1]) and the
    confidence of each pixel's warp (HxW float32 in [0,1])."""

    alpha: np.ndarray
    weight: np.ndarray

    def crop(self, slices: tuple[slice, slice]) -> TemporalPrior:
        return TemporalPrior(self.alpha[slices], self.weight[slices])


def _grey8(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    grey = cv2.cvtColor(np.clip(image, 0.0, 1.0).astype(np.float32), cv2.COLOR_RGB2GRAY)
    if size is not None:
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return (grey * 255.0 + 0.5).astype(np.uint8)


def warp_previous(
    image: np.ndarray,
    prev_image: np.ndarray,
    prev_alpha: np.ndarray,
    *,
    sigma: float = 0.03,
) -> TemporalPrior:
    """Carry ``prev_alpha`` from the previous frame to ``image`` along the optical flow.

    Args:
        image, prev_image: HxWx3 float RGB, display-referred in [0,1], frames t and t-1.
        prev_alpha: HxW float alpha of frame t-1.
        sigma: colour residual (display units) at which the confidence is ``1/e``.

    Returns:
        The warped alpha and its confidence; confidence 0 where the flow leaves the frame.
    """
    h, w = prev_alpha.shape
    s = min(1.0, _FLOW_SIDE / max(h, w))
    size = None if s == 1.0 else (max(8, round(w * s)), max(8, round(h * s)))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_FAST)
    flow = dis.calc(_grey8(image, size), _grey8(prev_image, size), None)  # t -> t-1
    if size is not None:
        flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) / s
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x, map_y = xx + flow[..., 0], yy + flow[..., 1]
    alpha = cv2.remap(
        prev_alpha.astype(np.float32),
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    warped = cv2.remap(
        prev_image.astype(np.float32),
        map_x,
        map_y,
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    residual = np.abs(image.astype(np.float32) - warped).mean(axis=2)
    residual = cv2.blur(residual, (5, 5))
    weight = np.exp(-((residual / sigma) ** 2))
    inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
    weight[~inside] = 0.0
    return TemporalPrior(np.clip(alpha, 0.0, 1.0), weight.astype(np.float32))


class TemporalState:
    """The previous frame and its alpha, for one sequence of consecutive frames."""

    def __init__(self) -> None:
        self._prev: tuple[np.ndarray, np.ndarray] | None = None

    def prior(self, image: np.ndarray) -> TemporalPrior | None:
        """The prior for ``image`` (HxWx3, display-referred), or ``None`` without a
        previous frame of the same size."""
        if self._prev is None or self._prev[0].shape != image.shape:
            return None
        return warp_previous(image, *self._prev)

    def update(self, image: np.ndarray, alpha: np.ndarray) -> None:
        """Remember frame ``t`` (copies: readers reuse their buffers)."""
        self._prev = (np.array(image, np.float32), np.array(alpha, np.float32))

    def reset(self) -> None:
        """Forget the previous frame: the next one is not consecutive."""
        self._prev = None
