"""A plate: an image sequence or a video file, read one frame at a time.

:func:`open_plate` is the one entry point the engine and hosts use. A plate knows
its frame numbers and size without decoding pixels, iterates lazily (one frame in
memory at a time) and reads single frames by number for stages that walk a shot
out of order (backward propagation from a keyframe).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from vfxmatte.errors import InputError, MissingFramesError
from vfxmatte.io.frame import Frame
from vfxmatte.io.sequence import FramePattern, compress_frames, parse_frame_range, resolve_frames

__all__ = ["VIDEO_EXTENSIONS", "Plate", "SequencePlate", "VideoPlate", "open_plate"]

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".m4v", ".mxf", ".webm")


@dataclass(frozen=True)
class PlateInfo:
    """Size and timing of a plate, read without decoding every frame."""

    width: int
    height: int
    channels: tuple[str, ...]
    fps: str | None
    timecode: str | None


class Plate:
    """Base of the plate readers. ``frames`` lists the frame numbers in order."""

    source: str
    frames: list[int]

    def __len__(self) -> int:
        return len(self.frames)

    def __iter__(self) -> Iterator[Frame]:
        raise NotImplementedError

    def read(self, number: int) -> Frame:
        """Read the frame numbered ``number``."""
        raise NotImplementedError

    @property
    def info(self) -> PlateInfo:
        raise NotImplementedError

    def _check_number(self, number: int) -> None:
        if number not in self._frame_set:
            raise MissingFramesError(
                f"Frame {number} is not in the plate '{self.source}' (frames "
                f"{compress_frames(self.frames)}).",
                [number],
            )

    @property
    def _frame_set(self) -> set[int]:
        cached = getattr(self, "_frames_cache", None)
        if cached is None or len(cached) != len(self.frames):
            cached = set(self.frames)
            self._frames_cache = cached
        return cached


class SequencePlate(Plate):
    """An image sequence read through OpenImageIO (see :mod:`vfxmatte.io.image`)."""

    def __init__(
        self,
        pattern: str,
        frames: str | Sequence[int] | None = None,
        *,
        channels: str | Sequence[str] | None = "RGB",
        nonfinite: str = "error",
    ) -> None:
        self.pattern = FramePattern.parse(pattern)
        self.source = pattern
        self.frames = resolve_frames(self.pattern, frames)
        self.channels = channels
        self.nonfinite = nonfinite

    def read(self, number: int) -> Frame:
        """Read frame ``number``.

        Raises:
            InputError: as :func:`~vfxmatte.io.image.read_image`, and a frame whose
                size differs from the first frame's (a shot has one size).
        """
        from vfxmatte.io.image import read_image

        self._check_number(number)
        frame = read_image(
            self.pattern.path(number), self.channels, number=number, nonfinite=self.nonfinite
        )
        info = self.info
        if (frame.width, frame.height) != (info.width, info.height):
            raise InputError(
                f"Frame {number} ('{frame.path}') is {frame.width}x{frame.height} but the "
                f"shot's first frame is {info.width}x{info.height}; every frame of a shot must "
                "have the same size: re-render it, or pass a --frames range that skips it."
            )
        return frame

    def __iter__(self) -> Iterator[Frame]:
        for number in self.frames:
            yield self.read(number)

    @functools.cached_property
    def info(self) -> PlateInfo:
        """Size, channels and rate of the first frame (its header, read once)."""
        from vfxmatte.io.image import probe_image

        first = probe_image(self.pattern.path(self.frames[0]), self.channels)
        fps = first.metadata.get("framesPerSecond")
        return PlateInfo(
            width=first.width,
            height=first.height,
            channels=first.channels,
            fps=f"{fps[0]}/{fps[1]}" if fps else None,
            timecode=None,
        )


class VideoPlate(Plate):
    """A video file decoded through PyAV (see :mod:`vfxmatte.io.video`).

    Frames are numbered from ``first_frame`` (default 0 is the first decoded
    frame); give ``first_frame=1001`` to match a sequence's numbering.
    """

    def __init__(
        self, path: str, frames: str | Sequence[int] | None = None, *, first_frame: int = 0
    ) -> None:
        from vfxmatte.io.video import probe_video

        self.source = path
        self.first_frame = first_frame
        self._video = probe_video(path)
        everything = list(range(first_frame, first_frame + self._video.frame_count))
        if frames is None:
            self.frames = everything
        else:
            wanted = parse_frame_range(frames) if isinstance(frames, str) else list(frames)
            missing = sorted(set(wanted) - set(everything))
            if missing:
                raise MissingFramesError(
                    f"{len(missing)} frame(s) asked for are past the ends of '{path}' "
                    f"(frames {compress_frames(everything)}): {compress_frames(missing)}.",
                    missing,
                )
            self.frames = wanted

    def __iter__(self) -> Iterator[Frame]:
        from vfxmatte.io.video import read_video

        ordered = sorted(self.frames) == self.frames
        if ordered:
            yield from read_video(self.source, self.frames, first_frame=self.first_frame)
        else:
            for number in self.frames:
                yield self.read(number)

    def read(self, number: int) -> Frame:
        from vfxmatte.io.video import read_video

        self._check_number(number)
        return next(iter(read_video(self.source, [number], first_frame=self.first_frame)))

    @property
    def info(self) -> PlateInfo:
        v = self._video
        return PlateInfo(
            width=v.width,
            height=v.height,
            channels=("R", "G", "B"),
            fps=f"{v.fps.numerator}/{v.fps.denominator}",
            timecode=v.timecode,
        )


def is_video(path: str | os.PathLike[str]) -> bool:
    return os.fspath(path).lower().endswith(VIDEO_EXTENSIONS)


def open_plate(
    path: str | os.PathLike[str],
    frames: str | Sequence[int] | None = None,
    *,
    channels: str | Sequence[str] | None = "RGB",
    nonfinite: str = "error",
    first_frame: int = 0,
    **_: Any,
) -> Plate:
    """Open a sequence pattern, a single image or a video file as a :class:`Plate`.

    Raises:
        InputError / MissingFramesError: as :func:`~vfxmatte.io.sequence.resolve_frames`
            and :func:`~vfxmatte.io.video.probe_video` explain.
    """
    path = os.fspath(path)
    if is_video(path):
        if os.path.isdir(path):
            raise InputError(f"The video file '{path}' is a folder; name the video file itself.")
        if not os.path.isfile(path):
            raise InputError(f"The video file '{path}' does not exist.")
        if os.path.getsize(path) == 0:
            raise InputError(
                f"The video file '{path}' is empty (0 bytes): an interrupted export or copy; "
                "export or copy it again."
            )
        return VideoPlate(path, frames, first_frame=first_frame)
    return SequencePlate(path, frames, channels=channels, nonfinite=nonfinite)
