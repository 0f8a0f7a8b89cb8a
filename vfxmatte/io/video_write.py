"""Writing video files through PyAV (previews and tests).

Frames are encoded to a temporary file in the target folder and renamed over the
target only when the file is complete.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from vfxmatte.errors import ConfigError, InputError, closest_hint
from vfxmatte.io.video import VideoInfo, probe_video

__all__ = ["write_video"]

logger = logging.getLogger(__name__)

_TIMECODE = re.compile(r"^\d{2}:\d{2}:\d{2}[:;]\d{2}$")

_DEFAULT_PIX_FMT = {
    "libx264": "yuv420p",
    "libx265": "yuv420p",
    "prores_ks": "yuv422p10le",
    "prores": "yuv422p10le",
    "mjpeg": "yuvj420p",
    "ffv1": "yuv444p",
    "png": "rgb24",
}

# AVCOL_* tag values (libavutil/pixfmt.h): BT.709 colorspace/primaries/transfer,
# BT.601 (BT470BG) colorspace, limited (MPEG) and full (JPEG) range.
_AVCOL_BT709 = 1
_AVCOL_BT601 = 5
_AVCOL_RANGE_MPEG = 1
_AVCOL_RANGE_JPEG = 2
# JPEG-family decoders assume BT.601 coefficients whatever the stream is tagged.
_BT601_CODECS = frozenset({"mjpeg", "ljpeg", "jpegls"})

def write_video(
    path: str | os.PathLike[str],
    frames: Iterable[np.ndarray],
    fps: float | Fraction | str = 24,
    *,
    codec: str = "libx264",
    pix_fmt: str | None = None,
    crf: int | None = None,
    options: Mapping[str, str] | None = None,
    timecode: str | None = None,
    pad_odd: bool = True,
) -> VideoInfo:
    """Encode frames to a video file, atomically.

    Args:
        path: target file; its extension picks the container (.mp4, .mov, .mkv).
        frames: ``H x W x 3`` arrays (``H x W`` / ``H x W x 1`` are grey), all the
            same size: float in [0, 1] (clipped, NaN -> 0), uint8 or uint16,
            display-referred; encoded with BT.709 coefficients and tagged so.
        fps: frame rate: ``24``, ``Fraction(24000, 1001)``, ``"24000/1001"`` or
            ``23.976`` (read as 24000/1001).
        codec: encoder name, e.g. ``"libx264"``, ``"prores_ks"``, ``"mjpeg"``, ``"ffv1"``.
        pix_fmt: stored pixel format; the codec's usual one when ``None``
            (``yuv420p`` for x264, ``yuv422p10le`` for ProRes). Deep formats are
            fed 16-bit RGB so no precision is lost on the way.
        crf: constant rate factor (x264/x265; ``0`` with ``yuv444p`` is lossless).
        options: further encoder options, e.g. ``{"qp": "0", "g": "12", "profile": "3"}``.
        timecode: start timecode ``"HH:MM:SS:FF"`` written as the ``timecode`` tag.
        pad_odd: pad odd sizes by repeating the last row/column when the pixel
            format subsamples chroma; ``False`` raises instead.

    Returns:
        The :class:`VideoInfo` of the written file.

    Raises:
        ConfigError: unknown codec, bad fps or timecode.
        InputError: no frames, frames of mixed or odd sizes, or an encoder failure.
    """
    target = Path(path)
    rate = _parse_fps(fps)
    _check_codec(codec)
    if timecode is not None and not _TIMECODE.match(timecode):
        raise ConfigError(f"timecode must look like 'HH:MM:SS:FF', got {timecode!r}.")
    if not target.suffix:
        raise InputError(f"'{target}' has no extension; name it .mp4, .mov or .mkv.")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.stem}.tmp-{os.getpid()}{target.suffix}")
    settings = dict(options or {})
    if crf is not None:
        settings["crf"] = str(crf)
    try:
        written = _encode(
            temp, frames, rate, codec, pix_fmt or _default_pix_fmt(codec), settings, timecode,
            pad_odd,
        )
        if written == 0:
            raise InputError(f"no frames were given to write to '{target}'; pass at least one.")
        os.replace(temp, target)
    except av.FFmpegError as exc:
        raise InputError(
            f"Could not encode '{target}' with {codec} ({exc}); check the codec options."
        ) from exc
    finally:
        if temp.exists():
            temp.unlink()
    return probe_video(target)


def _encode(
    temp: Path,
    frames: Iterable[np.ndarray],
    fps: Fraction,
    codec: str,
    pix_fmt: str,
    settings: dict[str, str],
    timecode: str | None,
    pad_odd: bool,
) -> int:
    """Encode ``frames`` into ``temp``; return how many were written."""
    fmt = _video_format(pix_fmt)
    deep = max(c.bits for c in fmt.components) > 8
    bt601, full_range = codec in _BT601_CODECS, pix_fmt.startswith("yuvj")
    count = 0
    with av.open(str(temp), mode="w") as container:
        if timecode:
            container.metadata["timecode"] = timecode
        stream = None
        for array in frames:
            rgb = _to_encoder_array(array, deep, count)
            if stream is None:
                stream = _add_stream(container, codec, fps, fmt, settings, rgb.shape, pad_odd)
                size = rgb.shape
            elif rgb.shape != size:
                raise InputError(f"frame {count} is {rgb.shape[:2]} but frame 0 is {size[:2]}; "
                                 "write frames of one size.")
            rgb = _pad_to(rgb, stream.height, stream.width)
            image = av.VideoFrame.from_ndarray(rgb, format="rgb48le" if deep else "rgb24")
            if not fmt.is_rgb:
                image = image.reformat(
                    format=pix_fmt,
                    dst_colorspace=Colorspace.ITU601 if bt601 else Colorspace.ITU709,
                    dst_color_range=ColorRange.JPEG if full_range else ColorRange.MPEG,
                )
            image.pts = count
            container.mux(stream.encode(image))
            count += 1
        if stream is not None:
            container.mux(stream.encode(None))
    return count


def _add_stream(
    container: Any,
    codec: str,
    fps: Fraction,
    fmt: Any,
    settings: dict[str, str],
    shape: tuple[int, ...],
    pad_odd: bool,
) -> Any:
    """Add the video stream for ``shape`` frames, padded to even sizes where chroma needs it."""
    height, width = shape[:2]
    padded_w = width + width % 2 if fmt.chroma_width(2) == 1 else width
    padded_h = height + height % 2 if fmt.chroma_height(2) == 1 else height
    if (padded_w, padded_h) != (width, height):
        if not pad_odd:
            raise InputError(f"{fmt.name} needs even sizes but frames are {width}x{height}; "
                             "pass pad_odd=True or a 4:4:4 pix_fmt such as 'yuv444p'.")
        logger.warning("padding %dx%d frames to %dx%d for %s", width, height, padded_w,
                       padded_h, fmt.name)
    stream = container.add_stream(codec, rate=fps, options=settings)
    stream.width, stream.height, stream.pix_fmt = padded_w, padded_h, fmt.name
    stream.time_base = 1 / fps
    if not fmt.is_rgb:
        ctx = stream.codec_context
        ctx.color_primaries = ctx.color_trc = _AVCOL_BT709
        ctx.colorspace = _AVCOL_BT601 if codec in _BT601_CODECS else _AVCOL_BT709
        full_range = fmt.name.startswith("yuvj")
        ctx.color_range = _AVCOL_RANGE_JPEG if full_range else _AVCOL_RANGE_MPEG
    return stream


def _video_format(pix_fmt: str) -> Any:
    try:
        return av.VideoFormat(pix_fmt)
    except ValueError:
        raise ConfigError(
            f"unknown pix_fmt {pix_fmt!r}; use e.g. 'yuv420p', 'yuv444p', 'yuv422p10le'."
        ) from None


def _to_encoder_array(array: np.ndarray, deep: bool, index: int) -> np.ndarray:
    """Any accepted frame -> contiguous ``H x W x 3`` uint16 (deep) or uint8."""
    array = np.asarray(array)
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3):
        raise InputError(f"frame {index} has shape {array.shape}; expected H x W x 3 RGB.")
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    peak = 65535 if deep else 255
    if np.issubdtype(array.dtype, np.floating):
        clean = np.clip(np.nan_to_num(array.astype(np.float32), nan=0.0), 0.0, 1.0)
        out = np.rint(clean * peak)
    elif array.dtype == np.uint8:
        out = array.astype(np.uint32) * (257 if deep else 1)
    elif array.dtype == np.uint16:
        out = array if deep else (array.astype(np.uint32) + 128) // 257
    else:
        raise InputError(f"frame {index} is {array.dtype}; expected float [0,1], uint8 or uint16.")
    return np.ascontiguousarray(out, dtype=np.uint16 if deep else np.uint8)


def _pad_to(rgb: np.ndarray, height: int, width: int) -> np.ndarray:
    pad_h, pad_w = height - rgb.shape[0], width - rgb.shape[1]
    if pad_h == 0 and pad_w == 0:
        return rgb
    return np.pad(rgb, ((0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _parse_fps(fps: float | Fraction | str) -> Fraction:
    try:
        rate = Fraction(fps)
    except (TypeError, ValueError, ZeroDivisionError):
        raise ConfigError(f"fps must be a number or 'num/den', got {fps!r}.") from None
    if isinstance(fps, float):
        for base in (24, 30, 48, 60, 120):
            ntsc = Fraction(base * 1000, 1001)
            if abs(fps - float(ntsc)) < 2e-3:
                return ntsc
        rate = rate.limit_denominator(1001)
    if rate <= 0:
        raise ConfigError(f"fps must be positive, got {fps!r}.")
    return rate


def _check_codec(codec: str) -> None:
    try:
        found = av.Codec(codec, "w")
    except (ValueError, av.FFmpegError):
        found = None
    if found is None or found.type != "video":
        encoders = sorted(_DEFAULT_PIX_FMT)
        raise ConfigError(
            f"'{codec}' is not a video encoder in this PyAV build; use one of {encoders}."
            + closest_hint(codec, encoders)
        )


def _default_pix_fmt(codec: str) -> str:
    if codec in _DEFAULT_PIX_FMT:
        return _DEFAULT_PIX_FMT[codec]
    formats = av.Codec(codec, "w").video_formats or ()
    return formats[0].name if formats else "yuv420p"
