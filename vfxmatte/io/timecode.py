"""SMPTE timecode: ``HH:MM:SS:FF`` strings, frame offsets, and OpenEXR's packed form."""

from __future__ import annotations

import re

from vfxmatte.errors import InputError

__all__ = ["offset_timecode", "pack_timecode", "parse_timecode"]

_TIMECODE = re.compile(r"^(\d{1,2})[:;](\d{2})[:;](\d{2})[:;.](\d{2})$")


def parse_timecode(text: str) -> tuple[int, int, int, int]:
    """``"01:00:00:12"`` -> ``(1, 0, 0, 12)``; ``;`` (drop-frame) separators are accepted.

    Raises:
        InputError: for text that is not a timecode.
    """
    m = _TIMECODE.match(text.strip())
    if not m:
        raise InputError(f"'{text}' is not a timecode; expected HH:MM:SS:FF.")
    hours, minutes, seconds, frames = (int(g) for g in m.groups())
    return hours, minutes, seconds, frames


def offset_timecode(text: str, frames: int, fps: int) -> str:
    """The timecode ``frames`` frames after ``text`` at ``fps`` (non-drop counting)."""
    h, m, s, f = parse_timecode(text)
    total = ((h * 60 + m) * 60 + s) * fps + f + frames
    f, total = total % fps, total // fps
    return f"{(total // 3600) % 24:02d}:{(total // 60) % 60:02d}:{total % 60:02d}:{f:02d}"


def pack_timecode(hours: int, minutes: int, seconds: int, frames: int) -> tuple[int, int]:
    """``(time_and_flags, user_data)`` in the BCD layout of ``Imf::TimeCode``.

    This is the value of the ``smpte:TimeCode`` attribute of OpenEXR files as
    OpenImageIO reads and writes it.
    """

    def bcd(v: int) -> int:
        return (v // 10) << 4 | v % 10

    return bcd(frames) | bcd(seconds) << 8 | bcd(minutes) << 16 | bcd(hours) << 24, 0
