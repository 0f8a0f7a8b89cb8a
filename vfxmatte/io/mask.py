"""Reading guidance masks (keyframe masks, roto, mask sequences)."""

from __future__ import annotations

import os

import cv2
import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.io.image import read_image

__all__ = ["read_mask"]


def _pick_channel(pixels: np.ndarray, channels: tuple[str, ...], wanted: str, path: str) -> int:
    if wanted != "auto":
        if wanted not in channels:
            raise InputError(
                f"The mask '{path}' has no channel '{wanted}'; it has: {', '.join(channels)}."
            )
        return channels.index(wanted)
    if "A" in channels and len(channels) > 1:
        alpha = pixels[..., channels.index("A")]
        if float(alpha.max()) != float(alpha.min()):
            return channels.index("A")
    return 0


def read_mask(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int] | None = None,
    channel: str = "auto",
    resize: bool = False,
    number: int | None = None,
    allow_empty: bool = False,
) -> np.ndarray:
    """Read a mask as ``H x W`` float32 in [0,1].

    Args:
        shape: the plate's ``(H, W)``; a mask of another size is an error unless
            ``resize`` is set (then it is resized with area/linear filtering).
        channel: ``auto`` takes ``A`` when it is present and not constant (roto
            written as RGBA), else the first channel (a grey or black/white mask).
        allow_empty: accept a mask with no pixel above 0.5 (later frames of a
            mask sequence may be empty; a keyframe mask may not).

    Raises:
        InputError: unreadable file, NaN/inf values, wrong size, empty mask.
    """
    path = os.fspath(path)
    frame = read_image(path, number=number or 0)
    mask = frame.pixels[..., _pick_channel(frame.pixels, frame.channels, channel, path)]
    mask = np.clip(mask, 0.0, 1.0).astype(np.float32)
    if shape is not None and mask.shape != tuple(shape):
        if not resize:
            raise InputError(
                f"The mask '{path}' is {mask.shape[1]}x{mask.shape[0]} but the plate is "
                f"{shape[1]}x{shape[0]}; give a mask of the plate's size, or pass --mask-resize "
                "to resize it."
            )
        interp = cv2.INTER_AREA if mask.shape[0] > shape[0] else cv2.INTER_LINEAR
        mask = cv2.resize(mask, (shape[1], shape[0]), interpolation=interp)
    if not allow_empty and not (mask > 0.5).any():
        raise InputError(
            f"The mask '{path}' is empty (no pixel above 0.5); paint the object white on "
            "black, or check --mask-channel."
        )
    return mask
