"""Still-image files through OpenImageIO: EXR, DPX, TIFF, PNG, JPEG.

Reading returns the *display window* as ``H x W x C`` float32 (8/16-bit files
scaled to [0,1], EXR/DPX values as stored, so scene-linear plates keep values
above 1.0). A data window smaller than the display window is placed inside it
with zeros around; a larger one (overscan) is cropped to it. Channels are chosen
by name (``R,G,B``) or by layer (``fg`` -> ``fg.R, fg.G, fg.B``) across all parts
of a multi-part EXR. Writing is atomic (:mod:`vfxmatte.io.atomic`).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shutil
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from vfxmatte.errors import ConfigError, InputError, closest_hint
from vfxmatte.io.atomic import atomic_path
from vfxmatte.io.frame import Frame
from vfxmatte.io.image_checks import (
    carried_value,
    check_header,
    check_image_path,
    clean_text,
    oiio_error,
    printable,
)
from vfxmatte.io.timecode import pack_timecode, parse_timecode

__all__ = [
    "CARRIED_METADATA",
    "EXR_COMPRESSIONS",
    "HALF_MAX",
    "HEADER_ATTRIBUTES",
    "clamp_to_half",
    "probe_image",
    "read_image",
    "resolve_channels",
    "write_image",
]

log = logging.getLogger(__name__)

#: Attributes read from an input and written to the outputs derived from it.
CARRIED_METADATA = (
    "framesPerSecond",
    "smpte:TimeCode",
    "smpte:KeyCode",
    "PixelAspectRatio",
    "oiio:ColorSpace",
    "chromaticities",
    "owner",
    "comments",
    "capDate",
    "ImageDescription",
    "Copyright",
    "Artist",
)
EXR_COMPRESSIONS = ("none", "rle", "zips", "zip", "piz", "pxr24", "b44", "b44a", "dwaa", "dwab")
_DTYPES = {"half": "half", "float": "float", "uint8": "uint8", "uint16": "uint16"}
_CHANNEL_ORDER = {"R": 0, "G": 1, "B": 2, "A": 3}


def _oiio() -> Any:
    import OpenImageIO as oiio

    return oiio


def _channel_sort_key(name: str) -> tuple[int, str]:
    return (_CHANNEL_ORDER.get(name.rsplit(".", 1)[-1], 4), name)


def resolve_channels(
    available: Sequence[str], wanted: str | Sequence[str] | None, *, path: str = ""
) -> list[str]:
    """Turn a channel request into channel names present in ``available``.

    ``wanted`` is ``None`` (all channels), a comma list ``"R,G,B"``, a sequence of
    names, or a layer name ``"fg"`` meaning every ``fg.*`` channel (R, G, B, A
    first). A request ``"RGB"``/``"RGBA"`` means those single channels.

    Raises:
        InputError: naming the unknown channel, the file and the channels it has.
    """
    if wanted is None:
        return list(available)
    if isinstance(wanted, str):
        if wanted in ("RGB", "RGBA"):
            names = list(wanted)
        elif "," in wanted or wanted in available:
            names = [c.strip() for c in wanted.split(",") if c.strip()]
        else:
            layer = [c for c in available if c.startswith(wanted + ".")]
            if layer:
                return sorted(layer, key=_channel_sort_key)
            names = [wanted]
    else:
        names = list(wanted)
    for name in names:
        if name not in available:
            hint = closest_hint(name, available) or (
                " Pick channels with --channels (names, a layer, or e.g. G,G,G)."
            )
            raise InputError(
                f"'{path}' has no channel '{printable([name])[0]}'; it has: "
                f"{', '.join(printable(available))}.{hint}"
            )
    return names


def _read_metadata(spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {}
    for attr in spec.extra_attribs:
        try:
            name = attr.name
            value = carried_value(name, attr.value) if name in CARRIED_METADATA else None
        except (UnicodeDecodeError, ValueError, TypeError):  # a damaged header's attribute
            continue
        if value is not None:
            meta[name] = value
        elif name in CARRIED_METADATA:
            _warn_not_carried(name)
    return meta


@functools.cache
def _warn_not_carried(name: str) -> None:
    """Once per attribute name and process, not once per frame."""
    log.warning("Not carrying the attribute %s to the outputs: its value is malformed.", name)


def _open_error(path: str, detail: str) -> InputError:
    detail = clean_text(detail, path)
    if "could not find a format reader" in detail:
        advice = "it is not an image OpenImageIO reads: check the file and its extension"
    elif "not supported" in detail:
        advice = "OpenImageIO cannot read this kind of image: write it again as plain RGB(A)"
    else:
        advice = "the file is damaged or truncated: re-render or re-copy it"
    return InputError(f"Cannot read the image '{path}' ({detail}); {advice}.")


@contextlib.contextmanager
def _opened(path: str, what: str = "", role: str = "image") -> Iterator[Any]:
    """An open OpenImageIO ``ImageInput`` of ``path``, closed afterwards.

    Raises:
        InputError: missing, empty or unreadable file (see :mod:`vfxmatte.io.image_checks`).
    """
    check_image_path(path, role, what)
    oiio = _oiio()
    inp = oiio.ImageInput.open(path)
    if inp is None:
        raise _open_error(path, oiio_error(oiio.geterror))
    try:
        yield inp
    finally:
        inp.close()


def _luminance_as_rgb(
    available: Sequence[str], wanted: str | Sequence[str] | None
) -> list[str] | None:
    """``Y, Y, Y(, A)`` for an RGB(A) request on a luminance-only file, else ``None``."""
    if isinstance(wanted, str):
        wanted = list(wanted) if wanted in ("RGB", "RGBA") else wanted.split(",")
    names = [n.strip() for n in wanted or ()]
    if names[:3] != ["R", "G", "B"] or "Y" not in available or set("RGB") & set(available):
        return None
    if len(names) > 4 or (len(names) == 4 and (names[3] != "A" or "A" not in available)):
        return None
    return ["Y", "Y", "Y", *names[3:]]


def _find_part(
    inp: Any, path: str, channels: str | Sequence[str] | None
) -> tuple[Any, list[str], list[str]]:
    """Seek ``inp`` to the first part that holds every requested channel.

    Returns:
        ``(spec, names read, names reported)``: the two differ only for a luminance
        file read as RGB (``Y`` read for ``R``, ``G`` and ``B``).
    """
    all_names: list[str] = []
    first_error: InputError | None = None
    part = 0
    while inp.seek_subimage(part, 0):
        spec = inp.spec()
        if spec.deep:
            check_header(spec, path, spec.nchannels, spec.nchannels)  # says: flatten it
        names = list(spec.channelnames)
        all_names.extend(n for n in names if n not in all_names)
        grey = _luminance_as_rgb(names, channels)
        if grey is not None:
            log.info("'%s' has a luminance channel Y only: read as grey R, G, B.", path)
            return spec, grey, ["R", "G", "B", *grey[3:]]
        try:
            found = resolve_channels(names, channels, path=path)
            return spec, found, found
        except InputError as exc:
            first_error = first_error or exc
        part += 1
    if part > 1:
        # Report against the union of all parts, not just the first one.
        resolve_channels(all_names, channels, path=path)
    raise first_error or _open_error(path, oiio_error(inp.geterror) or "no image data")


def _read_pixels(inp: Any, spec: Any, path: str, names: Sequence[str]) -> np.ndarray:
    """The data window of the channels ``names`` as ``h x w x len(names)`` float32.

    Only the contiguous channel range that holds ``names`` is read, and only after
    :func:`~vfxmatte.io.image_checks.check_header` accepted the sizes.
    """
    all_names = list(spec.channelnames)
    index = [all_names.index(n) for n in names]
    begin, end = min(index), max(index) + 1
    check_header(spec, path, end - begin, len(names))
    data = inp.read_image(inp.current_subimage(), 0, begin, end, "float")
    if data is None or inp.has_error:
        raise _open_error(path, oiio_error(inp.geterror) or "no pixels could be read")
    data = np.asarray(data, dtype=np.float32)
    if data.size != spec.height * spec.width * (end - begin):
        raise _open_error(path, f"{data.size} values read for a {spec.width}x{spec.height} image")
    data = data.reshape(spec.height, spec.width, end - begin)
    return data[:, :, [i - begin for i in index]]


def read_image(
    path: str | os.PathLike[str],
    channels: str | Sequence[str] | None = None,
    *,
    number: int = 0,
    nonfinite: str = "error",
) -> Frame:
    """Read one image file into a :class:`~vfxmatte.io.frame.Frame`.

    Args:
        path: the file (any format OpenImageIO reads).
        channels: see :func:`resolve_channels`. A request for ``R,G,B`` (``RGB``,
            ``RGBA``) on a file with a luminance channel ``Y`` only reads ``Y`` as grey.
        number: the frame number to record in the result.
        nonfinite: what to do with NaN/inf pixels: ``"error"`` (raise),
            ``"zero"`` (replace with 0 and log a warning) or ``"keep"``.

    Returns:
        Frame with ``pixels`` ``H x W x C`` float32 over the display window.

    Raises:
        InputError: missing, empty, unreadable, truncated, damaged or deep file, a
            header claiming absurd sizes (:mod:`vfxmatte.io.image_checks`); unknown
            channel; NaN/inf pixels with ``nonfinite="error"``.
    """
    path = os.fspath(path)
    if nonfinite not in ("error", "zero", "keep"):
        raise ConfigError(f"nonfinite must be error, zero or keep, got {nonfinite!r}.")
    with _opened(path, f" (frame {number})") as inp:
        spec, names, labels = _find_part(inp, path, channels)
        data = _read_pixels(inp, spec, path, names)
    pixels = _to_display_window(data, spec, path)
    pixels = _check_finite(pixels, path, number, nonfinite)
    meta = _read_metadata(spec)
    meta["vfxmatte:source"] = path
    return Frame(number=number, pixels=pixels, channels=tuple(labels), metadata=meta, path=path)


def _to_display_window(data: np.ndarray, spec: Any, path: str = "") -> np.ndarray:
    """Place the data window ``data`` into the display window, zero outside.

    The display window is the image (OpenEXR's rule): data outside it is cropped,
    display pixels without data are 0. A data window that misses the display window
    entirely gives a black image, with a warning.
    """
    if (spec.x, spec.y, spec.width, spec.height) == (
        spec.full_x, spec.full_y, spec.full_width, spec.full_height
    ):
        return np.ascontiguousarray(data)
    out = np.zeros((spec.full_height, spec.full_width, data.shape[2]), np.float32)
    # Overlap of the data window with the display window, in display coordinates.
    x0, y0 = max(spec.x, spec.full_x), max(spec.y, spec.full_y)
    x1 = min(spec.x + spec.width, spec.full_x + spec.full_width)
    y1 = min(spec.y + spec.height, spec.full_y + spec.full_height)
    if x1 <= x0 or y1 <= y0:
        log.warning("'%s': the data window misses the display window: a black image.", path)
    else:
        out[y0 - spec.full_y : y1 - spec.full_y, x0 - spec.full_x : x1 - spec.full_x] = data[
            y0 - spec.y : y1 - spec.y, x0 - spec.x : x1 - spec.x
        ]
    return out


def _check_finite(pixels: np.ndarray, path: str, number: int, policy: str) -> np.ndarray:
    if policy == "keep":
        return pixels
    bad = ~np.isfinite(pixels)
    if not bad.any():
        return pixels
    count = int(bad.any(axis=2).sum())
    y, x = np.argwhere(bad.any(axis=2))[0]
    if policy == "error":
        raise InputError(
            f"Frame {number} ('{path}') has {count} pixel(s) with NaN or infinite values "
            f"(first at x={x}, y={y}); fix the plate, or pass --nonfinite zero to replace "
            "them with 0."
        )
    log.warning("Frame %d (%s): replaced %d NaN/inf pixel(s) with 0.", number, path, count)
    return np.where(bad, np.float32(0), pixels)


#: vfxmatte's own header attributes that are written (other ``vfxmatte:`` keys, such as
#: ``vfxmatte:source``, are bookkeeping of the reader and never written).
HEADER_ATTRIBUTES = ("vfxmatte:settings", "vfxmatte:settings_digest", "vfxmatte:guidance")
#: The largest finite half float; larger values become inf in a half file.
HALF_MAX = 65504.0


def _set_metadata(spec: Any, metadata: Mapping[str, Any]) -> None:
    oiio = _oiio()
    for name, value in metadata.items():
        if value is None or (name.startswith("vfxmatte:") and name not in HEADER_ATTRIBUTES):
            continue
        if name == "framesPerSecond":
            if isinstance(value, str):  # "24000/1001" as video readers give it
                num, _, den = value.partition("/")
                value = (int(num), int(den or 1))
            spec.attribute(name, oiio.TypeDesc("rational"), tuple(int(v) for v in value))
        elif name == "smpte:TimeCode":
            if isinstance(value, str):  # "01:00:00:00" as video readers give it
                value = pack_timecode(*parse_timecode(value))
            spec.attribute(name, oiio.TypeTimeCode, tuple(int(v) for v in value))
        elif name == "smpte:KeyCode":
            spec.attribute(name, oiio.TypeKeyCode, tuple(int(v) for v in value))
        elif name == "chromaticities":
            spec.attribute(name, oiio.TypeDesc("float[8]"), tuple(float(v) for v in value))
        elif isinstance(value, (str, int, float)):
            spec.attribute(name, value)
        else:
            log.debug("Not writing metadata %s of type %s.", name, type(value).__name__)


def _check_compression(path: str, compression: str) -> str:
    if not path.lower().endswith(".exr"):
        return compression
    kind = compression.split(":", 1)[0]
    if kind not in EXR_COMPRESSIONS:
        raise ConfigError(
            f"Unknown EXR compression '{compression}'; valid: {', '.join(EXR_COMPRESSIONS)}."
            + closest_hint(kind, EXR_COMPRESSIONS)
        )
    return compression


def clamp_to_half(pixels: np.ndarray, where: str) -> np.ndarray:
    """``pixels`` with values beyond the half-float range clamped to +-65504, with a warning.

    A half EXR cannot hold them (they would become inf, which Nuke and every
    compositing operation then spread); clamping keeps the file finite and the
    pixel type of the sequence. ``--dtype float`` keeps them as they are.
    """
    if pixels.size == 0 or (pixels.max() <= HALF_MAX and pixels.min() >= -HALF_MAX):
        return pixels  # (NaN compares False: such arrays take the slow path below)
    over = np.isfinite(pixels) & (np.abs(pixels) > HALF_MAX)
    if not over.any():
        return pixels  # infinities and NaN are the caller's to refuse or keep
    peak = float(np.abs(pixels[over]).max())
    log.warning(
        "%s: %d value(s) beyond the half-float maximum 65504 (up to %.4g) were clamped to "
        "65504; write --dtype float to keep them.",
        where,
        int(over.sum()),
        peak,
    )
    return np.where(over, np.sign(pixels) * np.float32(HALF_MAX), pixels).astype(np.float32)


def _write_failed(path: str, detail: str, nbytes: int) -> Exception:
    """The sentence of a failed OpenImageIO write: full disk, unwritable folder, or its text."""
    from vfxmatte.errors import OutputLocationError
    from vfxmatte.io.write_guard import location_error, probe_folder

    folder = os.path.dirname(os.path.abspath(path))
    if "no space left" in detail.lower():
        return location_error(path, OSError(errno.ENOSPC, "No space left on device"))
    try:
        probe_folder(folder, path)
    except OutputLocationError as exc:
        return exc
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = nbytes
    if free < nbytes:
        return location_error(path, OSError(errno.ENOSPC, "No space left on device"))
    return OutputLocationError(f"Writing '{path}' failed: {detail or 'unknown error'}.")


def write_image(
    path: str | os.PathLike[str],
    pixels: np.ndarray,
    channels: Sequence[str],
    *,
    metadata: Mapping[str, Any] | None = None,
    dtype: str = "half",
    compression: str = "zip",
) -> None:
    """Write ``pixels`` (``H x W x C`` float32) to ``path`` atomically.

    Args:
        channels: ``C`` names; EXR layers as ``layer.R``; ``A`` marks alpha.
        metadata: attributes to write (e.g. those carried from the plate).
        dtype: ``half`` (EXR default), ``float``, ``uint8`` or ``uint16``
            (8/16-bit files take values in [0,1]; they are clamped). Values beyond
            the half range are clamped to +-65504 with a warning (:func:`clamp_to_half`).
        compression: EXR ``zip``, ``piz``, ``dwaa`` (``dwaa:45`` sets the level)
            ... or a TIFF compression (``zip``, ``lzw``); ignored for PNG/JPEG.

    Raises:
        InputError: wrong array shape/dtype or a channel count mismatch.
        ConfigError: unknown dtype or compression.
        OutputLocationError: the file cannot be written there (``DiskFullError``: no
            space left on device), naming the file.
    """
    path = os.fspath(path)
    pixels = np.asarray(pixels)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.ndim != 3 or pixels.shape[2] != len(channels):
        raise InputError(
            f"Cannot write '{path}': expected an H x W x {len(channels)} array for channels "
            f"{', '.join(channels)}, got shape {pixels.shape}."
        )
    if dtype not in _DTYPES:
        raise ConfigError(
            f"Unknown pixel type '{dtype}'; valid: {', '.join(_DTYPES)}."
            + closest_hint(dtype, _DTYPES)
        )
    compression = _check_compression(path, compression)
    oiio = _oiio()
    height, width, nch = pixels.shape
    spec = oiio.ImageSpec(width, height, nch, _DTYPES[dtype])
    spec.channelnames = tuple(channels)
    if "A" in channels:
        spec.alpha_channel = list(channels).index("A")
    if path.lower().endswith((".exr", ".tif", ".tiff")):
        spec.attribute("compression", compression)
    _set_metadata(spec, metadata or {})
    data = np.ascontiguousarray(pixels, dtype=np.float32)
    if dtype == "half":
        data = clamp_to_half(data, f"'{path}'")
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create(str(tmp))
        if out is None:
            raise ConfigError(f"Cannot write '{path}': {oiio.geterror() or 'unknown format'}.")
        ok = out.open(str(tmp), spec) and out.write_image(data)
        error = out.geterror()
        out.close()
        if not ok:
            raise _write_failed(path, error or oiio.geterror(), data.nbytes)


def probe_image(
    path: str | os.PathLike[str], channels: str | Sequence[str] | None = None
) -> Frame:
    """Size, channels and metadata of an image without reading its pixels.

    Returns a :class:`Frame` whose ``pixels`` is a zero-strided ``H x W x C`` view
    (no memory), so ``.width``/``.height``/``.channels``/``.metadata`` work.
    """
    path = os.fspath(path)
    with _opened(path) as inp:
        spec, names, labels = _find_part(inp, path, channels)
    check_header(spec, path, len(set(names)), len(names))
    shape = (spec.full_height, spec.full_width, len(names))
    pixels = np.lib.stride_tricks.as_strided(np.zeros(1, np.float32), shape, (0, 0, 0))
    return Frame(0, pixels, tuple(labels), _read_metadata(spec), path)
