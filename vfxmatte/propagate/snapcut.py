"""Weight-free propagation after Video SnapCut (the ``snapcut`` backend).

Bai, Wang, Simons and Sapiro, "Video SnapCut: Robust Video Object Cutout Using
Localized Classifiers", SIGGRAPH 2009 (the method of After Effects' first Roto
Brush). Each new frame, at a working resolution (long side ``work_long_side``):

1. Motion (:mod:`~vfxmatte.propagate.motion`): DIS flow both ways between the
   previous frame and this one; the forward-backward consistency of every
   pixel; the object's similarity motion fitted with RANSAC to the consistent
   flow of its inner pixels (constant velocity while it is hidden).
2. Shape prior: the previous soft mask carried by the flow where the flow is
   consistent and by the object's motion where it is not. Background the object
   uncovers fails the round trip, so it takes the object's motion, which moves
   the mask off it: the trailing edge leaves the mask (SnapCut section 3.1).
   Where the consistent flow surely goes another way than the object, the mask
   is not carried by it either (a piece left on the background erodes).
3. Local classifiers (:mod:`~vfxmatte.propagate.colour_models`): overlapping
   windows along the boundary learn object/background colours on the previous
   frame and score this one; a window whose colours separate well is trusted
   near the boundary, the shape prior elsewhere (section 3.2, ``f_c`` and ``f_s``).
4. Re-acquisition: the object's full extent ("amodal" mask, hidden parts
   included) moves with it; a part of it counts as hidden only where something
   in front covers it (consistent flow that does not move with the object)
   and only where something could hide it: what was hidden before, or the
   object's pixels whose flow found no match (the strip an occluder swept over);
   a rim of background the mask leaves is not kept as "hidden". Where it is
   hidden, the pixels that come out (no match on the last frame, not of
   background colour) are the object again on the frame they appear, and the
   global colour models learned on the keyframe (and updated only from
   confident frames) bring back the rest; for some
   frames after that (or while much of it is hidden) what moves closely with
   the object and is connected to it joins it (motion segmentation), so parts
   never seen before come back too.
5. Objects apart: every connected part of a keyframe mask that is large enough
   is tracked on its own (:mod:`~vfxmatte.propagate.snapcut_object`), with its
   own motion, extent and colour models, and the frame's mask is their union;
   two objects that cross each keep their motion, and the one behind keeps the
   hidden part of its extent until it comes out.
6. Edge-aware cut (:mod:`~vfxmatte.propagate.edges`): a guided filter steered
   by the frame, thresholded, cleaned (:mod:`~vfxmatte.propagate.cleanup`),
   upsampled to the plate.

The soft probability of frame ``t`` (or, with ``feed=matte``, the engine's final
matte, weighted by the frame's confidence) is what frame ``t+1`` starts from, so
translucent and blurred edges carry over. Every frame gets a
:class:`~vfxmatte.propagate.drift.DriftSample` (:attr:`SnapCutPropagator.drift`).

Frames are display-referred RGB ``H x W x 3`` float32 in [0, 1]; masks are
``H x W`` float32 in [0, 1].
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vfxmatte.config import param, validate_fields
from vfxmatte.errors import InputError
from vfxmatte.propagate.checks import check_image, check_mask
from vfxmatte.propagate.cleanup import clean_mask
from vfxmatte.propagate.drift import DriftSample
from vfxmatte.propagate.snapcut_object import ObjectTracker, make_frame, resize_to, support

__all__ = ["KeyLookAhead", "SnapCutPropagateConfig", "SnapCutPropagator", "propagate_sequence"]

# A connected part of a keyframe mask is an object of its own from this share of the
# largest part and this many working pixels; smaller parts go with the nearest object.
_OBJECT_SHARE = 0.1
_OBJECT_PIXELS = 64
_MAX_ENLARGE = 4.0


@dataclass
class SnapCutPropagateConfig:
    """Options of the ``snapcut`` propagation backend."""

    work_long_side: int = param(
        640,
        "Long side in pixels of the working resolution (a smaller plate is enlarged to it, "
        "at most 4x).",
        min=64,
        max=8192,
    )
    dis_preset: str = param(
        "medium", "Speed/quality preset of DIS flow.", choices=("ultrafast", "fast", "medium")
    )
    threshold: float = param(0.5, "Probability at or above this is foreground.", min=0.01, max=0.99)
    window: int = param(
        0,
        "Side of the local colour windows in working pixels; 0: a quarter of the object's "
        "size (16-64).",
        min=0,
        max=512,
    )
    colour_bins: int = param(16, "Colour cells per channel of the colour models.", min=4, max=64)
    fb_tolerance: float = param(
        1.0, "Forward-backward round-trip error (working px) that halves a pixel's trust.", min=0.1
    )
    confident: float = param(
        0.7,
        "Frames at or above this confidence update the global colour models.",
        min=0.0,
        max=1.0,
    )
    model_rate: float = param(
        0.1, "How much one confident frame moves the running colour models.", min=0.0, max=1.0
    )
    edge_radius: int = param(2, "Guided-filter radius in working pixels (0: off).", min=0, max=32)
    edge_eps: float = param(1e-3, "Guided-filter regularisation.", min=1e-6, max=1.0)
    fill_holes_area: float = param(
        0.01,
        "Fill enclosed holes smaller than this: a fraction of the object area if below 1, "
        "else pixels; 0 disables.",
        min=0,
    )
    min_island_area: float = param(
        0.01,
        "Remove islands smaller than this (the largest one is always kept): a fraction of the "
        "object area if below 1, else pixels; 0 disables.",
        min=0,
    )
    feed: str = param(
        "mask",
        "What the next frame starts from: the propagated soft mask, or the final matte of "
        "the frame (weighted by the frame's confidence) when the engine supplies it.",
        choices=("mask", "matte"),
    )
    keep_soft: bool = param(False, "Return the soft probability instead of a 0/1 mask.")
    blend_keys: bool = param(
        True,
        "Between two keyframes, blend the propagation from the earlier one with a "
        "propagation run back from the later one (a cross-fade by distance), "
        "instead of switching at the later keyframe.",
    )

    def __post_init__(self) -> None:
        validate_fields(self, "propagate.snapcut.")


@dataclass
class KeyLookAhead:
    """What a propagator needs to run back from the next keyframe (``blend_keys``).

    Attributes:
        order: the shot's frame numbers in frame order.
        key_masks: frame number -> keyframe mask (``H x W`` float32).
        read: frame number -> display-referred frame (``H x W x 3`` float32), as
            the propagator is given them.
    """

    order: Sequence[int]
    key_masks: Mapping[int, np.ndarray]
    read: Callable[[int], np.ndarray]

    def __deepcopy__(self, memo: dict) -> KeyLookAhead:
        return self  # read-only, shared by forks

    def next_key(self, anchor: int, towards: int) -> int | None:
        """The first keyframe after ``anchor`` in the direction of ``towards`` (the frame
        that follows it), or None when ``towards`` does not follow it in ``order``."""
        order = list(self.order)
        if anchor not in order or towards not in order:
            return None
        a, t = order.index(anchor), order.index(towards)
        if t - a == 1:
            return next((n for n in order[t:] if n in self.key_masks), None)
        if t - a == -1:
            return next((n for n in order[t::-1] if n in self.key_masks), None)
        return None


class SnapCutPropagator:
    """Carries a mask through a shot one frame at a time, in either direction.

    Same use as :class:`~vfxmatte.propagate.flow.FlowPropagator`: :meth:`reset`
    at a keyframe, :meth:`step` on every other frame in the order of travel,
    :meth:`correct` with the engine's matte (used with ``feed=matte``). After
    each call :attr:`drift` holds the frame's :class:`DriftSample` (that of the
    least confident object).

    The keyframe mask is split into objects (its large connected parts), each
    carried by an :class:`~vfxmatte.propagate.snapcut_object.ObjectTracker`;
    the mask of a frame is the union of theirs.
    """

    def __init__(
        self, config: SnapCutPropagateConfig | None = None, ahead: KeyLookAhead | None = None
    ) -> None:
        self.config = config if config is not None else SnapCutPropagateConfig()
        self._ahead = ahead if self.config.blend_keys else None
        self._anchor: int | None = None  # the keyframe of the last reset
        self._behind: dict[int, tuple[np.ndarray, float, float]] | None = None  # _run_back
        self._shape: tuple[int, int] | None = None  # (H, W)
        self._work: tuple[int, int] = (0, 0)  # (w, h), cv2 order
        self._objects: list[ObjectTracker] = []
        self.drift: DriftSample | None = None

    @property
    def _soft(self) -> np.ndarray | None:
        """The union of the objects' soft states (``h x w`` float32), or None before reset."""
        softs = [t.soft for t in self._objects if t.soft is not None]
        return np.maximum.reduce(softs) if softs else None

    # -- public -----------------------------------------------------------------

    def reset(
        self,
        key_image: np.ndarray,
        key_mask: np.ndarray,
        *,
        index: int | None = None,
        allow_empty: bool = False,
    ) -> np.ndarray:
        """Start (or re-anchor) from a keyframe; returns its cleaned mask (``H x W`` float32).

        An object that keeps its place (the same number of objects, each nearest
        to one of before) keeps its colour models from the earlier keyframes.

        Raises:
            InputError: for a malformed image or mask, a size mismatch, NaN, or
                (unless ``allow_empty``) a mask with no pixel at or above ``threshold``.
        """
        where = f" of frame {index}" if index is not None else ""
        image = check_image(key_image, f"keyframe image{where}")
        mask = check_mask(key_mask, image.shape[:2], f"keyframe mask{where}")
        cfg = self.config
        if not allow_empty and not (mask >= cfg.threshold).any():
            raise InputError(
                f"The keyframe mask{where} is empty: no pixel reaches the threshold "
                f"{cfg.threshold} (largest value {float(mask.max()):.3g}). Paint the object on "
                "the keyframe, lower 'threshold', or check that the mask is not inverted."
            )
        h, w = image.shape[:2]
        if self._shape != (h, w):
            # Small plates are worked on enlarged (up to _MAX_ENLARGE): the windows, kernels
            # and flow are sized for objects of tens of working pixels.
            scale = min(_MAX_ENLARGE, cfg.work_long_side / max(h, w))
            self._work = (max(16, round(w * scale)), max(16, round(h * scale)))
            self._shape = (h, w)
            self._objects = []
        frame = make_frame(image, self._work, cfg.colour_bins, f"keyframe image{where}")
        small = resize_to(mask, self._work)
        parts = split_objects(small, cfg.threshold)
        if len(parts) != len(self._objects):
            self._objects = [ObjectTracker(cfg) for _ in parts]
        else:
            parts = _match(parts, self._objects)
        for tracker, part in zip(self._objects, parts, strict=True):
            tracker.start(frame, part)
        self.drift = DriftSample(confidence=1.0, keyframe=True)
        self._anchor, self._behind = index, None
        raw = mask >= cfg.threshold
        out = clean_mask(raw, cfg.fill_holes_area, cfg.min_island_area).astype(np.float32)
        if cfg.keep_soft:
            out = np.where(out != raw, out, mask).astype(np.float32)
        return out

    def step(self, image: np.ndarray, *, index: int | None = None) -> np.ndarray:
        """The mask of the next frame in the direction of travel (``H x W`` float32)."""
        if not self._objects:
            raise RuntimeError("SnapCutPropagator.step() called before reset(): give a keyframe.")
        what = "frame" if index is None else f"frame {index}"
        image = check_image(image, what)
        if image.shape[:2] != self._shape:
            raise InputError(
                f"Frame size changed within the shot: expected {self._shape[1]}x"
                f"{self._shape[0]}, found {image.shape[1]}x{image.shape[0]} at {what}. Every "
                "frame of a shot must have the same size."
            )
        if self._anchor is not None and self._ahead is not None and index is not None:
            self._run_back(self._anchor, index)
            self._anchor = None  # once per keyframe
        frame = make_frame(image, self._work, self.config.colour_bins, what)
        states = [tracker.advance(frame) for tracker in self._objects]
        self.drift = min(
            (t.drift for t in self._objects if t.drift is not None), key=lambda d: d.confidence
        )
        state = np.maximum.reduce(states)
        if self._behind is not None and index in self._behind:
            state = self._blend(state, index)
        return self._upsample(state)

    def correct(self, matte: np.ndarray) -> None:
        """With ``feed=matte``: start the next frame from the engine's matte of this one.

        The matte replaces the soft state in proportion to the frame's
        confidence, so a frame the propagator doubts does not hand its doubt on
        unweighted; each object takes the matte near itself only. With
        ``feed=mask`` this does nothing.
        """
        if self.config.feed != "matte" or not self._objects or self._shape is None:
            return
        alpha = check_mask(matte, self._shape, "matte")
        small = resize_to(alpha, self._work)
        if len(self._objects) == 1:
            self._objects[0].correct(small)
            return
        owner = _nearest_object([t.soft for t in self._objects])
        for k, tracker in enumerate(self._objects):
            tracker.correct(np.where(owner == k, small, 0.0).astype(np.float32))

    # -- keyframe blending --------------------------------------------------------

    def _run_back(self, anchor: int, towards: int) -> None:
        """Propagate back from the next keyframe (in the direction from ``anchor`` to
        ``towards``) to the frame after ``anchor``; keep each frame's soft state (8 bit,
        working resolution), confidence and share in the cross-fade for :meth:`_blend`.

        The share is linear in the distance: each direction weighs more near its own
        keyframe. The confidences are not weights: both fall where an object goes
        behind something, and the direction that saw it go keeps it better there.
        """
        ahead = self._ahead
        key = ahead.next_key(anchor, towards)
        if key is None:
            return
        order = list(ahead.order)
        a, k = order.index(anchor), order.index(key)
        span = abs(k - a)
        back = SnapCutPropagator(self.config)  # no look-ahead of its own
        back.reset(ahead.read(key), ahead.key_masks[key], index=key, allow_empty=True)
        behind: dict[int, tuple[np.ndarray, float, float]] = {}
        step = 1 if k < a else -1
        for here in range(k + step, a, step):
            number = order[here]
            back.step(ahead.read(number), index=number)
            soft = back._soft if back._soft is not None else np.zeros(self._work[::-1], np.float32)
            quantised = np.round(np.clip(soft, 0.0, 1.0) * 255.0).astype(np.uint8)
            behind[number] = (quantised, back.drift.confidence, abs(here - a) / span)
        self._behind = behind

    def _blend(self, state: np.ndarray, index: int) -> np.ndarray:
        """This frame's forward state cross-faded with the one run back from the next
        keyframe (see :meth:`_run_back`); the frame's confidence is mixed alike."""
        back, back_confidence, share = self._behind[index]
        weight = np.float32(share)
        blended = (1 - weight) * state + weight * (back.astype(np.float32) / np.float32(255.0))
        confidence = (1 - weight) * self.drift.confidence + weight * back_confidence
        self.drift = dataclasses.replace(self.drift, confidence=float(confidence))
        return blended.astype(np.float32)

    def fork(self) -> SnapCutPropagator:
        """An independent copy of this propagator and its state (for the other direction)."""
        return copy.deepcopy(self)

    # -- output -----------------------------------------------------------------

    def _upsample(self, state: np.ndarray) -> np.ndarray:
        """The working-resolution state at the plate's size (bilinear), inside its box only.

        The state was cleaned at working resolution, so no full-resolution
        cleanup is needed (it cost more than the rest of a 1080p frame).
        """
        h, w = self._shape
        out = np.zeros((h, w), np.float32)
        box = support(state > 0)
        if box is None:
            return out
        sy, sx = h / state.shape[0], w / state.shape[1]
        y0, y1 = max(0, int((box[0] - 1) * sy)), min(h, int(np.ceil((box[1] + 1) * sy)))
        x0, x1 = max(0, int((box[2] - 1) * sx)), min(w, int(np.ceil((box[3] + 1) * sx)))
        # Same pixel-centre convention as cv2.resize, for the box only.
        to_small = np.float32(
            [[1 / sx, 0, (x0 + 0.5) / sx - 0.5], [0, 1 / sy, (y0 + 0.5) / sy - 0.5]]
        )
        part = cv2.warpAffine(
            state, to_small, (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE,
        )  # fmt: skip
        if self.config.keep_soft:
            out[y0:y1, x0:x1] = np.clip(part, 0.0, 1.0)
        else:
            out[y0:y1, x0:x1] = part >= self.config.threshold
        return out


def propagate_sequence(
    get_frame: Callable[[int], np.ndarray],
    indices: Sequence[int],
    key_masks: Mapping[int, np.ndarray],
    config: SnapCutPropagateConfig | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Propagate keyframe masks through a shot, streaming frames, in the engine's order.

    As :func:`vfxmatte.propagate.flow.propagate_sequence`: the first keyframe,
    every frame after it (later keyframes re-anchor; an empty one means "out of
    view"), then every frame before it in reverse order.

    Raises:
        InputError: for an empty ``key_masks``, a keyframe not in ``indices``,
            repeated indices, or a bad frame or mask.
    """
    from vfxmatte.propagate.flow import _first_key_position

    config = config if config is not None else SnapCutPropagateConfig()
    order = list(indices)
    start = _first_key_position(order, key_masks)
    forward = SnapCutPropagator(config, KeyLookAhead(order, key_masks, get_frame))
    key = order[start]
    mask = forward.reset(get_frame(key), key_masks[key], index=key)
    backward = forward.fork() if start > 0 else None
    yield key, mask
    for i in order[start + 1 :]:
        if i in key_masks:
            yield i, forward.reset(get_frame(i), key_masks[i], index=i, allow_empty=True)
        else:
            yield i, forward.step(get_frame(i), index=i)
    del forward
    if backward is not None:
        for i in reversed(order[:start]):
            yield i, backward.step(get_frame(i), index=i)


def split_objects(mask: np.ndarray, threshold: float) -> list[np.ndarray]:
    """The objects of a soft ``h x w`` float32 mask: one soft mask per large connected part.

    Parts smaller than ``_OBJECT_SHARE`` of the largest (or ``_OBJECT_PIXELS``)
    and the soft edge around them go with the nearest large part. A mask with
    one large part (or none) is returned whole, as a list of one.
    """
    binary = (mask >= threshold).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if count <= 2:
        return [mask]
    big = [k + 1 for k in np.argsort(-areas)
           if areas[k] >= max(_OBJECT_PIXELS, _OBJECT_SHARE * areas.max())]  # fmt: skip
    if len(big) < 2:
        return [mask]
    owner = _nearest_object([(labels == k).astype(np.float32) for k in big])
    return [np.where(owner == k, mask, 0.0).astype(np.float32) for k in range(len(big))]


def _nearest_object(masks: list[np.ndarray]) -> np.ndarray:
    """``h x w`` int32: for each pixel the index of the nearest of ``masks`` (> 0.5)."""
    dists = [cv2.distanceTransform((m <= 0.5).astype(np.uint8), cv2.DIST_L2, 3) for m in masks]
    return np.argmin(np.stack(dists), axis=0).astype(np.int32)


def _match(parts: list[np.ndarray], trackers: list[ObjectTracker]) -> list[np.ndarray]:
    """``parts`` reordered so that each goes to the tracker whose last mask it overlaps most
    (greedy; the order is kept where that is ambiguous)."""
    score = np.array(
        [[float(np.minimum(p, t.soft).sum()) if t.soft is not None else 0.0 for p in parts]
         for t in trackers]
    )  # fmt: skip
    order: list[int] = []
    for row in score:
        free = [j for j in range(len(parts)) if j not in order]
        order.append(max(free, key=lambda j: row[j]))
    return [parts[j] for j in order]
