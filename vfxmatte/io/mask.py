"""Reading guidance masks (keyframe masks, roto, mask sequences).

Every surprise in a mask is a sentence: a missing file, a folder, NaN or infinite
values, a size that differs from the plate's, an empty mask (refused for a keyframe)
and, as warnings, a mask that covers the whole frame, a colour image read as a mask
and a resize that changes the aspect ratio.
"""

from __future__ import annotations

import logging
import os

import cv2
import numpy as np

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.image import read_image
from vfxmatte.io.image_checks import check_image_path
from vfxmatte.io.sequence import FramePattern

__all__ = ["read_mask"]

log = logging.getLogger(__name__)


def _where(path: str, number: int | None) -> str:
    return f"'{path}'" if number is None else f"'{path}' (frame {number})"


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
    colour = [channels.index(c) for c in ("R", "G", "B") if c in channels]
    if len(colour) == 3 and float(np.ptp(pixels[..., colour], axis=2).max()) > 0.05:
        log.warning(
            "The mask '%s' is a colour image (R, G and B differ); reading its R channel. "
            "Pass --mask-channel NAME to choose another.",
            path,
        )
    return 0


def _finite(mask: np.ndarray, path: str, number: int | None, nonfinite: str) -> np.ndarray:
    bad = ~np.isfinite(mask)
    if not bad.any():
        return mask
    y, x = np.argwhere(bad)[0]
    if nonfinite != "zero":
        raise InputError(
            f"The mask {_where(path, number)} has {int(bad.sum())} pixel(s) with NaN or "
            f"infinite values (first at x={x}, y={y}); fix the mask, or pass --nonfinite "
            "zero to read them as 0 (outside the object)."
        )
    log.warning("The mask %s: read %d NaN/inf pixel(s) as 0.", _where(path, number), bad.sum())
    return np.where(bad, np.float32(0), mask)


def _resize(mask: np.ndarray, shape: tuple[int, int], path: str, resize: bool) -> np.ndarray:
    (h, w), (ph, pw) = mask.shape, shape
    if not resize:
        raise InputError(
            f"The mask '{path}' is {w}x{h} but the plate is {pw}x{ph}; give a mask of the "
            "plate's size, or pass --mask-resize to resize it."
        )
    if abs(w * ph / h - pw) > max(1.0, 0.02 * pw):  # more than rounding of a rescale
        log.warning(
            "The mask '%s' (%dx%d) has another aspect ratio than the plate (%dx%d): "
            "--mask-resize stretches it.",
            path,
            w,
            h,
            pw,
            ph,
        )
    interp = cv2.INTER_AREA if h > ph else cv2.INTER_LINEAR
    return cv2.resize(mask, (pw, ph), interpolation=interp)


def read_mask(
    path: str | os.PathLike[str],
    *,
    shape: tuple[int, int] | None = None,
    channel: str = "auto",
    resize: bool = False,
    number: int | None = None,
    allow_empty: bool = False,
    nonfinite: str = "error",
) -> np.ndarray:
    """Read a mask as ``H x W`` float32 in [0,1].

    Args:
        shape: the plate's ``(H, W)``; a mask of another size is an error unless
            ``resize`` is set (then it is resized with area/linear filtering, with a
            warning when that changes its aspect ratio).
        channel: ``auto`` takes ``A`` when it is present and not constant (roto
            written as RGBA), else the first channel (a grey or black/white mask).
        allow_empty: accept a mask with no pixel above 0.5 (later frames of a
            mask sequence may be empty; a keyframe mask may not). A keyframe mask
            with every pixel above 0.5 is read with a warning (nothing to matte
            against: the whole frame is foreground).
        nonfinite: NaN/inf mask pixels: ``error`` (raise) or ``zero`` (read as 0),
            the plate's ``--nonfinite`` option.

    Raises:
        InputError: missing file, folder, unreadable file, NaN/inf values with
            ``nonfinite="error"``, wrong size, empty mask.
    """
    path = os.fspath(path)
    if nonfinite not in ("error", "zero"):
        raise ConfigError(f"nonfinite must be error or zero, got {nonfinite!r}.")
    if not os.path.exists(path) and not FramePattern.parse(path).is_single:
        raise InputError(
            f"The mask '{path}' is a pattern, but only propagate.backend=given reads a mask "
            "per frame; give the keyframe's mask file (e.g. "
            f"'{FramePattern.parse(path).path(number or 1001)}'), or --propagate.backend given."
        )
    check_image_path(path, "mask", "" if number is None else f" (frame {number})")
    frame = read_image(path, number=number or 0, nonfinite="keep")
    mask = frame.pixels[..., _pick_channel(frame.pixels, frame.channels, channel, path)]
    mask = np.clip(_finite(mask, path, number, nonfinite), 0.0, 1.0).astype(np.float32)
    if shape is not None and mask.shape != tuple(shape):
        mask = _resize(mask, tuple(shape), path, resize)
    if allow_empty:
        return mask
    if not (mask > 0.5).any():
        raise InputError(
            f"The mask {_where(path, number)} is empty (no pixel above 0.5; largest value "
            f"{float(mask.max()):.3g}); paint the object white on black, or check "
            "--mask-channel."
        )
    if (mask > 0.5).all():
        log.warning(
            "The mask %s covers the whole frame (every pixel above 0.5): the matte will be "
            "all foreground. Check that it is not inverted and that --mask-channel is right.",
            _where(path, number),
        )
    return mask
