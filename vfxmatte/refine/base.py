"""What every refine backend shares: the call protocol, input checks, upsampling.

A refiner is built once per run from its config and called once per frame::

    refiner = REFINE_BACKENDS.load(name)(config)
    alpha = refiner(image, alpha, confidence, features=None)   # H x W float32
    refiner.reset()                                            # new shot or pass

``alpha`` and ``confidence`` may come at the matte stage's working resolution;
they are upsampled bilinearly to the image's size (:func:`upsample`).
"""

from __future__ import annotations

import logging
from typing import Any, Protocol

import numpy as np
import torch
import torch.nn.functional as F

from vfxmatte.errors import InputError

__all__ = ["Refiner", "check_refine_inputs", "upsample"]

log = logging.getLogger(__name__)

_RANGE_SLACK = 1e-3  # display values this far outside [0, 1] are rounding, not linear light
_ASPECT_TOLERANCE = 0.05  # working-resolution rounding vs a map of another shot or a padded map


class Refiner(Protocol):
    """The call signature of a refine backend."""

    def __call__(
        self,
        image: np.ndarray,
        alpha: np.ndarray,
        confidence: np.ndarray,
        features: Any = None,
    ) -> np.ndarray: ...

    def reset(self) -> None: ...


def _float_array(value: Any, name: str, expected: str) -> np.ndarray:
    if isinstance(value, torch.Tensor) or not isinstance(value, np.ndarray):
        raise InputError(
            f"refine: {name} must be a numpy array ({expected}), got {type(value).__name__}."
        )
    if not np.issubdtype(value.dtype, np.floating):
        raise InputError(
            f"refine: {name} must be float ({expected}), got {value.dtype}; convert it first, "
            "e.g. array.astype(np.float32) / 255 for 8-bit data."
        )
    if not np.isfinite(value).all():
        raise InputError(f"refine: {name} contains NaN or infinite values.")
    return np.ascontiguousarray(value, dtype=np.float32)


def _plane(value: Any, name: str) -> np.ndarray:
    array = _float_array(value, name, "h x w float32 in [0,1]")
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.ndim != 2:
        raise InputError(f"refine: {name} must be h x w, got shape {array.shape}.")
    return np.clip(array, 0.0, 1.0)


def check_refine_inputs(
    image: Any, alpha: Any, confidence: Any | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Validate a refiner's inputs and return them as contiguous float32.

    Args:
        image: ``H x W x 3`` float, display-referred RGB in [0, 1] (values slightly
            outside are clipped; far outside, with a warning: convert scene-linear
            plates to display first).
        alpha: ``h x w`` (or ``h x w x 1``) float in [0, 1], any working resolution with
            the image's aspect ratio.
        confidence: same shape as ``alpha``, in [0, 1], or ``None``.

    Raises:
        InputError: not a numpy array, not float, wrong channel count, NaN/inf,
            mismatched sizes.
    """
    image = _float_array(image, "image", "H x W x 3 float32 display RGB in [0,1]")
    if image.ndim != 3 or image.shape[2] != 3:
        raise InputError(f"refine: image must be H x W x 3 (RGB), got shape {image.shape}.")
    lo, hi = float(image.min()), float(image.max())
    if lo < -_RANGE_SLACK or hi > 1.0 + _RANGE_SLACK:
        log.warning(
            "refine: image values span [%.3g, %.3g], outside display [0, 1]; clipping. "
            "Convert scene-linear plates to display first.",
            lo,
            hi,
        )
    if lo < 0.0 or hi > 1.0:
        image = np.clip(image, 0.0, 1.0)
    alpha = _plane(alpha, "alpha")
    if confidence is not None:
        confidence = _plane(confidence, "confidence")
        if confidence.shape != alpha.shape:
            raise InputError(
                f"refine: confidence is {confidence.shape[1]}x{confidence.shape[0]} but alpha is "
                f"{alpha.shape[1]}x{alpha.shape[0]}; they must have the same size."
            )
    (h, w), (big_h, big_w) = alpha.shape, image.shape[:2]
    if h > big_h or w > big_w or abs((w / h) / (big_w / big_h) - 1.0) > _ASPECT_TOLERANCE:
        raise InputError(
            f"refine: alpha is {w}x{h} but the image is {big_w}x{big_h}; alpha must be the "
            "image's size or a smaller working resolution of the same aspect ratio."
        )
    return image, alpha, confidence


def upsample(plane: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """Bilinear (half-pixel centres) upsampling of an ``[h, w]`` tensor to ``[height, width]``.

    Returns the input itself when it already has that size.
    """
    if tuple(plane.shape) == (height, width):
        return plane
    out = F.interpolate(
        plane[None, None], size=(height, width), mode="bilinear", align_corners=False
    )
    return out[0, 0]
