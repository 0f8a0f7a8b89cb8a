"""Checks of an image file before and after OpenImageIO opens it, so that a damaged,
fuzzed or unsupported file ends in one sentence and never in a traceback, a crash or
an allocation of absurd size.

* Error text. OpenImageIO's ``geterror()`` may hold bytes of a damaged header that
  are not UTF-8; its Python binding then raises ``UnicodeDecodeError`` (29 files of
  the OpenEXR project's damaged-image corpus do). :func:`oiio_error` decodes those
  bytes with replacement characters instead, and :func:`clean_text` drops control
  characters and the file name OpenEXR repeats in every line.
* Sizes. A fuzzed header can claim a display window of millions of pixels around a
  one-pixel data window (the reader fills the display window) or more channels than
  memory holds. :func:`check_header` refuses a header before any pixel buffer is
  allocated: no side above :data:`MAX_SIDE`, no buffer above OpenImageIO's own
  ``limits:imagesize_MB`` (by default half of this machine's memory; set it with
  ``OpenImageIO.attribute("limits:imagesize_MB", n)``). This is a size rule, not a
  timeout: every check is arithmetic on the header.
* Kinds vfxmatte does not read: deep images (samples per pixel) and files without
  any pixel (a 0-byte file, a folder given as a file).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Sequence
from typing import Any

from vfxmatte.errors import InputError

__all__ = [
    "MAX_SIDE",
    "carried_value",
    "check_header",
    "check_image_path",
    "clean_text",
    "oiio_error",
    "printable",
]

#: Largest width or height (data or display window) read, in pixels. Real plates stop
#: well below (16K film scans, 32K stitched panoramas); fuzzed headers claim millions.
MAX_SIDE = 65536

_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\ufffd]+")


def oiio_error(get: Callable[[], str]) -> str:
    """The text of an OpenImageIO ``geterror`` call, also when it is not UTF-8.

    ``get`` is ``OpenImageIO.geterror`` or an ``ImageInput``'s bound ``geterror``.
    The binding clears the error before decoding it, so nothing is lost by catching.
    """
    try:
        return str(get())
    except UnicodeDecodeError as exc:
        return bytes(exc.object).decode("utf-8", "replace")


def clean_text(text: str, path: str = "", limit: int = 200) -> str:
    """One printable line of at most ``limit`` characters from OpenImageIO's error text.

    Control characters and bytes that were not UTF-8 go; OpenEXR's prefix
    ``EXR Error (<file>):`` goes (the sentence names the file already); repeated
    lines are kept once and joined with ``; ``.
    """
    text = text.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
    if path:
        for name in {path, os.path.basename(path)}:
            text = text.replace(f"EXR Error ({name}): ", "")
    lines = []
    for line in _CONTROL.sub(" ", text).split("\n"):
        line = " ".join(line.split()).rstrip(".")
        if line and line not in lines:
            lines.append(line)
    joined = "; ".join(lines) or "unknown error"
    return joined if len(joined) <= limit else joined[: limit - 3] + "..."


def check_image_path(path: str, role: str = "image", what: str = "") -> None:
    """Refuse a missing file, a folder or a 0-byte file before OpenImageIO sees it.

    Args:
        role: how the sentence names the file (``image``, ``mask``, ``plate frame``).
        what: text after the name, e.g. ``" (frame 1001)"``.
    """
    if os.path.isdir(path):
        raise InputError(
            f"The {role} '{path}'{what} is a folder, not an image file; name the file "
            "itself (e.g. a frame inside it, or a pattern such as shot.####.exr)."
        )
    if not os.path.isfile(path):
        raise InputError(f"The {role} '{path}'{what} does not exist.")
    if os.path.getsize(path) == 0:
        raise InputError(
            f"The {role} '{path}'{what} is empty (0 bytes): an interrupted render or copy; "
            "re-render or re-copy it."
        )


def _budget_bytes() -> int:
    import OpenImageIO as oiio

    megabytes = int(oiio.get_int_attribute("limits:imagesize_MB", 32768))
    return (megabytes if megabytes > 0 else 32768) << 20


def check_header(spec: Any, path: str, read_channels: int, kept_channels: int) -> None:
    """Refuse a header whose pixels vfxmatte cannot or should not allocate.

    Args:
        spec: the part's ``ImageSpec`` (data window ``x, y, width, height``, display
            window ``full_*``).
        read_channels: channels read from the file (the data-window buffer).
        kept_channels: channels kept in the display-window result.

    Raises:
        InputError: deep image, empty or absurdly large window, buffer over budget.
    """
    if spec.deep:
        raise InputError(
            f"'{path}' is a deep image (several samples per pixel); vfxmatte reads flat "
            "images: flatten it first (Nuke DeepToImage, or oiiotool --flatten)."
        )
    windows = {
        "data": (spec.width, spec.height),
        "display": (spec.full_width, spec.full_height),
    }
    for name, (width, height) in windows.items():
        if width < 1 or height < 1 or width > MAX_SIDE or height > MAX_SIDE:
            raise InputError(
                f"'{path}' claims a {name} window of {width}x{height} pixels (each side must "
                f"be 1 to {MAX_SIDE}); the header is damaged: re-render or re-copy the file."
            )
    need = (
        max(
            spec.width * spec.height * read_channels,
            spec.full_width * spec.full_height * kept_channels,
        )
        * 4
    )  # float32 buffers
    budget = _budget_bytes()
    if need > budget:
        raise InputError(
            f"'{path}' would need {need / 2**30:.1f} GiB to read ({spec.full_width}x"
            f"{spec.full_height} display, {spec.width}x{spec.height} data window, "
            f"{read_channels} channel(s)), over the limit of {budget / 2**30:.1f} GiB "
            "(OpenImageIO's limits:imagesize_MB); a damaged header, or read fewer channels "
            "(--channels)."
        )


def printable(names: Sequence[str]) -> list[str]:
    """Channel names safe to print: bytes of a damaged header that are not UTF-8 shown
    as U+FFFD, control characters as ``\\xNN``."""
    out = []
    for name in names:
        text = name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")
        out.append("".join(f"\\x{ord(c):02x}" if c < " " or c == "\x7f" else c for c in text))
    return out


# Carried attribute -> (element count, element type) its value must have to be written back.
_ATTRIBUTE_SHAPES = {
    "framesPerSecond": (2, int),
    "smpte:TimeCode": (2, int),
    "smpte:KeyCode": (7, int),
    "chromaticities": (8, float),
}


def carried_value(name: str, value: Any) -> Any:
    """``value`` of a carried attribute when it has the type the writer expects, else
    ``None`` (a damaged or foreign header: the attribute is dropped, not carried).

    ``framesPerSecond`` must be a positive rational, ``PixelAspectRatio`` a positive
    finite number, the others strings or the tuples of :data:`_ATTRIBUTE_SHAPES`.
    """
    if name in _ATTRIBUTE_SHAPES:
        count, kind = _ATTRIBUTE_SHAPES[name]
        if not isinstance(value, (tuple, list)) or len(value) != count:
            return None
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value):
            return None
        if name == "framesPerSecond" and (value[0] <= 0 or value[1] <= 0):
            return None
        return tuple(kind(v) for v in value)
    if name == "PixelAspectRatio":
        ok = isinstance(value, (int, float)) and 0 < float(value) < float("inf")
        return float(value) if ok else None
    return value if isinstance(value, (str, int, float)) else None
