"""A shot from one keyframe label map: propagate every segment, then matte every frame.

``vfxmatte panoptic PLATE.####.exr --labels KEY.png --key-frame N --propagate flow``:

1. the keyframe label map is split into segments (:func:`segments_from_label_map`,
   tiny ones merged) and their composition order is fixed on the keyframe
   (``order=area``: by keyframe area), so that it does not flip between frames;
2. every segment except the **back** one (first in that order: the largest under
   ``order=area``, usually the background or sky) becomes one object of the
   multi-object propagation (:func:`vfxmatte.engine.guidance.propagate_objects`:
   the ``flow`` or ``sam2`` backend, forward from the keyframe, then backward);
   things and the other stuff regions alike;
3. on each frame the propagated masks make a hard label map, back to front in the
   keyframe order (where two masks overlap the front one claims the pixel); the
   back segment is what no mask claims ("takes the remainder"), so the label map
   is a partition of the frame whatever the propagation does;
4. the frame is matted as a still (:func:`vfxmatte.panoptic.matte.matte_segments`)
   with the keyframe's order. Every segment has a layer on every frame (all zero
   where it is not in view), so all frames have the same channels.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from vfxmatte.engine.config import PipelineConfig, PropagateStageConfig
from vfxmatte.engine.guidance import propagate_objects
from vfxmatte.engine.stages import ColourContext
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.plate import Plate
from vfxmatte.io.sequence import compress_frames
from vfxmatte.panoptic.labels import Segment

__all__ = ["KeyframeSegments", "label_map_from_masks", "propagate_label_map"]

log = logging.getLogger(__name__)


@dataclass
class KeyframeSegments:
    """The segments of a keyframe label map, ready to propagate.

    Attributes:
        segments: the keyframe's segments (masks on the keyframe).
        order: back-to-front segment indices, fixed for the shot (None: no order).
        back: index of the segment that takes what no propagated mask claims.
    """

    segments: list[Segment]
    order: list[int] | None
    back: int

    @property
    def objects(self) -> list[int]:
        """Indices of the propagated segments (all but the back one), object id = index + 1."""
        return [k for k in range(len(self.segments)) if k != self.back]

    @classmethod
    def from_segments(
        cls, segments: Sequence[Segment], order: Sequence[int] | None
    ) -> KeyframeSegments:
        """``back`` is ``order[0]``, or the largest segment without an order."""
        if not segments:
            raise InputError("The keyframe label map has no segment.")
        back = order[0] if order else max(range(len(segments)), key=lambda k: segments[k].area)
        return cls(list(segments), None if order is None else list(order), back)


def label_map_from_masks(
    key: KeyframeSegments, masks: dict[int, np.ndarray], shape: tuple[int, int]
) -> tuple[np.ndarray, list[Segment]]:
    """One frame's hard label map and segments from its propagated masks.

    Args:
        masks: object id (segment index + 1) -> ``H x W`` float32 mask in [0, 1];
            a missing object is out of view.
        shape: the frame's ``(H, W)``.

    Returns:
        ``(label_map, segments)``: ``H x W`` int64 keyframe ids, and every keyframe
        segment (same order, names and ids) with this frame's area.
    """
    ids = [s.id for s in key.segments]
    label_map = np.full(shape, ids[key.back], np.int64)
    ranked = key.order
    if ranked is None:  # no order: larger keyframe segments behind smaller ones
        ranked = sorted(key.objects, key=lambda k: -key.segments[k].area)
    for k in ranked:
        mask = masks.get(k + 1)
        if k == key.back or mask is None:
            continue
        if mask.shape != tuple(shape):
            raise InputError(
                f"The propagated mask of '{key.segments[k].name}' is {mask.shape[1]}x"
                f"{mask.shape[0]}, not the plate's {shape[1]}x{shape[0]}."
            )
        label_map[mask > 0.5] = ids[k]
    present, counts = np.unique(label_map, return_counts=True)
    area = dict(zip(present.tolist(), counts.tolist(), strict=True))
    segments = [
        Segment(s.id, s.name, area.get(s.id, 0), s.isthing, label_map=label_map)
        for s in key.segments
    ]
    return label_map, segments


def propagate_label_map(
    plate: Plate,
    colour: ColourContext,
    key_frame: int,
    key: KeyframeSegments,
    propagate: PropagateStageConfig,
) -> Iterator[tuple[int, np.ndarray, list[Segment]]]:
    """``(frame number, label map, segments)`` for every frame of ``plate``.

    Frames come in the propagation's order: the keyframe, the frames after it,
    then those before it backwards.

    Raises:
        ConfigError: the keyframe is not a frame of the plate, or a backend other
            than flow, snapcut or sam2.
    """
    if key_frame not in plate.frames:
        raise ConfigError(
            f"The keyframe {key_frame} is not among the plate's frames "
            f"({compress_frames(plate.frames)}); pass --key-frame with one of them."
        )
    if propagate.backend not in ("flow", "snapcut", "sam2"):
        raise ConfigError(
            "Panoptic propagation needs the flow, snapcut or sam2 backend, "
            f"got '{propagate.backend}'."
        )
    first = plate.read(plate.frames[0])
    shape = (first.height, first.width)
    del first
    key_map = key.segments[0].label_map
    if key_map is None or key_map.shape != shape:
        found = "none" if key_map is None else f"{key_map.shape[1]}x{key_map.shape[0]}"
        raise InputError(
            f"The keyframe label map is {found} but the plate is {shape[1]}x{shape[0]}."
        )
    objects = key.objects
    keys = {key_frame: {k + 1: key.segments[k].mask.astype(np.float32) for k in objects}}
    if not objects:  # one segment: nothing moves, every frame is that segment
        for number in plate.frames:
            yield (number, *label_map_from_masks(key, {}, shape))
        return
    config = PipelineConfig(plate=plate.source)
    config.propagate = propagate
    log.info(
        "Propagating %d segment(s) from frame %d with %s; '%s' takes the remainder.",
        len(objects), key_frame, propagate.backend, key.segments[key.back].name,
    )  # fmt: skip
    for number, masks in propagate_objects(config, plate, colour, keys):
        yield (number, *label_map_from_masks(key, masks, shape))
