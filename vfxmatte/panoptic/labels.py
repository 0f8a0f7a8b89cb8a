"""Hard panoptic label maps: reading them and splitting them into segments.

A label map gives every pixel the integer id of its segment (thing instance or
stuff region). Panoptic matting (Mask-guided Matting in the Wild, §4.1) mattes
each segment and then aggregates the soft alphas
(:mod:`vfxmatte.panoptic.aggregate`); this module provides the segments.

Files read:

* 8/16-bit single-channel PNG: the pixel value is the id.
* 3-channel PNG: COCO panoptic, ``id = R + 256 G + 256^2 B``; names come from
  the annotation JSON via :func:`read_coco_segments_info`.
* EXR: one channel of integer-valued floats (exact up to 2048 in half, 2^24 in
  float).
"""

from __future__ import annotations

import heapq
import json
import logging
import os
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vfxmatte.errors import ConfigError, InputError, closest_hint
from vfxmatte.io.image import read_image

__all__ = [
    "Segment",
    "read_coco_segments_info",
    "read_coco_thing_ids",
    "read_label_map",
    "segments_from_label_map",
]

log = logging.getLogger(__name__)


@dataclass
class Segment:
    """One segment of a label map.

    Attributes:
        id: the id in the label map (0 is a normal id, e.g. background/stuff).
        name: from ``info`` (e.g. ``person_2``), else ``segment{id}``.
        area: number of pixels of the segment (after tiny merges).
        isthing: True for a countable object, False for stuff, None if unknown.
        label_map: ``H x W`` integer ids (after merges) shared by all the segments of
            one map; the segment is where it equals ``id``.
    """

    id: int
    name: str
    area: int
    isthing: bool | None = None
    label_map: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def mask(self) -> np.ndarray:
        """``H x W`` bool, the pixels of the segment (computed on each access)."""
        if self.label_map is None:
            raise InputError(f"Segment '{self.name}' has no label map to take its mask from.")
        return self.label_map == self.id


def read_label_map(path: str | os.PathLike[str]) -> np.ndarray:
    """Read a label map file (PNG or EXR, see the module docstring).

    Returns:
        ``H x W`` int64 ids.

    Raises:
        InputError: missing/unreadable file, an unsupported channel count, or an
            EXR with non-integer values (naming the file and one such pixel).
    """
    path = os.fspath(path)
    if Path(path).suffix.lower() == ".exr":
        return _read_exr_labels(path)
    if not Path(path).is_file():
        raise InputError(f"Label map '{path}' does not exist; check the path.")
    pixels = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if pixels is None:
        raise InputError(f"Cannot read label map '{path}'; expected an 8/16-bit PNG or an EXR.")
    if pixels.ndim == 2:
        return pixels.astype(np.int64)
    if pixels.ndim == 3 and pixels.shape[2] == 3:
        # OpenCV gives BGR; COCO panoptic packs id = R + 256 G + 256^2 B.
        bgr = pixels.astype(np.int64)
        return bgr[:, :, 2] + 256 * bgr[:, :, 1] + 256**2 * bgr[:, :, 0]
    raise InputError(
        f"Label map '{path}' has shape {pixels.shape}; expected 1 channel (ids) "
        "or 3 channels (COCO panoptic RGB)."
    )


def _read_exr_labels(path: str) -> np.ndarray:
    """One-channel EXR of integer-valued floats -> ``H x W`` int64."""
    frame = read_image(path)
    if frame.pixels.shape[2] != 1:
        raise InputError(
            f"Label map '{path}' has channels {list(frame.channels)}; expected exactly one."
        )
    values = frame.pixels[:, :, 0]
    bad = np.argwhere(values != np.round(values))
    if bad.size:
        y, x = (int(v) for v in bad[0])
        raise InputError(
            f"Label map '{path}' holds non-integer ids ({len(bad)} pixels), e.g. "
            f"{float(values[y, x])!r} at x={x}, y={y}; write ids as whole numbers."
        )
    return values.astype(np.int64)


def _coco_annotation(data: dict[str, Any], json_path: str, png_name: str | None) -> dict:
    """The annotation of ``png_name`` in a COCO panoptic JSON (or the only one)."""
    if "segments_info" in data:
        return data
    annotations = data.get("annotations", [])
    if png_name is None:
        if len(annotations) != 1:
            raise InputError(
                f"'{json_path}' has {len(annotations)} annotations; pass png_name to pick one."
            )
        return annotations[0]
    wanted = Path(png_name).name
    for ann in annotations:
        if Path(str(ann.get("file_name", ""))).name == wanted:
            return ann
    names = [str(a.get("file_name")) for a in annotations[:10]]
    raise InputError(f"'{json_path}' has no annotation for '{wanted}'; it has {names} ...")


def _coco_segments(json_path: str, png_name: str | None) -> dict[int, tuple[str, bool | None]]:
    """``{id: (name, isthing)}`` of one COCO panoptic annotation, plus ``0: void``."""
    try:
        data = json.loads(Path(json_path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"Cannot read COCO panoptic JSON '{json_path}': {exc}.") from exc
    categories = {int(c["id"]): c for c in data.get("categories", [])}
    counts: dict[str, int] = {}
    out: dict[int, tuple[str, bool | None]] = {}
    for seg in _coco_annotation(data, json_path, png_name)["segments_info"]:
        cat = categories.get(int(seg["category_id"]), {})
        category = str(cat.get("name", f"category{seg['category_id']}")).replace(" ", "_")
        counts[category] = counts.get(category, 0) + 1
        isthing = bool(cat["isthing"]) if "isthing" in cat else None
        out[int(seg["id"])] = (f"{category}_{counts[category]}", isthing)
    # COCO leaves unlabelled pixels at id 0 and does not list them.
    out.setdefault(0, ("void", False))
    return out


def read_coco_segments_info(
    json_path: str | os.PathLike[str], png_name: str | None = None
) -> dict[int, str]:
    """Segment names from a COCO panoptic annotation JSON.

    Each name is ``{category}_{n}``, ``n`` counting from 1 per category in the
    order of ``segments_info``, so names are unique. Id 0 (COCO's unlabelled
    "void") is added as ``void`` unless a segment uses it.

    Args:
        json_path: a COCO panoptic JSON (``annotations`` + ``categories``), or
            one annotation with ``segments_info`` at the top level.
        png_name: the label PNG whose annotation to use (matched on the file
            name); may be None when the JSON has one annotation.

    Returns:
        ``{id: name}``.

    Raises:
        InputError: unreadable JSON, or no/ambiguous annotation for ``png_name``.
    """
    segs = _coco_segments(os.fspath(json_path), png_name)
    return {k: name for k, (name, _) in segs.items()}


def read_coco_thing_ids(json_path: str | os.PathLike[str], png_name: str | None = None) -> set[int]:
    """Ids of the "thing" segments (``isthing`` categories) of a COCO annotation.

    Pass the result as ``things`` to :func:`segments_from_label_map`. Arguments
    and errors as :func:`read_coco_segments_info`.
    """
    segs = _coco_segments(os.fspath(json_path), png_name)
    return {k for k, (_, isthing) in segs.items() if isthing}


def _contacts(labels: np.ndarray) -> dict[int, dict[int, int]]:
    """``{a: {b: n}}``: how many 4-neighbour pixel pairs join ids ``a`` and ``b``."""
    pairs = [
        (labels[:, :-1].ravel(), labels[:, 1:].ravel()),
        (labels[:-1, :].ravel(), labels[1:, :].ravel()),
    ]
    out: dict[int, dict[int, int]] = {}
    for left, right in pairs:
        differ = left != right
        stacked = np.stack([left[differ], right[differ]], axis=1)
        if not stacked.size:
            continue
        uniq, counts = np.unique(stacked, axis=0, return_counts=True)
        for (a, b), n in zip(uniq.tolist(), counts.tolist(), strict=True):
            out.setdefault(a, {})[b] = out.get(a, {}).get(b, 0) + n
            out.setdefault(b, {})[a] = out.get(b, {}).get(a, 0) + n
    return out


def _merge_small(labels: np.ndarray, min_area: int, max_count: int | None) -> np.ndarray:
    """Merge segments into the neighbour they touch most, smallest first.

    A segment is merged while it is under ``min_area`` px, or while more than
    ``max_count`` segments are left (None: no limit). "Touch" counts 4-neighbour
    pixel pairs; ties go to the larger neighbour, then the lower id. A merged
    segment's contacts are added to its target's, so later merges see the grown
    segment. A segment that touches nothing (the only id in the map) is kept.
    """
    ids, counts = np.unique(labels, return_counts=True)
    area = dict(zip(ids.tolist(), counts.tolist(), strict=True))
    contacts = _contacts(labels)
    heap = [(n, i) for i, n in area.items()]
    heapq.heapify(heap)
    remap: dict[int, int] = {}
    while heap:
        n, src = heapq.heappop(heap)
        if area.get(src) != n:
            continue  # a stale entry: src has grown or been merged since
        over = max_count is not None and len(area) > max_count
        if n >= min_area and not over:
            break
        near = contacts.pop(src, None)
        if not near:
            continue  # isolated: nothing to merge into
        dst = max(near, key=lambda j: (near[j], area[j], -j))
        for j, k in near.items():
            contacts[j].pop(src, None)
            if j != dst:
                contacts[dst][j] = contacts[dst].get(j, 0) + k
                contacts[j][dst] = contacts[j].get(dst, 0) + k
        area[dst] += area.pop(src)
        heapq.heappush(heap, (area[dst], dst))
        remap[src] = dst
    if not remap:
        return labels
    final = {s: _follow(remap, s) for s in remap}
    listed = ", ".join(f"{s}->{d}" for s, d in sorted(final.items())[:_LISTED])
    more = f" (and {len(final) - _LISTED} more)" if len(final) > _LISTED else ""
    log.warning(
        "Merged %d segment(s) into their neighbours (smaller than min_area=%d px%s): %s%s.",
        len(final), min_area,
        f", or beyond max_segments={max_count}" if max_count is not None else "",
        listed, more,
    )  # fmt: skip
    src_ids = np.array(list(final), dtype=labels.dtype)
    dst_ids = np.array(list(final.values()), dtype=labels.dtype)
    out = labels.copy()
    where = np.isin(labels, src_ids)
    out[where] = dst_ids[_lookup(src_ids, labels[where])]
    return out


#: How many merges a warning lists by name.
_LISTED = 20


def _lookup(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index of each of ``values`` in ``keys`` (every value is one of the keys)."""
    order = np.argsort(keys)
    return order[np.searchsorted(keys, values, sorter=order)]


def _follow(remap: dict[int, int], src: int) -> int:
    """Where ``src`` ends up after a chain of merges."""
    while src in remap:
        src = remap[src]
    return src


def segments_from_label_map(
    labels: np.ndarray,
    *,
    info: Mapping[int, str] | None = None,
    things: Collection[int] | None = None,
    min_area: int = 16,
    max_segments: int = 256,
    over_limit: str = "error",
) -> list[Segment]:
    """Split a label map into segments, one per id, sorted by id.

    Segments under ``min_area`` pixels (speckle from resampling or compression)
    are merged, smallest first, into the neighbouring segment they share the
    most 4-connected boundary with (ties: the larger, then the lower id), and a
    warning is logged listing the merges. Id 0 is a normal id when present.

    Args:
        labels: ``H x W`` integer ids (e.g. from :func:`read_label_map`).
        info: ``{id: name}`` (e.g. from :func:`read_coco_segments_info`); every
            id in ``labels`` must be in it. None names segments ``segment{id}``.
        things: ids that are countable objects; with it ``isthing`` is set on
            every segment, without it ``isthing`` is None.
        min_area: smallest segment kept as its own, in pixels (0 keeps all).
        max_segments: the most segments allowed after merging.
        over_limit: with more than ``max_segments`` left, ``"error"`` raises and
            ``"merge"`` goes on merging the smallest (with a warning) until
            ``max_segments`` are left.

    Returns:
        The segments; their masks partition the image.

    Raises:
        InputError: ``labels`` not ``H x W`` integer, or ids missing from ``info``.
        ConfigError: more than ``max_segments`` segments with ``over_limit="error"``,
            or a bad option.
    """
    labels = np.asarray(labels)
    if labels.ndim != 2 or not np.issubdtype(labels.dtype, np.integer):
        raise InputError(
            f"labels must be an H x W integer array, got shape {labels.shape} dtype {labels.dtype}."
        )
    if min_area < 0 or max_segments < 1:
        raise ConfigError(
            f"min_area must be >= 0 and max_segments >= 1, got {min_area} and {max_segments}."
        )
    if over_limit not in ("error", "merge"):
        raise ConfigError(
            f"over_limit must be 'error' or 'merge', got {over_limit!r}."
            + closest_hint(str(over_limit), ("error", "merge"))
        )
    if info is not None:
        missing = sorted(set(np.unique(labels).tolist()) - set(info))
        if missing:
            shown = ", ".join(str(i) for i in missing[:20])
            more = f" (and {len(missing) - 20} more)" if len(missing) > 20 else ""
            raise InputError(
                f"Label ids {shown}{more} are in the label map but not in the segment "
                f"info ({len(info)} ids); check that the JSON belongs to this label map."
            )
    limit = max_segments if over_limit == "merge" else None
    merged = _merge_small(labels, min_area, limit) if min_area > 0 or limit else labels
    ids, counts = np.unique(merged, return_counts=True)
    if len(ids) > max_segments:
        raise ConfigError(
            f"The label map has {len(ids)} segments after merging those under "
            f"min_area={min_area} px, more than max_segments={max_segments}; raise "
            "max_segments or min_area, or pass over_limit='merge' (--panoptic.over-limit "
            "merge) to merge the smallest into their neighbours."
        )
    thing_set = None if things is None else {int(t) for t in things}
    return [
        Segment(
            id=i,
            name=info[i] if info is not None else f"segment{i}",
            area=n,
            isthing=None if thing_set is None else i in thing_set,
            label_map=merged,
        )
        for i, n in zip(ids.tolist(), counts.tolist(), strict=True)
    ]
