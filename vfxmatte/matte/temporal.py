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

__all__ = ["TemporalPrior", "TemporalState", "WarpedPrior", "warp_previous"]

logger = logging.getLogger(__name__)

_FLOW_SIDE = 640  # flow is computed with the long side at most this (cost), then upsampled


class WarpedPrior(NamedTuple):
    """The previous alpha warped to (a crop of) the current frame, HxW float32 in [0,1],
    and the confidence of each pixel's warp, HxW float32 in [0,1]."""

    alpha: np.ndarray
    weight: np.ndarray


class TemporalPrior:
    """The flow from the current frame to the previous one; warps on demand, per crop
    (:meth:`crop`), so that the cost follows the band rather than the frame."""

    def __init__(
        self, image: np.ndarray, prev_image: np.ndarray, prev_alpha: np.ndarray,
        flow: np.ndarray, sigma: float,
    ) -> None:  # fmt: skip
        self.image, self.prev_image, self.prev_alpha = image, prev_image, prev_alpha
        self.flow, self.sigma = flow, sigma  # flow at reduced size, in its own pixels

    def crop(self, slices: tuple[slice, slice]) -> WarpedPrior:
        """The warped alpha and its confidence over ``image[slices]``."""
        h, w = self.prev_alpha.shape
        rows, cols = (range(h)[slices[0]], range(w)[slices[1]])
        fh, fw = self.flow.shape[:2]
        sy, sx = fh / h, fw / w
        # Flow sampled at the crop's pixel centres, in full-resolution pixels.
        yy, xx = np.meshgrid(np.asarray(rows, np.float32), np.asarray(cols, np.float32),
                             indexing="ij")  # fmt: skip
        fy = (yy + 0.5) * sy - 0.5
        fx = (xx + 0.5) * sx - 0.5
        flow = cv2.remap(self.flow, fx, fy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        map_x, map_y = xx + flow[..., 0] / sx, yy + flow[..., 1] / sy
        alpha = cv2.remap(self.prev_alpha, map_x, map_y, cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        warped = cv2.remap(self.prev_image, map_x, map_y, cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_REPLICATE)  # fmt: skip
        residual = cv2.blur(np.abs(self.image[slices] - warped).mean(axis=2), (5, 5))
        weight = np.exp(-((residual / self.sigma) ** 2))
        inside = (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        weight[~inside] = 0.0
        return WarpedPrior(np.clip(alpha, 0.0, 1.0), weight.astype(np.float32))


def _grey8(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    small = np.clip(image, 0.0, 1.0).astype(np.float32)
    if size is not None:
        small = cv2.resize(small, size, interpolation=cv2.INTER_AREA)
    return (cv2.cvtColor(small, cv2.COLOR_RGB2GRAY) * 255.0 + 0.5).astype(np.uint8)


_STILL = 0.75  # flow (px at the flow's size) below this is noise: the pixel did not move


def _steady(flow: np.ndarray) -> np.ndarray:
    """Flow without its noise: median-filtered, and exactly 0 where it is below a pixel.

    On a still, noisy or weakly textured region the flow wanders by half a pixel or so;
    warped through it, the carried alpha drifts from frame to frame (measured: more
    flicker than no prior at all on a still object). Snapping small motion to zero
    keeps still regions still.
    """
    flow = np.dstack([cv2.medianBlur(np.ascontiguousarray(flow[..., c]), 5) for c in (0, 1)])
    still = np.hypot(flow[..., 0], flow[..., 1]) < _STILL
    flow[still] = 0.0
    return flow


def warp_previous(
    image: np.ndarray, prev_image: np.ndarray, prev_alpha: np.ndarray, *, sigma: float = 0.03
) -> TemporalPrior:
    """The flow that carries ``prev_alpha`` from the previous frame to ``image``.

    Args:
        image, prev_image: HxWx3 float RGB, display-referred in [0,1], frames t and t-1.
        prev_alpha: HxW float alpha of frame t-1.
        sigma: colour residual (display units) at which the confidence is ``1/e``.

    Returns:
        A :class:`TemporalPrior`; its :meth:`~TemporalPrior.crop` gives the warped alpha
        and its confidence (0 where the flow leaves the frame).
    """
    h, w = prev_alpha.shape
    s = min(1.0, _FLOW_SIDE / max(h, w))
    size = None if s == 1.0 else (max(8, round(w * s)), max(8, round(h * s)))
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    flow = dis.calc(_grey8(image, size), _grey8(prev_image, size), None)  # t -> t-1
    flow = _steady(flow)
    return TemporalPrior(
        np.asarray(image, np.float32), np.asarray(prev_image, np.float32),
        np.asarray(prev_alpha, np.float32), flow, sigma,
    )  # fmt: skip


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
