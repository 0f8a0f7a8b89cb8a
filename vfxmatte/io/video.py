"""Video files (mp4, mov incl. ProRes, mkv ...) read through PyAV.

Reading is frame-accurate: a requested frame is found by its presentation
timestamp, after seeking to the keyframe before it, never by counting from an
approximate seek. Pixels are returned display-referred as stored (no transfer
function is removed): ``H x W x 3`` float32 RGB in [0, 1], kept at 16 bits for
10/12-bit sources such as ProRes.

Writing (previews, tests) is in :mod:`vfxmatte.io.video_write`.
"""

from __future__ import annotations

import logging
import math
import os
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, replace
from fractions import Fraction
from itertools import chain
from typing import Any

import av
import numpy as np

from vfxmatte.errors import InputError, MissingFramesError
from vfxmatte.io.frame import Frame
from vfxmatte.io.timecode import offset_timecode

__all__ = ["VideoInfo", "probe_video", "read_video"]

logger = logging.getLogger(__name__)

# A requested frame further ahead than this is reached by seeking, not decoding.
_RESEEK_SECONDS = 2.0

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
    timebase = max(1, round(info.fps))  # timecode frames per second (30 for 29.97)
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
            frame_meta = dict(metadata)
            if info.timecode:  # the stream's start timecode, advanced to this frame
                frame_meta["smpte:TimeCode"] = offset_timecode(info.timecode, index, timebase)
            yield Frame(first_frame + index, pixels, _RGB, frame_meta, path)
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
