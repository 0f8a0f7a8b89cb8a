"""Frame-sequence patterns and frame ranges, the way VFX tools spell them.

Pattern forms (all name the same files ``shot.1001.exr``, ``shot.1002.exr`` ...):

* ``shot.####.exr`` (Nuke, one ``#`` per digit), ``shot.@@@@.exr`` (Shake/RV),
* ``shot.%04d.exr`` (printf), ``shot.$F4.exr`` (Houdini; ``$F`` is unpadded),
* a bare path to one existing frame, ``shot.1001.exr`` (a one-frame sequence).

Frame-range forms: ``1001-1100``, ``1001-1100x2`` (every 2nd frame),
``1001,1005,1010-1012`` and combinations, a single ``1001``.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from vfxmatte.errors import ConfigError, InputError, MissingFramesError

__all__ = [
    "FramePattern",
    "compress_frames",
    "parse_frame_range",
    "resolve_frames",
]

# One token per pattern syntax; group "hashes" etc. gives the padding.
_TOKEN = re.compile(
    r"(?P<hashes>#+)|(?P<ats>@+)|%(?P<printf>0?\d*)d|\$F(?P<houdini>\d*)(?![A-Za-z_])"
)
_TRAILING_NUMBER = re.compile(r"^(?P<head>.*?)(?P<num>-?\d+)(?P<tail>\.[^./\\]+)$")


@dataclass(frozen=True)
class FramePattern:
    """A sequence pattern split into ``head + frame number + tail``.

    ``padding`` is the minimum digit count (0 for unpadded). ``single`` is set
    for a bare path to one frame, whose only frame is ``single_frame``.
    """

    head: str
    tail: str
    padding: int
    source: str
    single_frame: int | None = None

    @classmethod
    def parse(cls, pattern: str | os.PathLike[str]) -> FramePattern:
        """Parse any of the pattern forms of this module.

        A path without a frame token is taken as one frame: its trailing number
        (``shot.1001.exr`` -> 1001) becomes the frame number, or 0 if it has none.
        """
        text = os.fspath(pattern)
        name_start = len(os.path.dirname(text))
        tokens = [m for m in _TOKEN.finditer(text) if m.start() >= name_start]
        if len(tokens) > 1:
            raise ConfigError(
                f"The pattern '{text}' has {len(tokens)} frame tokens; use exactly one "
                "(e.g. shot.####.exr)."
            )
        if tokens:
            m = tokens[0]
            if m.group("hashes"):
                pad = len(m.group("hashes"))
            elif m.group("ats"):
                pad = len(m.group("ats"))
            elif m.group("printf") is not None:
                digits = m.group("printf").lstrip("0")
                pad = int(digits) if digits else 0
            else:
                pad = int(m.group("houdini") or 0)
            return cls(text[: m.start()], text[m.end() :], pad, text)
        base = os.path.basename(text)
        m = _TRAILING_NUMBER.match(base)
        if m:
            head = text[: len(text) - len(base)] + m.group("head")
            return cls(head, m.group("tail"), len(m.group("num")), text, int(m.group("num")))
        return cls(text, "", 0, text, 0)

    @property
    def is_single(self) -> bool:
        return self.single_frame is not None

    def path(self, frame: int) -> str:
        """The file name of ``frame``."""
        if self.is_single:
            return self.source
        sign = "-" if frame < 0 else ""
        return f"{self.head}{sign}{abs(frame):0{self.padding}d}{self.tail}"

    def as_printf(self) -> str:
        """The pattern in ``%04d`` form (what ffmpeg and many tools take)."""
        token = f"%0{self.padding}d" if self.padding else "%d"
        return f"{self.head}{token}{self.tail}"

    def as_hashes(self) -> str:
        """The pattern in ``####`` form (Nuke's)."""
        return f"{self.head}{'#' * max(self.padding, 1)}{self.tail}"

    def frames_on_disk(self) -> list[int]:
        """The frame numbers whose files exist, sorted."""
        if self.is_single:
            return [self.single_frame] if os.path.isfile(self.source) else []  # type: ignore[list-item]
        folder = os.path.dirname(self.head) or "."
        prefix = os.path.basename(self.head)
        regex = re.compile(re.escape(prefix) + r"(-?\d+)" + re.escape(self.tail) + "$")
        try:
            names = os.listdir(folder)
        except FileNotFoundError:
            return []
        frames = []
        for name in names:
            m = regex.match(name)
            if not m:
                continue
            digits = m.group(1).lstrip("-")
            # A padded pattern names 0042 but not 42; numbers longer than the padding are fine.
            if len(digits) < self.padding or (len(digits) > self.padding and digits[0] == "0"):
                continue
            frames.append(int(m.group(1)))
        return sorted(frames)


def parse_frame_range(text: str | int | Sequence[int]) -> list[int]:
    """Parse ``1001-1100``, ``1001-1100x2``, ``1001,1005,1010-1012`` into frame numbers.

    The result keeps the order given and drops repeats.

    Raises:
        ConfigError: for text that is not a frame range, naming the bad part.
    """
    if isinstance(text, int):
        return [text]
    if not isinstance(text, str):
        return list(dict.fromkeys(int(f) for f in text))
    frames: list[int] = []
    part_re = re.compile(r"^\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:[x:]\s*(\d+))?)?\s*$")
    for part in text.split(","):
        m = part_re.match(part)
        if not m:
            raise ConfigError(
                f"Cannot read the frame range '{text}' (at '{part.strip()}'); "
                "use forms like 1001-1100, 1001-1100x2 or 1001,1005,1010-1012."
            )
        first = int(m.group(1))
        last = int(m.group(2)) if m.group(2) is not None else first
        step = int(m.group(3)) if m.group(3) is not None else 1
        if last < first or step < 1:
            raise ConfigError(
                f"The frame range part '{part.strip()}' is empty: the last frame must not "
                "precede the first and the step must be at least 1."
            )
        frames.extend(range(first, last + 1, step))
    return list(dict.fromkeys(frames))


def compress_frames(frames: Iterable[int]) -> str:
    """Write frame numbers compactly: ``[1,2,3,7,9,10]`` -> ``"1-3, 7, 9-10"``."""
    ordered = sorted(set(frames))
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        parts.append(str(ordered[i]) if i == j else f"{ordered[i]}-{ordered[j]}")
        i = j + 1
    return ", ".join(parts)


def resolve_frames(
    pattern: FramePattern, frames: str | Sequence[int] | None = None
) -> list[int]:
    """The frames to read: those asked for, all checked on disk, or all found on disk.

    Raises:
        InputError: when the pattern matches no file.
        MissingFramesError: listing (compactly) every requested frame that is missing,
            or the holes inside the range found on disk.
    """
    on_disk = pattern.frames_on_disk()
    if not on_disk:
        raise InputError(_no_match_message(pattern.source))
    if frames is None:
        wanted = list(range(on_disk[0], on_disk[-1] + 1))
    else:
        wanted = parse_frame_range(frames) if isinstance(frames, str) else list(frames)
    present = set(on_disk)
    missing = [f for f in wanted if f not in present]
    if missing and len(missing) == len(wanted):
        raise MissingFramesError(
            f"None of the frames asked for ({compress_frames(wanted)}) is on disk for "
            f"'{pattern.source}', which has frames {compress_frames(on_disk)}; pass a "
            "--frames range within those.",
            missing,
        )
    if missing:
        raise MissingFramesError(
            f"{len(missing)} frame(s) of '{pattern.source}' are missing: "
            f"{compress_frames(missing)} (on disk: {compress_frames(on_disk)}); render or copy "
            "them, or pass a --frames range that skips them.",
            missing,
        )
    return wanted


def sequences_in(folder: str, limit: int = 3, like: str = "") -> list[str]:
    """Up to ``limit`` sequences found in ``folder``, as ``"name.####.ext (1001-1100)"``,
    those whose name is closest to ``like`` first (then by name)."""
    try:
        names = sorted(os.listdir(folder or "."))
    except OSError:
        return []
    found: dict[str, list[int]] = {}
    for name in names:
        m = _TRAILING_NUMBER.match(name)
        if m and os.path.isfile(os.path.join(folder or ".", name)):
            key = m.group("head") + "#" * len(m.group("num").lstrip("-")) + m.group("tail")
            found.setdefault(key, []).append(int(m.group("num")))
    ranked = sorted(found, key=lambda k: -difflib.SequenceMatcher(None, like, k).ratio())
    return [
        f"{os.path.join(folder, key) if folder else key} ({compress_frames(found[key])})"
        for key in ranked[:limit]
    ]


def _no_match_message(source: str) -> str:
    """Why nothing matches ``source``, with the sequences a user may have meant."""
    if os.path.isdir(source):
        seen = sequences_in(source)
        return (
            f"'{source}' is a folder; give a pattern of the frames inside it"
            + (f", e.g. {'; '.join(seen)}." if seen else " (it holds no numbered frames).")
        )
    folder = os.path.dirname(source)
    if not Path(folder or ".").is_dir():
        return (
            f"No file matches '{source}' (the folder '{folder}' does not exist); check the "
            "path and the frame token (####, %04d, @@@@ or $F4)."
        )
    seen = sequences_in(folder, like=FramePattern.parse(source).as_hashes())
    return (
        f"No file matches '{source}'; check the path and the frame token (####, %04d, @@@@ "
        "or $F4)" + (f"; the folder holds {'; '.join(seen)}." if seen else ".")
    )
