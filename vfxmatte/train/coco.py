"""COCO-format instance annotations as a weak-mask dataset (for self-training).

Reads the ``images`` and ``annotations`` of a COCO instances JSON; every
non-crowd annotation with a polygon or RLE segmentation (uncompressed ``counts``
list or the compressed string of ``pycocotools``) and at least ``min_area``
pixels becomes one sample: the image, the binary instance mask and its box.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from vfxmatte.errors import InputError

__all__ = ["CocoWeakMasks", "WeakMask", "decode_rle", "polygons_to_mask", "rle_from_string"]


def rle_from_string(counts: str) -> list[int]:
    """Run lengths of a compressed COCO RLE string (``pycocotools`` ``rleFrString``)."""
    runs: list[int] = []
    p = 0
    data = counts.encode("ascii")
    while p < len(data):
        x, k, more = 0, 0, True
        while more:
            c = data[p] - 48
            x |= (c & 0x1F) << (5 * k)
            more = bool(c & 0x20)
            p += 1
            k += 1
            if not more and (c & 0x10):
                x |= -1 << (5 * k)
        if len(runs) > 2:
            x += runs[-2]
        runs.append(x)
    return runs


def decode_rle(counts: list[int] | str, height: int, width: int) -> np.ndarray:
    """``height x width`` bool mask of COCO run lengths (column-major, starting with zeros)."""
    runs = rle_from_string(counts) if isinstance(counts, str) else [int(c) for c in counts]
    if sum(runs) != height * width:
        raise InputError(
            f"RLE covers {sum(runs)} pixels but the image has {height}x{width}={height * width}."
        )
    flat = np.zeros(height * width, dtype=bool)
    pos, value = 0, False
    for run in runs:
        if value:
            flat[pos : pos + run] = True
        pos += run
        value = not value
    return flat.reshape(width, height).T


def polygons_to_mask(polygons: list[list[float]], height: int, width: int) -> np.ndarray:
    """``height x width`` bool mask of COCO polygons (``[x0, y0, x1, y1, ...]`` each)."""
    canvas = np.zeros((height, width), np.uint8)
    shapes = [
        np.round(np.asarray(p, np.float64).reshape(-1, 2) * 16).astype(np.int32) for p in polygons
    ]
    cv2.fillPoly(canvas, [s for s in shapes if len(s) >= 3], 1, cv2.LINE_8, 4)
    return canvas.astype(bool)


@dataclass
class WeakMask:
    """One weak sample: display-referred image ``H x W x 3``, bool mask, box ``(x, y, w, h)``."""

    image: np.ndarray
    mask: np.ndarray
    box: tuple[float, float, float, float]


class CocoWeakMasks:
    """Instances of a COCO annotation file, indexable (``len`` and ``[i]``)."""

    def __init__(
        self, annotations: str | os.PathLike[str], images: str | os.PathLike[str], min_area: int = 0
    ) -> None:
        path = Path(annotations)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"Cannot read COCO annotations {path}: {exc.strerror}.") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{path} is not valid JSON: {exc}.") from None
        if not isinstance(data, dict) or "annotations" not in data or "images" not in data:
            raise InputError(f"{path} is not a COCO instances file (no 'images'/'annotations').")
        self.root = Path(images)
        self.images = {int(im["id"]): im for im in data["images"]}
        self.items: list[dict[str, Any]] = [
            a
            for a in data["annotations"]
            if not a.get("iscrowd", 0)
            and a.get("segmentation")
            and float(a.get("area", min_area)) >= min_area
            and int(a["image_id"]) in self.images
        ]
        if not self.items:
            raise InputError(f"{path} holds no usable instance (non-crowd, with segmentation).")

    def __len__(self) -> int:
        return len(self.items)

    def mask(self, index: int) -> np.ndarray:
        """The bool instance mask of annotation ``index``."""
        ann = self.items[index % len(self.items)]
        im = self.images[int(ann["image_id"])]
        h, w = int(im["height"]), int(im["width"])
        seg = ann["segmentation"]
        if isinstance(seg, dict):
            return decode_rle(seg["counts"], *[int(v) for v in seg["size"]])
        return polygons_to_mask(seg, h, w)

    def __getitem__(self, index: int) -> WeakMask:
        from vfxmatte.io.colour import linear_to_srgb
        from vfxmatte.train.sources import read_colour

        ann = self.items[index % len(self.items)]
        im = self.images[int(ann["image_id"])]
        file = self.root / im["file_name"]
        if not file.is_file():
            raise InputError(f"Image {file} of COCO annotation {ann.get('id')} not found.")
        image = np.clip(linear_to_srgb(read_colour(file)), 0.0, 1.0)
        mask = self.mask(index)
        if mask.shape != image.shape[:2]:
            raise InputError(f"{file}: the mask is {mask.shape} but the image {image.shape[:2]}.")
        box = ann.get("bbox")
        if not box:
            ys, xs = np.nonzero(mask)
            box = [xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1]
        return WeakMask(image.astype(np.float32), mask, tuple(float(v) for v in box))
