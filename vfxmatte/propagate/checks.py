"""Input checks shared by the propagation backends: frames and masks with clear errors."""

from __future__ import annotations

import numpy as np

from vfxmatte.errors import InputError

__all__ = ["check_image", "check_mask", "frame_positions"]


def check_image(image: np.ndarray, what: str) -> np.ndarray:
    """Validate a frame's shape and dtype; returns ``H×W×C`` (C 3 or 4) or ``H×W`` float32.

    NaN and infinity are looked for later, on the reduced grey copy (see
    ``FlowPropagator._grey``), which costs far less than a pass over the full
    frame and misses none: area averaging carries them into the output pixel.
    """
    if not isinstance(image, np.ndarray):
        raise InputError(f"The {what} must be a numpy array, got {type(image).__name__}.")
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if not (image.ndim == 2 or image.ndim == 3 and image.shape[2] in (3, 4)):
        raise InputError(f"The {what} must be H×W×3 RGB, got shape {image.shape}.")
    if not np.issubdtype(image.dtype, np.floating):
        raise InputError(
            f"The {what} must be float32 in [0, 1], got {image.dtype}. Convert it first "
            "(e.g. divide 8-bit values by 255)."
        )
    return np.ascontiguousarray(image, dtype=np.float32)


def check_mask(mask: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Validate a mask against the frame size ``(H, W)``; returns ``H×W`` float32."""
    if not isinstance(mask, np.ndarray):
        raise InputError(f"The {what} must be a numpy array, got {type(mask).__name__}.")
    if mask.ndim == 3 and mask.shape[2] == 1:
        mask = mask[..., 0]
    if mask.ndim != 2:
        raise InputError(f"The {what} must be a single-channel H×W array, got shape {mask.shape}.")
    if mask.shape != tuple(shape):
        raise InputError(
            f"The {what} is {mask.shape[1]}×{mask.shape[0]} (shape {mask.shape}) but the image is "
            f"{shape[1]}×{shape[0]} (shape {tuple(shape)}). Pass --mask-resize to scale the "
            "mask to the plate, or supply a mask of the plate's size."
        )
    if mask.dtype != bool and not np.issubdtype(mask.dtype, np.floating):
        raise InputError(
            f"The {what} must be float32 in [0, 1], got {mask.dtype}. Convert it first "
            "(e.g. divide 8-bit values by 255)."
        )
    mask = np.ascontiguousarray(mask, dtype=np.float32)
    if np.isnan(mask).any():
        raise InputError(f"The {what} contains NaN values.")
    lo, hi = float(mask.min()), float(mask.max())
    if lo < -1e-3 or hi > 1 + 1e-3:
        raise InputError(
            f"The {what} has values in [{lo:.4g}, {hi:.4g}]; expected [0, 1]. "
            "Rescale it (e.g. divide 8-bit values by 255)."
        )
    if lo < 0 or hi > 1:
        mask = np.clip(mask, 0.0, 1.0)  # a new array: never edit the caller's
    return mask


def frame_positions(order: list[int], *, allow_empty: bool = False) -> dict[int, int]:
    """Frame number -> position in the shot; checks for repeats (and emptiness)."""
    if not order and not allow_empty:
        raise InputError("No frames to propagate through: the frame list is empty.")
    index = {number: pos for pos, number in enumerate(order)}
    if len(index) != len(order):
        repeated = sorted({n for n in order if order.count(n) > 1})
        raise InputError(f"Frame numbers repeat in the shot: {repeated[:10]}.")
    return index
