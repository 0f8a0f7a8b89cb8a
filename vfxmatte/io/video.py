"""Video files (mp4, mov incl. ProRes, mkv ...) read and written through PyAV.

Reading is frame-accurate: a requested frame is found by its presentation
timestamp, after seeking to the keyframe before it, never by counting from an
approximate seek. Pixels are returned display-referred as stored (no transfer
function is removed): ``H x W x 3`` float32 RGB in [0, 1], kept at 16 bits for
10/12-bit sources such as ProRes.

Writing is for previews and tests: frames are encoded to a temporary file in
the target folder and renamed over the target only when the file is complete.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Any

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from vfxmatte.errors import ConfigError, InputError, MissingFramesError, closest_hint
from vfxmatte.io.frame import Frame

__all__ = ["VideoInfo", "probe_video", "read_video", "write_video"]

logger = logging.getLogger(__name__)

# A requested frame further ahead than this is reached by seeking, not decoding.
_RESEEK_SECONDS = 2.0

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

_TIMECODE = re.compile(r"^\d{2}:\d{2}:\d{2}[:;]\d{2}$")
_RGB = ("R", "G", "B")


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` learns about the first video stream of a file.

    Attributes:
        path: the file.
        width, height: frame size in pixels.
        fps: frame rate as an exact fraction, e.g. ``Fraction(24000, 1001)``.
        frame_count: exact number of frames (from the container's frame count,
            else counted from the packets).
        codec: decoder name, e.g. ``"h264"``, ``"prores"``, ``"ffv1"``.
        pix_fmt: stored pixel format, e.g. ``"yuv422p10le"``; ``None`` if unknown.
        bit_depth: bits per component of ``pix_fmt`` (8, 10, 12 ...).
        timecode: start timecode ``"HH:MM:SS:FF"`` (``;`` for drop-frame) or ``None``.
        duration: ``frame_count / fps`` in seconds.
    """

    path: str
    width: int
    height: int
    fps: Fraction
    frame_count: int
    codec: str
    pix_fmt: str | None
    bit_depth: int
    timecode: str | None
    duration: float


# --------------------------------------------------------------------------- reading


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Describe the first video stream of ``path``.

    Raises:
        InputError: the file is missing, unreadable or has no video stream.
    """
    path = os.fspath(path)
    container = _open_input(path)
    try:
        info = _probe_open(container, path)
        if info.frame_count < 0:
            count = _count_packets(container, container.streams.video[0])
            info = replace(info, frame_count=count, duration=float(count / info.fps))
        return info
    except av.FFmpegError as exc:
        raise _unreadable(path, exc) from exc
    finally:
        container.close()


def read_video(
    path: str | os.PathLike[str],
    frames: Sequence[int] | None = None,
    *,
    first_frame: int = 0,
    bit_depth_float: bool = True,
) -> Iterator[Frame]:
    """Decode frames of a video file one at a time.

    Args:
        path: the video file.
        frames: frame numbers to read (in the numbering set by ``first_frame``),
            yielded in increasing order; ``None`` reads every frame.
        first_frame: the number of the file's first frame (e.g. 1001).
        bit_depth_float: ``True`` gives float32 pixels in [0, 1]; ``False``
            gives the decoded integers unscaled, uint8 for 8-bit sources and
            uint16 (full 16-bit range) for deeper ones.

    Returns:
        A generator of :class:`Frame` with ``pixels`` ``H x W x 3`` RGB,
        display-referred as stored (tagged ``oiio:ColorSpace = "sRGB"``),
        16-bit precise for 10/12-bit sources. A full read numbers frames by
        their position in display order; a ranged read by their pts. Only one
        decoded frame is held at a time.

    Raises:
        InputError: the file is missing or unreadable (raised by this call; a
            file damaged further in raises while decoding).
        MissingFramesError: requested frames are past the end of the video:
            raised by this call when the container stores its frame count
            (mp4, mov), else while decoding once the end is reached (mkv).
    """
    path = os.fspath(path)
    container = _open_input(path)
    try:
        # No packet counting here: a file that does not store its frame count is
        # checked for missing frames while decoding instead of read twice.
        info = _probe_open(container, path)
    except av.FFmpegError as exc:
        raise _unreadable(path, exc) from exc
    finally:
        container.close()
    wanted: list[int] | None = None
    if frames is not None:
        wanted = _wanted_indices(frames, first_frame, info)
    return _read_frames(path, info, wanted, first_frame, bit_depth_float)


def _read_frames(
    path: str, info: VideoInfo, wanted: list[int] | None, first_frame: int, as_float: bool
) -> Iterator[Frame]:
    metadata: dict[str, Any] = {
        "framesPerSecond": f"{info.fps.numerator}/{info.fps.denominator}",
        "vfxmatte:source": path,
        "oiio:ColorSpace": "sRGB",
    }
    if info.timecode:
        metadata["smpte:TimeCode"] = info.timecode
    deep = info.bit_depth > 8
    container = _open_input(path)
    try:
        stream = container.streams.video[0]
        if wanted is None:
            indexed: Iterable[tuple[int, av.VideoFrame]] = enumerate(container.decode(stream))
        else:
            indexed = _decode_wanted(container, stream, info, wanted, first_frame)
        count = 0
        for index, decoded in indexed:
            pixels = _to_pixels(decoded, deep, as_float)
            count += 1
            yield Frame(first_frame + index, pixels, _RGB, dict(metadata), path)
    except av.FFmpegError as exc:
        raise _unreadable(path, exc) from exc
    finally:
        container.close()
    if wanted is None and info.frame_count >= 0 and count != info.frame_count:
        logger.warning("%s: decoded %d frames, the file declares %d", path, count, info.frame_count)


def _decode_wanted(
    container: Any, stream: Any, info: VideoInfo, wanted: list[int], first_frame: int
) -> Iterator[tuple[int, Any]]:
    """Yield ``(index, frame)`` for each wanted 0-based index, seeking where it pays.

    The index of a decoded frame comes from its pts relative to the first frame's
    pts, so that a seek landing on any keyframe still numbers frames exactly. A
    target is sought at most once, so a seek that cannot get closer (past the
    end, or landing late) falls back to decoding forward.
    """
    pending = deque(wanted)
    missing: list[int] = []
    reseek = max(1, math.ceil(_RESEEK_SECONDS * info.fps))
    decoded = container.decode(stream)
    first = next(decoded, None)
    if first is None:
        missing = [first_frame + i for i in wanted]
        raise MissingFramesError(f"{info.path}: no frame could be decoded.", missing)
    start_pts = first.pts
    source: Iterator[Any] = chain((first,), decoded)
    del first  # hold no decoded frame beyond the current one
    position, sought = 0, -1
    while pending:
        if start_pts is not None and pending[0] != sought and pending[0] - position > reseek:
            sought = pending[0]
            source = _seek(container, stream, info, start_pts, sought)
        for index, frame in _indexed(source, start_pts, info.fps, stream.time_base, position - 1):
            position = index
            while pending and pending[0] < index:
                missing.append(pending.popleft())
            if pending and pending[0] == index:
                pending.popleft()
                yield index, frame
            if not pending or (pending[0] != sought and pending[0] - index > reseek):
                break
        else:
            missing.extend(pending)
            pending.clear()
    if missing:
        numbers = [first_frame + i for i in missing]
        raise MissingFramesError(
            f"{info.path}: frames {numbers} were not found while decoding (the last frame "
            f"decoded is {first_frame + position}); request frames the file holds, or "
            "re-export it if it is damaged.",
            numbers,
        )


def _seek(container: Any, stream: Any, info: VideoInfo, start_pts: int, index: int) -> Any:
    """Seek to the keyframe at or before ``index``; rewind to the start if it lands past."""
    offset = start_pts + math.floor(Fraction(index) / info.fps / stream.time_base)
    logger.debug("seeking to frame index %d (pts %d)", index, offset)
    container.seek(offset, stream=stream, backward=True, any_frame=False)
    decoded = container.decode(stream)
    first = next(decoded, None)
    if first is not None and first.pts is not None:
        landed = round((first.pts - start_pts) * stream.time_base * info.fps)
        if landed <= index:
            return chain((first,), decoded)
        logger.debug("seek landed on index %d past %d; decoding from the start", landed, index)
    container.seek(start_pts, stream=stream, backward=True, any_frame=False)
    return container.decode(stream)


def _indexed(
    frames: Iterable[Any], start_pts: int | None, fps: Fraction, time_base: Fraction, last: int
) -> Iterator[tuple[int, Any]]:
    """Number decoded frames by pts; a frame without pts follows the previous one."""
    for frame in frames:
        if frame.pts is None or start_pts is None:
            last += 1
        else:
            last = round((frame.pts - start_pts) * time_base * fps)
        yield last, frame


def _wanted_indices(frames: Sequence[int], first_frame: int, info: VideoInfo) -> list[int]:
    numbers = sorted({_as_frame_number(n) for n in frames})
    if not numbers:
        raise InputError(f"{info.path}: no frames were requested; pass frame numbers or None.")
    end = info.frame_count if info.frame_count >= 0 else math.inf
    missing = [n for n in numbers if not 0 <= n - first_frame < end]
    if missing:
        last = first_frame + info.frame_count - 1
        raise MissingFramesError(
            f"{info.path} holds frames {first_frame}-{last}; frames {missing} are outside it.",
            missing,
        )
    return [n - first_frame for n in numbers]


def _as_frame_number(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputError(f"frame numbers must be integers, got {value!r}.")
    return int(value)


def _to_pixels(frame: Any, deep: bool, as_float: bool) -> np.ndarray:
    """``H x W x 3`` RGB: float32 [0,1] or the integers (uint8 / uint16) as decoded."""
    if deep:
        pixels = frame.to_ndarray(format="rgb48le")  # [H, W, 3] uint16
        return pixels.astype(np.float32) / np.float32(65535.0) if as_float else pixels
    pixels = frame.to_ndarray(format="rgb24")  # [H, W, 3] uint8
    return pixels.astype(np.float32) / np.float32(255.0) if as_float else pixels


def _open_input(path: str) -> Any:
    if not os.path.isfile(path):
        raise InputError(f"Video file '{path}' does not exist; check the path.")
    try:
        return av.open(path, mode="r")
    except (av.FFmpegError, UnicodeDecodeError) as exc:
        raise _unreadable(path, exc) from exc


def _unreadable(path: str, exc: BaseException) -> InputError:
    reason = getattr(exc, "strerror", None) or exc
    return InputError(
        f"Could not decode video file '{path}' ({reason}): it is damaged or not a video; "
        "re-export it or convert it to an image sequence."
    )


def _probe_open(container: Any, path: str) -> VideoInfo:
    """The stream's facts; ``frame_count`` is -1 where the container does not store it."""
    if not container.streams.video:
        raise InputError(f"'{path}' has no video stream; give a video file or an image sequence.")
    stream = container.streams.video[0]
    ctx = stream.codec_context
    fps = stream.average_rate or stream.guessed_rate or stream.base_rate
    if not fps:
        raise InputError(f"'{path}' does not declare a frame rate; re-export it with one.")
    fps = Fraction(fps)
    count = int(stream.frames or 0) or -1
    pix_fmt = ctx.pix_fmt
    bit_depth = max(c.bits for c in av.VideoFormat(pix_fmt).components) if pix_fmt else 8
    return VideoInfo(
        path=path,
        width=int(ctx.width),
        height=int(ctx.height),
        fps=fps,
        frame_count=count,
        codec=ctx.name,
        pix_fmt=pix_fmt,
        bit_depth=int(bit_depth),
        timecode=_find_timecode(container),
        duration=float(count / fps) if count >= 0 else math.nan,
    )


def _count_packets(container: Any, stream: Any) -> int:
    return sum(1 for packet in container.demux(stream) if packet.size > 0)


def _find_timecode(container: Any) -> str | None:
    """The ``timecode`` tag of the video stream, a tmcd data stream or the container."""
    sources = [container.streams.video[0].metadata]
    sources += [s.metadata for s in container.streams if s.type == "data"]
    sources.append(container.metadata)
    for metadata in sources:
        for key, value in metadata.items():
            if key.lower() == "timecode" and value:
                return str(value)
    return None


# --------------------------------------------------------------------------- writing


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
