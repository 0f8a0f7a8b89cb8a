"""Frame patterns, frame ranges and where the node puts its files.

Nuke writes sequences as ``shot.####.exr`` or ``shot.%04d.exr``; vfxmatte reads
both. Files of a node go beside its output::

    <output folder>/<name>.####.exr          the matte (multi-layer EXR)
    <output folder>/input/plate.####.exr     the plate, when Nuke had to render it
    <output folder>/input/mask.####.exr      the mask, when Nuke had to render it
    <output folder>/<name>.vfxmatte.json     the job's options (Farm button)

The default output folder is ``<script folder>/vfxmatte/<node name>/``.
"""

from __future__ import annotations

import os
import re
from typing import Sequence, Tuple

from vfxmatte_nuke.errors import PluginError

__all__ = [
    "FrameRange",
    "default_output",
    "frame_path",
    "frames_of",
    "has_frame_token",
    "input_dir",
    "missing_runs",
    "parse_frame_list",
    "parse_frame_range",
]

_HASHES = re.compile(r"#+")
_PRINTF = re.compile(r"%(0?)(\d*)d")
FrameRange = Tuple[int, int, int]


def frame_path(pattern: str, number: int) -> str:
    """``pattern`` with its frame token (``####`` or ``%04d``) replaced by ``number``."""
    match = _HASHES.search(pattern)
    if match:
        digits = len(match.group(0))
        return pattern[: match.start()] + f"{number:0{digits}d}" + pattern[match.end() :]
    match = _PRINTF.search(pattern)
    if match:
        width = int(match.group(2) or 0)
        text = f"{number:0{width}d}" if match.group(1) else f"{number:{width}d}".strip()
        return pattern[: match.start()] + text + pattern[match.end() :]
    return pattern


def has_frame_token(pattern: str) -> bool:
    return bool(_HASHES.search(pattern) or _PRINTF.search(pattern))


def parse_frame_range(text: str) -> FrameRange:
    """``"1001-1100"``, ``"1001-1100x2"`` or ``"1001"`` -> ``(first, last, step)``.

    Raises:
        PluginError: anything else.
    """
    match = re.fullmatch(r"\s*(-?\d+)\s*(?:-\s*(-?\d+)\s*(?:x\s*(\d+))?)?\s*", text or "")
    if not match:
        raise PluginError(
            f"The frame range {text!r} is not FIRST-LAST or FIRST-LASTxSTEP (e.g. 1001-1100)."
        )
    first = int(match.group(1))
    last = int(match.group(2)) if match.group(2) is not None else first
    step = int(match.group(3) or 1)
    if last < first or step < 1:
        raise PluginError(f"The frame range {text!r} is empty; the last frame comes first.")
    return first, last, step


def parse_frame_list(text: str) -> list[int]:
    """``"1050 1100, 1120"`` -> ``[1050, 1100, 1120]`` (sorted, unique).

    Raises:
        PluginError: a word that is not a whole number.
    """
    numbers = set()
    for word in re.split(r"[\s,;]+", (text or "").strip()):
        if not word:
            continue
        if not re.fullmatch(r"-?\d+", word):
            raise PluginError(
                f"'mask frames' takes frame numbers such as '1050 1100'; got {word!r}."
            )
        numbers.add(int(word))
    return sorted(numbers)


def missing_runs(pattern: str, frames: Sequence[int], redo: bool = False) -> list[tuple[int, int]]:
    """Runs ``(first, last)`` of consecutive frame numbers whose file does not exist.

    With ``redo`` every frame counts as missing.
    """
    runs: list[tuple[int, int]] = []
    for number in sorted(frames):
        if not redo and os.path.isfile(frame_path(pattern, number)):
            continue
        if runs and runs[-1][1] == number - 1:
            runs[-1] = (runs[-1][0], number)
        else:
            runs.append((number, number))
    return runs


def default_output(script: str, node_name: str) -> str:
    """``<script folder>/vfxmatte/<node>/<node>.####.exr``.

    Raises:
        PluginError: the script is not saved (there is no folder to put it in).
    """
    if not script:
        raise PluginError(
            "Save the script first, or set the node's 'output file' (e.g. "
            "/shows/x/shot/matte/shot.####.exr): the matte is written beside the script."
        )
    folder = os.path.join(os.path.dirname(os.path.abspath(script)), "vfxmatte", node_name)
    return os.path.join(folder, f"{node_name}.####.exr")


def input_dir(output: str) -> str:
    """Where Nuke renders the inputs the worker cannot read: ``<output folder>/input``."""
    return os.path.join(os.path.dirname(os.path.abspath(output)), "input")


def frames_of(frame_range: FrameRange) -> list[int]:
    first, last, step = frame_range
    return list(range(first, last + 1, step))
