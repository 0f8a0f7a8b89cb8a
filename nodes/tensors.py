"""IMAGE/MASK <-> numpy: the one place where ComfyUI tensors meet vfxmatte arrays.

ComfyUI passes ``IMAGE`` as a torch float32 ``B x H x W x C`` tensor (``C`` = 3,
sometimes 4) and ``MASK`` as ``B x H x W`` (some nodes give ``H x W``), values in
[0, 1]. vfxmatte works on numpy float32 ``H x W x 3`` frames and ``H x W`` masks.

Masks from ComfyUI's stock *Load Image* node follow its own convention, which
:func:`fit_mask` handles explicitly:

* ``MASK = 1 - alpha`` of the loaded PNG: painted (transparent) areas of the mask
  editor are 1, which is what vfxmatte wants; but a cut-out (object opaque,
  background transparent) gives the background, i.e. an inverted mask;
* an image without alpha gives a 64 x 64 mask of zeros whatever the image size.
"""

from __future__ import annotations

import logging
from typing import Any

import cv2
import numpy as np
import torch

from vfxmatte.errors import ConfigError, InputError, closest_hint

__all__ = [
    "MASK_MODES",
    "fit_mask",
    "image_to_numpy",
    "looks_inverted",
    "mask_to_numpy",
    "numpy_to_image",
    "numpy_to_mask",
]

log = logging.getLogger(__name__)

#: How a MASK input is read: ``as is`` (1 = object), ``invert`` (LoadImage's
#: ``1 - alpha`` of a cut-out), ``auto`` (invert only what :func:`looks_inverted`).
MASK_MODES = ("auto", "as is", "invert")

#: The mask ComfyUI's Load Image gives for an image without alpha.
_PLACEHOLDER_SHAPE = (64, 64)


def _as_array(value: Any, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", torch.float32).numpy()
    if isinstance(value, np.ndarray):
        return value.astype(np.float32, copy=False)
    raise InputError(f"The {what} must be a ComfyUI tensor, got {type(value).__name__}.")


def _check_finite(array: np.ndarray, what: str) -> np.ndarray:
    bad = ~np.isfinite(array)
    if bad.any():
        raise InputError(
            f"The {what} has {int(bad.sum())} NaN or infinite value(s); fix the node that "
            "produced it."
        )
    return array


def image_to_numpy(image: Any, *, what: str = "IMAGE") -> np.ndarray:
    """ComfyUI ``IMAGE`` -> ``B x H x W x 3`` float32 numpy (a 4th channel is dropped).

    Raises:
        InputError: not a ``[B, H, W, 3|4]`` (or ``[H, W, 3|4]``) tensor, or NaN/inf.
    """
    array = _as_array(image, what)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3, 4) or 0 in array.shape:
        raise InputError(
            f"The {what} must be B x H x W x 3 (ComfyUI IMAGE), got shape {tuple(array.shape)}."
        )
    if array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return _check_finite(np.ascontiguousarray(array[..., :3]), what)


def mask_to_numpy(mask: Any, *, what: str = "MASK") -> np.ndarray:
    """ComfyUI ``MASK`` -> ``B x H x W`` float32 numpy.

    Raises:
        InputError: not ``[B, H, W]`` or ``[H, W]``, or NaN/inf.
    """
    array = _as_array(mask, what)
    if array.ndim == 2:
        array = array[None]
    if array.ndim != 3 or 0 in array.shape:
        raise InputError(
            f"The {what} must be B x H x W (ComfyUI MASK), got shape {tuple(array.shape)}."
        )
    return _check_finite(np.ascontiguousarray(array), what)


def numpy_to_image(frames: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """``B x H x W x C`` (or a list of ``H x W x C``) float32 -> ComfyUI ``IMAGE``."""
    array = np.stack(frames) if isinstance(frames, list) else np.asarray(frames)
    if array.ndim == 3:
        array = array[None]
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def numpy_to_mask(masks: np.ndarray | list[np.ndarray]) -> torch.Tensor:
    """``B x H x W`` (or a list of ``H x W``) float32 -> ComfyUI ``MASK``."""
    array = np.stack(masks) if isinstance(masks, list) else np.asarray(masks)
    if array.ndim == 2:
        array = array[None]
    return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))


def looks_inverted(mask: np.ndarray) -> bool:
    """Whether an ``H x W`` mask looks like Load Image's ``1 - alpha`` of a cut-out.

    True when every border pixel is marked (>= 0.5) and so is more than half of
    the frame: an object mask that covers the whole frame border is very rare,
    the background of a cut-out always does.
    """
    border = np.concatenate([mask[0], mask[-1], mask[1:-1, 0], mask[1:-1, -1]])
    return bool((border >= 0.5).all() and (mask >= 0.5).mean() > 0.5)


def _check_mode(mode: str) -> None:
    if mode not in MASK_MODES:
        raise ConfigError(
            f"Unknown mask mode '{mode}'; valid: {', '.join(MASK_MODES)}."
            + closest_hint(mode, MASK_MODES)
        )


def fit_mask(
    mask: np.ndarray,
    shape: tuple[int, int],
    *,
    mode: str = "auto",
    resize: bool = False,
    what: str = "mask",
) -> np.ndarray:
    """One ``H x W`` mask from a MASK input, checked against the frame ``shape``.

    Args:
        mask: ``H' x W'`` float32 (one item of :func:`mask_to_numpy`).
        shape: the frame's ``(H, W)``.
        mode: see :data:`MASK_MODES`.
        resize: resize a mask of another size (else that is an error).

    Returns:
        ``H x W`` float32 in [0, 1], 1 on the object.

    Raises:
        InputError: Load Image's 64 x 64 placeholder, a size mismatch without
            ``resize``, or values outside [0, 1] beyond rounding.
        ConfigError: unknown ``mode``.
    """
    _check_mode(mode)
    height, width = shape
    if mask.shape == _PLACEHOLDER_SHAPE and shape != _PLACEHOLDER_SHAPE and not mask.any():
        raise InputError(
            f"The {what} is the empty 64x64 MASK that ComfyUI's Load Image gives for an image "
            f"without an alpha channel, not a mask of this {width}x{height} plate. Paint the "
            "object in Load Image's mask editor, read a mask file with 'VfxMatte Read Mask', or "
            "turn a black-and-white image into a MASK with 'Convert Image to Mask'."
        )
    if mask.min() < -1e-3 or mask.max() > 1.0 + 1e-3:
        raise InputError(
            f"The {what} has values from {mask.min():.4g} to {mask.max():.4g}; a MASK must lie "
            "in [0, 1]."
        )
    if mask.shape != tuple(shape):
        if not resize:
            raise InputError(
                f"The {what} is {mask.shape[1]}x{mask.shape[0]} but the frames are "
                f"{width}x{height}; give a mask of the frame size or switch on mask resizing."
            )
        interp = cv2.INTER_AREA if mask.shape[0] > height else cv2.INTER_LINEAR
        mask = cv2.resize(mask, (width, height), interpolation=interp)
    mask = np.clip(mask, 0.0, 1.0).astype(np.float32)
    if mode == "invert" or (mode == "auto" and looks_inverted(mask)):
        if mode == "auto":
            log.warning(
                "The %s covers the whole frame border: taking it as Load Image's 1 - alpha of "
                "a cut-out and inverting it (set the mask mode to 'as is' to keep it).",
                what,
            )
        mask = 1.0 - mask
    return mask
