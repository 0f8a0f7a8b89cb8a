"""Prompts of the sam2 backend: keyframe masks, clicks and boxes, checked and grouped."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfxmatte.errors import InputError

__all__ = ["KeyBoxes", "KeyMasks", "KeyPoints", "Prompt", "collect_prompts"]

#: frame number -> {object id -> H x W mask}
KeyMasks = Mapping[int, Mapping[int, np.ndarray]]
#: frame number -> {object id -> (points N x 2 as (x, y) plate pixels, labels N: 1 fg, 0 bg)}
KeyPoints = Mapping[int, Mapping[int, tuple[np.ndarray, np.ndarray]]]
#: frame number -> {object id -> (x0, y0, x1, y1) plate pixels}
KeyBoxes = Mapping[int, Mapping[int, Sequence[float]]]


@dataclass
class Prompt:
    """What one object is given on one keyframe (model inputs, plate pixels)."""

    mask: np.ndarray | None = None
    points: np.ndarray | None = None  # [N, 2] float32 (x, y)
    labels: np.ndarray | None = None  # [N] int32
    box: np.ndarray | None = None  # [4] float32 (x0, y0, x1, y1)

    @property
    def has_clicks(self) -> bool:
        return self.points is not None or self.box is not None


def collect_prompts(
    index: dict[int, int], masks: KeyMasks, points: KeyPoints, boxes: KeyBoxes
) -> dict[int, dict[int, Prompt]]:
    """Group masks, points and boxes by position and object id, checking their frames."""
    prompts: dict[int, dict[int, Prompt]] = {}

    def slot(number: int, obj_id: int, kind: str) -> Prompt:
        if number not in index:
            numbers = list(index)
            raise InputError(
                f"The {kind} prompt on frame {number} is not among the frames to process "
                f"({numbers[0]}-{numbers[-1]}, {len(numbers)} frames). Give keyframes inside "
                "the frame range."
            )
        if isinstance(obj_id, bool) or not isinstance(obj_id, (int, np.integer)):
            raise InputError(f"Object ids must be integers, got {obj_id!r} on frame {number}.")
        return prompts.setdefault(index[number], {}).setdefault(int(obj_id), Prompt())

    for number, per_obj in masks.items():
        for obj_id, mask in per_obj.items():
            slot(number, obj_id, "mask").mask = mask
    for number, per_obj in points.items():
        for obj_id, (xy, labels) in per_obj.items():
            prompt = slot(number, obj_id, "point")
            prompt.points, prompt.labels = _check_points(xy, labels, number, obj_id)
    for number, per_obj in boxes.items():
        for obj_id, box in per_obj.items():
            slot(number, obj_id, "box").box = _check_box(box, number, obj_id)
    if not prompts:
        raise InputError(
            "No keyframe given: SAM 2 propagation needs a mask (or points or a box) for at "
            "least one object on at least one frame."
        )
    return prompts


def _check_points(xy: Any, labels: Any, number: int, obj_id: int) -> tuple[np.ndarray, np.ndarray]:
    """``N x 2`` (x, y) float32 and ``N`` int32 labels in {0, 1}."""
    xy = np.asarray(xy, dtype=np.float32)
    labels = np.asarray(labels).reshape(-1)
    where = f"object {obj_id} on frame {number}"
    if xy.ndim != 2 or xy.shape[1] != 2 or xy.shape[0] != labels.shape[0] or not len(xy):
        raise InputError(
            f"Points of {where} must be an N×2 array of (x, y) with N labels, got shapes "
            f"{xy.shape} and {labels.shape}."
        )
    if not np.isin(labels, (0, 1)).all():
        raise InputError(
            f"Point labels of {where} must be 1 (object) or 0 (background), got "
            f"{sorted(set(labels.tolist()))}."
        )
    return xy, labels.astype(np.int32)


def _check_box(box: Any, number: int, obj_id: int) -> np.ndarray:
    """``(x0, y0, x1, y1)`` float32 with x0 < x1 and y0 < y1."""
    arr = np.asarray(box, dtype=np.float32).reshape(-1)
    if arr.shape != (4,) or not (arr[0] < arr[2] and arr[1] < arr[3]):
        raise InputError(
            f"The box of object {obj_id} on frame {number} must be (x0, y0, x1, y1) in plate "
            f"pixels with x0 < x1 and y0 < y1, got {np.asarray(box).tolist()}."
        )
    return arr
