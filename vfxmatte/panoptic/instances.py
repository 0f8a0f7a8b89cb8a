"""A folder of instance masks as the input of panoptic matting.

One image per instance, the file name giving the segment's name; the masks may
overlap (hand roto, one matte per object from a segmentation model). Layout::

    masks/                        still: one file per instance
        01_car.png                -> segment "01_car"
        02_person.exr
    masks/                        shot: one sequence per instance
        car.1001.png ... car.1100.png          -> segment "car"
        person.1001.png ... person.1100.png
        sign.png                               (no frame number: the same on every frame)
        order.txt                              (optional)

* **Names**: the file name without extension (and without the frame number for a
  sequence: ``<name>.<frame>.<ext>``, so a still's name must not end in
  ``.<digits>``). Files in any format OpenImageIO reads (PNG, EXR, TIFF, DPX, JPEG).
* **Values**: the ``A`` channel when the file has one that is not constant (roto
  written as RGBA), else the first channel; a pixel belongs to the mask above 0.5.
* **Occlusion order**: back to front, the names listed in ``order.txt`` (one per
  line, ``#`` starts a comment; every instance must be listed), else the names
  sorted (so ``01_``, ``02_`` prefixes set it). Where masks overlap, the one in
  front claims the pixel in the hard label map; the same order composes the soft
  layers (§4.1 of Mask-guided Matting in the Wild).
* **Background**: pixels no mask claims form the segment ``background``, at the
  back (id 0). A mask named ``background`` is that segment: its pixels and the
  unclaimed ones.
* **Shots**: a sequence must have every frame of the plate (write an empty,
  black frame where the instance is out of view); an instance without a frame
  number holds for every frame. Every instance has a layer on every frame (all
  zero where it is absent), so all frames have the same channels.

Instance ``i`` (0-based, back to front) gets id ``i + 1``.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vfxmatte.errors import ConfigError, InputError, MissingFramesError, closest_hint
from vfxmatte.io.image import read_image
from vfxmatte.io.sequence import compress_frames
from vfxmatte.panoptic.labels import Segment

__all__ = [
    "BACKGROUND",
    "InstanceFolder",
    "limit_instances",
    "read_instance_mask",
    "scan_instances",
]

log = logging.getLogger(__name__)

#: Name of the segment that takes the pixels no instance mask claims.
BACKGROUND = "background"
#: File extensions taken as masks (lower case).
MASK_EXTENSIONS = (".png", ".exr", ".tif", ".tiff", ".dpx", ".jpg", ".jpeg")
_ORDER_FILE = "order.txt"
_FRAME = re.compile(r"^(?P<name>.+)\.(?P<frame>-?\d+)$")


@dataclass
class InstanceFolder:
    """The instances of a mask folder.

    Attributes:
        folder: the folder.
        names: instance names, back to front (``background`` first if a file has it).
        stills: name -> path, for instances without a frame number.
        sequences: name -> {frame number: path}.
    """

    folder: str
    names: list[str]
    stills: dict[str, str]
    sequences: dict[str, dict[int, str]]

    @property
    def has_background(self) -> bool:
        """Whether one of the masks is named ``background``."""
        return BACKGROUND in self.names

    def segment_names(self) -> list[str]:
        """Names of the segments, by id: ``background`` then the other instances."""
        return [BACKGROUND] + [n for n in self.names if n != BACKGROUND]

    def check_frames(self, frames: list[int]) -> None:
        """Raise :class:`MissingFramesError` if a sequence lacks one of ``frames``."""
        for name, paths in self.sequences.items():
            missing = [f for f in frames if f not in paths]
            if missing:
                raise MissingFramesError(
                    f"The instance '{name}' in '{self.folder}' has no mask for frame(s) "
                    f"{compress_frames(missing)}; write an empty (black) mask where it is out "
                    "of view.",
                    missing,
                )

    def path(self, name: str, number: int) -> str:
        """The mask file of instance ``name`` on frame ``number``."""
        if name in self.stills:
            return self.stills[name]
        return self.sequences[name][number]

    def label_map(
        self, number: int, shape: tuple[int, int], *, keep: set[str] | None = None
    ) -> np.ndarray:
        """The hard label map of frame ``number``: ``H x W`` int64 ids (see the module doc).

        Args:
            shape: the plate's ``(H, W)``; masks of another size are an error.
            keep: names of the instances to use (None: all); the others are skipped
                and their pixels go to what is behind them.
        """
        label_map = np.zeros(shape, np.int64)
        # Back to front, each mask over the ones behind it. A mask named "background" adds
        # nothing: its segment is whatever no other mask claims.
        for i, name in enumerate(self.segment_names()[1:], start=1):
            if keep is None or name in keep:
                label_map[read_instance_mask(self.path(name, number), shape, name)] = i
        return label_map

    def segments(self, label_map: np.ndarray, *, keep: set[str] | None = None) -> list[Segment]:
        """One segment per instance (empty ones included), with ids as in ``label_map``."""
        names = self.segment_names()
        counts = np.bincount(label_map.ravel(), minlength=len(names))
        return [
            Segment(id=i, name=name, area=int(counts[i]), label_map=label_map)
            for i, name in enumerate(names)
            if keep is None or name in keep
        ]


def scan_instances(folder: str | os.PathLike[str]) -> InstanceFolder:
    """Find the instance masks of ``folder`` and their order (see the module docstring).

    Raises:
        InputError: no such folder, no mask in it, an instance given both as a
            still and as a sequence, or a bad ``order.txt``.
    """
    folder = os.fspath(folder)
    if not os.path.isdir(folder):
        raise InputError(f"The instance folder '{folder}' does not exist or is not a folder.")
    stills: dict[str, str] = {}
    sequences: dict[str, dict[int, str]] = {}
    for entry in sorted(os.listdir(folder)):
        path = os.path.join(folder, entry)
        stem, ext = os.path.splitext(entry)
        if ext.lower() not in MASK_EXTENSIONS or not os.path.isfile(path):
            continue
        match = _FRAME.match(stem)
        if match:
            sequences.setdefault(match["name"], {})[int(match["frame"])] = path
        else:
            stills[stem] = path
    both = sorted(set(stills) & set(sequences))
    if both:
        raise InputError(
            f"The instance(s) {', '.join(both)} in '{folder}' are both a still mask and a "
            "sequence; keep one of them."
        )
    found = sorted(set(stills) | set(sequences))
    if not found:
        raise InputError(
            f"The instance folder '{folder}' holds no mask image; expected one file per "
            f"instance named <name>.png (or {', '.join(MASK_EXTENSIONS[1:])}), or a sequence "
            "<name>.####.png per instance for a shot."
        )
    names = _order(folder, found)
    if BACKGROUND in names:  # the background is always at the back
        names = [BACKGROUND] + [n for n in names if n != BACKGROUND]
    return InstanceFolder(folder, names, stills, sequences)


def _order(folder: str, found: list[str]) -> list[str]:
    """Back-to-front names: from ``order.txt`` if there is one, else sorted."""
    order_path = Path(folder) / _ORDER_FILE
    if not order_path.is_file():
        return found
    listed: list[str] = []
    for raw in order_path.read_text(encoding="utf-8").splitlines():
        name = raw.split("#", 1)[0].strip()
        if name:
            listed.append(name)
    unknown = [n for n in listed if n not in found]
    if unknown:
        raise InputError(
            f"'{order_path}' lists {', '.join(unknown)}, which has no mask in the folder."
            + closest_hint(unknown[0], found)
        )
    repeated = sorted({n for n in listed if listed.count(n) > 1})
    missing = [n for n in found if n not in listed]
    if repeated or missing:
        raise InputError(
            f"'{order_path}' must list every instance once, back to front; "
            + (f"repeated: {', '.join(repeated)}. " if repeated else "")
            + (f"missing: {', '.join(missing)}." if missing else "")
        )
    return listed


def read_instance_mask(path: str, shape: tuple[int, int], name: str) -> np.ndarray:
    """``H x W`` bool: the pixels of one instance mask above 0.5.

    Raises:
        InputError: unreadable file, another size than the plate, NaN/inf values.
    """
    frame = read_image(path, nonfinite="keep")
    channels = frame.channels
    index = 0
    if "A" in channels and len(channels) > 1:
        alpha = frame.pixels[..., channels.index("A")]
        if float(alpha.max()) != float(alpha.min()):
            index = channels.index("A")
    values = frame.pixels[..., index]
    if values.shape != tuple(shape):
        raise InputError(
            f"The mask of instance '{name}' ('{path}') is {values.shape[1]}x{values.shape[0]} "
            f"but the plate is {shape[1]}x{shape[0]}; instance masks must have the plate's size."
        )
    bad = ~np.isfinite(values)
    if bad.any():
        y, x = np.argwhere(bad)[0]
        raise InputError(
            f"The mask of instance '{name}' ('{path}') has {int(bad.sum())} NaN/infinite "
            f"value(s) (first at x={x}, y={y}); masks must hold values in [0, 1]."
        )
    return values > 0.5


def limit_instances(
    folder: InstanceFolder, label_map: np.ndarray, max_segments: int, over_limit: str
) -> set[str] | None:
    """Names to keep when the folder has more instances than ``max_segments``.

    Returns None when all fit. With ``over_limit="merge"`` the largest instances (in
    ``label_map``, e.g. of the first frame) are kept and a warning names how many
    were skipped: their pixels go to what lies behind them.

    Raises:
        ConfigError: too many instances with ``over_limit="error"``.
    """
    names = folder.segment_names()
    if len(names) <= max_segments:
        return None
    if over_limit != "merge":
        raise ConfigError(
            f"The instance folder '{folder.folder}' has {len(names)} segments (with the "
            f"background), more than max_segments={max_segments}; raise max_segments, or pass "
            "--panoptic.over-limit merge to keep the largest ones."
        )
    counts = np.bincount(label_map.ravel(), minlength=len(names))
    ranked = sorted(range(1, len(names)), key=lambda i: (-counts[i], i))
    keep = {BACKGROUND} | {names[i] for i in ranked[: max_segments - 1]}
    log.warning(
        "The instance folder '%s' has %d segments, more than max_segments=%d: skipped the %d "
        "smallest instances (their pixels go to what is behind them).",
        folder.folder, len(names), max_segments, len(names) - len(keep),
    )  # fmt: skip
    return keep
