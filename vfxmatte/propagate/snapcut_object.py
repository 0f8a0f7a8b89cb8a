"""One object of the ``snapcut`` propagator: its state and one frame of its propagation.

:class:`ObjectTracker` is the per-object half of
:class:`~vfxmatte.propagate.snapcut.SnapCutPropagator` (see that module for the
method): the previous frame it saw, its soft mask, its amodal extent (hidden
parts included), its motion and its global colour models, all at working
resolution. Objects are tracked apart so that each has its own motion (two
objects that cross move differently) and its own extent: where one passes in
front of the other, the one behind keeps the hidden part of its extent (its
flow does not move with it: it is covered) and takes it back as it comes out.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import cv2
import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.propagate.cleanup import clean_mask
from vfxmatte.propagate.colour_models import GlobalColourModel, local_models, quantise
from vfxmatte.propagate.drift import DriftSample, frame_confidence
from vfxmatte.propagate.edges import guided_filter
from vfxmatte.propagate.motion import (
    backward_warp,
    consistency,
    flow_pair,
    make_dis,
    object_motion,
    warp_affine,
)

if TYPE_CHECKING:
    from vfxmatte.propagate.snapcut import SnapCutPropagateConfig

__all__ = ["Frame", "ObjectTracker", "make_frame", "resize_to", "sharpen", "support"]

_STATE_SHARPEN = 2.0  # contrast stretch of the carried soft state (see flow._sharpen)
_SIGMA_MIN = 1.0  # shape-confidence width where colour cannot be trusted (work px)
_FC_CUTOFF = 0.5  # colour confidence below which windows are not used near the edge
_REACQUIRE = 0.75  # global object posterior that brings a hidden part back
_IN_VIEW = 0.35  # share of the object's extent in view below which its last motion is kept
_HIDDEN_FADE = 0.98  # per frame: a hidden part is forgotten after about 34 frames
_HIDDEN_CONFIDENCE = 0.25  # confidence of a frame where the object is hidden
_GROW_MIN_PX = 3.0  # object motion (work px/frame) from which motion alone can add pixels
# Global object posterior at or above which a moving pixel may be added: after the object
# was out of view (its appearance may have changed while hidden), and while it is partly
# behind something (the pixels next to the occluder's edge take its motion from the flow).
_GROW_COLOUR = 0.05
_GROW_COLOUR_PARTLY = 0.3
_GROW_PROB = 0.75  # probability given to such a pixel
_RECOVER_FRAMES = 20  # frames after a re-acquisition (or a large occlusion) that grow by motion
_UNCOVER_COLOUR = 0.3  # global object posterior from which an uncovered hidden pixel comes back
_RECOVER_HIDDEN = 0.25  # share of the extent hidden from which the object is recovering


@dataclass
class Frame:
    """One frame at working resolution."""

    grey: np.ndarray  # [h, w] uint8
    guide: np.ndarray  # [h, w] float32 grey in [0, 1]
    cells: np.ndarray  # [h, w] int32 colour cells


def make_frame(image: np.ndarray, work: tuple[int, int], bins: int, what: str) -> Frame:
    """``image`` (``H x W`` or ``H x W x C`` float32) at the working size ``work`` (w, h)."""
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    small = resize_to(image[..., :3], work)
    if not np.isfinite(small).all():
        raise InputError(
            f"The {what} contains NaN or infinite values; fix or clamp the plate first."
        )
    small = np.clip(small, 0.0, 1.0)
    guide = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY)
    grey = (guide * 255.0 + 0.5).astype(np.uint8)
    return Frame(grey, guide, quantise(small, bins))


def resize_to(values: np.ndarray, work: tuple[int, int]) -> np.ndarray:
    """``values`` at the size ``work`` (w, h): area averaging down, bilinear up."""
    h, w = values.shape[:2]
    up = work[0] > w or work[1] > h
    return cv2.resize(values, work, interpolation=cv2.INTER_LINEAR if up else cv2.INTER_AREA)


class ObjectTracker:
    """One object carried from frame to frame (working resolution throughout).

    :meth:`start` at a keyframe with the object's mask, :meth:`advance` on each
    following frame in the order of travel; :attr:`drift` is the last frame's
    :class:`DriftSample`.
    """

    def __init__(self, config: SnapCutPropagateConfig) -> None:
        self.config = config
        self._dis = make_dis(config.dis_preset)
        self._rng = np.random.default_rng(0)
        self._prev: Frame | None = None
        self._soft: np.ndarray | None = None  # [h, w] float32
        self._amodal: np.ndarray | None = None  # [h, w] float32
        self._motion: np.ndarray | None = None  # [2, 3] float64
        self._area = 0.0
        self._hidden_for = 0  # frames the object has been mostly out of view
        self._in_front: np.ndarray | None = None  # [h, w] bool, set by _probability
        self._covered: np.ndarray | None = None  # [h, w] bool, set by _probability
        self._recovering = 0  # frames left that may grow by motion (see _grow)
        self._grow_colour = _GROW_COLOUR  # the colour bar of that growth
        self._key_rings = (0.0, 0.0, 0.0)
        self._colours = GlobalColourModel(config.colour_bins)
        self.drift: DriftSample | None = None

    @property
    def soft(self) -> np.ndarray | None:
        """The object's soft mask of the last frame (``h x w`` float32), or None."""
        return self._soft

    @property
    def extent(self) -> np.ndarray | None:
        """The object's amodal extent of the last frame (``h x w`` float32), or None."""
        return self._amodal

    def start(self, frame: Frame, mask: np.ndarray) -> None:
        """(Re-)anchor at a keyframe: ``mask`` ``h x w`` float32 in [0, 1], working size.

        The global colour models keep what earlier keyframes taught them.
        """
        self._prev, self._soft, self._amodal = frame, mask, mask.copy()
        self._motion = None
        self._hidden_for = 0
        self._recovering = 0
        self._area = float((mask >= self.config.threshold).sum())
        if self._area > 0:
            self._colours.learn(frame.cells, mask, keyframe=True, rate=1.0)
            self._key_rings = self._separation(self._colours.posterior(frame.cells), mask)
        self.drift = DriftSample(confidence=1.0, keyframe=True)

    def advance(self, frame: Frame) -> np.ndarray:
        """The object's soft state on ``frame``, the next frame in the direction of travel."""
        if self._prev is None:
            raise RuntimeError("ObjectTracker.advance() called before start().")
        prob, fb_ok, carried = self._probability(frame)
        if self.config.edge_radius > 0:
            prob = guided_filter(frame.guide, prob, self.config.edge_radius, self.config.edge_eps)
        out = self._finish(frame, prob, fb_ok, carried)
        self._prev = frame
        return out

    def correct(self, alpha: np.ndarray) -> None:
        """Blend ``alpha`` (``h x w`` float32, working size) into the soft state by the
        last frame's confidence (``feed=matte``)."""
        if self._soft is None:
            return
        weight = np.float32(1.0 if self.drift is None else self.drift.confidence)
        self._soft = weight * sharpen(alpha, self.config.threshold) + (1 - weight) * self._soft

    def __deepcopy__(self, memo: dict) -> ObjectTracker:
        other = copy.copy(self)
        for name in ("_soft", "_amodal", "_motion", "_prev", "_colours", "_rng"):
            setattr(other, name, copy.deepcopy(getattr(self, name), memo))
        other._dis = make_dis(self.config.dis_preset)
        return other

    def _probability(self, frame: Frame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Combined object probability of ``frame`` before the edge step.

        Returns:
            ``(probability, consistency, shape prior)``, ``h x w`` float32 each.
        """
        cfg, prev = self.config, self._prev
        back, fwd = self._flows(frame, prev)
        ok_here = consistency(back, fwd, cfg.fb_tolerance)
        ok_prev = consistency(fwd, back, cfg.fb_tolerance)
        in_view = float((self._soft >= 0.5).sum()) >= _IN_VIEW * float((self._amodal >= 0.5).sum())
        self._hidden_for = 0 if in_view else self._hidden_for + 1
        self._motion, _ = object_motion(
            self._soft, fwd, ok_prev, self._motion, self._rng, reliable=in_view
        )
        by_flow = backward_warp(self._soft, back)
        by_motion = warp_affine(self._soft, self._motion)
        shape = ok_here * by_flow + (1.0 - ok_here) * by_motion
        err, disp = _motion_error(back, self._motion)
        # Where the flow surely goes another way than the object, the mask cannot have come
        # along with it: a piece left on the background (or on an object crossing in front)
        # erodes at the object's speed instead of staying.
        elsewhere = _moves_elsewhere(err, disp, ok_here)
        shape[elsewhere] = np.minimum(shape, by_motion)[elsewhere]
        amodal = warp_affine(self._amodal, self._motion)
        self._covered = self._covered_now(ok_prev)
        inside = shape >= cfg.threshold
        side = self._window_side(inside)
        band = _band(inside, side // 2) | _hidden(amodal, shape, cfg.threshold)
        # Hidden parts of the extent are neither object nor background to the windows.
        learn_from = np.where(_hidden(self._amodal, self._soft, cfg.threshold), 0.5, self._soft)
        local = local_models(
            frame.cells, prev.cells, learn_from, band, self._motion, side, cfg.colour_bins
        )
        colour_global = self._colours.posterior(frame.cells)
        colour = local.weight * local.posterior + (1.0 - local.weight) * colour_global
        f_c = local.weight * local.confidence
        sigma = (
            _SIGMA_MIN
            + (side / 2 - _SIGMA_MIN)
            * np.clip((f_c - _FC_CUTOFF) / (1 - _FC_CUTOFF), 0.0, 1.0) ** 2
        )
        d = _contour_distance(inside)
        f_s = 1.0 - np.exp(-(np.minimum(d / sigma, 8.0) ** 2))
        prob = f_s * shape + (1.0 - f_s) * colour
        moves_along = _moves_with(err, disp, ok_here)
        # Parts of the extent covered by something in front: consistent flow that does not
        # move with the object (what the object uncovers fails the round trip instead).
        self._in_front = (ok_here > 0.5) & ~moves_along
        # Only what moves with the object can be the object coming back (not the occluder).
        likeness = np.where(moves_along, colour_global, np.float32(0.0))
        back_again, amodal = self._reacquire(amodal, shape, likeness)
        if back_again.any() and self._hidden_for > 0:
            self._recovering, self._grow_colour = _RECOVER_FRAMES, _GROW_COLOUR
        self._amodal = amodal  # this frame's extent from here on
        prob[back_again] = np.maximum(prob[back_again], colour_global[back_again])
        uncovered = _uncovered(amodal, shape, ok_here, colour_global, cfg.threshold)
        prob[uncovered] = np.maximum(prob[uncovered], _GROW_PROB)
        if self._recovering > 0:
            self._recovering -= 1
            seed = inside | back_again
            moving = _moves_closely(err, disp, ok_here) & (colour_global >= self._grow_colour)
            grow = _grow(seed, moving)
            prob[grow] = np.maximum(prob[grow], _GROW_PROB)
        return prob.astype(np.float32), ok_here, shape

    def _covered_now(self, ok_prev: np.ndarray) -> np.ndarray:
        """Where the object's extent may be covered on this frame (``h x w`` bool).

        Something in front can only hide what was there: the parts hidden on the
        last frame, and the object's pixels of the last frame whose flow finds no
        match on this one (the strip an occluder or the frame's edge swept over),
        both moved by the object's motion and grown by 2 px. A part of the extent
        over background that the mask left (it shrank, or the extent was wrong)
        was matched, so it is not hidden: it stops being the object.
        """
        thr = self.config.threshold
        was_hidden = (self._amodal >= thr) & (self._soft < thr)
        swept = (self._soft >= thr) & (ok_prev < 0.5)
        moved = warp_affine((was_hidden | swept).astype(np.float32), self._motion) >= 0.5
        return cv2.dilate(moved.astype(np.uint8), _disk(2)) > 0

    def _finish(
        self, frame: Frame, prob: np.ndarray, fb_ok: np.ndarray, shape: np.ndarray
    ) -> np.ndarray:
        """Threshold and clean; keep the state; measure the frame; the new state."""
        cfg = self.config
        raw = prob >= cfg.threshold
        binary = clean_mask(raw, cfg.fill_holes_area, cfg.min_island_area)
        state = sharpen(prob, cfg.threshold)
        changed = binary != raw
        state[changed] = binary[changed]
        self._soft = state
        hidden = _keep_hidden(self._amodal, binary, self._in_front & self._covered, cfg.threshold)
        self._amodal = np.maximum(state, hidden)
        hidden_area = float((hidden >= cfg.threshold).sum())
        if hidden_area >= _RECOVER_HIDDEN * (hidden_area + float(binary.sum())):
            # Much of it is behind something (after it was out of view, the lower bar stays).
            after_hiding = self._recovering > 0 and self._grow_colour == _GROW_COLOUR
            self._recovering = _RECOVER_FRAMES
            self._grow_colour = _GROW_COLOUR if after_hiding else _GROW_COLOUR_PARTLY
        area = float(binary.sum())
        self.drift = self._measure(frame, binary, fb_ok, area)
        self._area = area
        if self.drift.confidence >= cfg.confident and area > 0:
            self._colours.learn(frame.cells, state, keyframe=False, rate=cfg.model_rate)
        return state

    # -- helpers ----------------------------------------------------------------

    def _flows(self, frame: Frame, prev: Frame) -> tuple[np.ndarray, np.ndarray]:
        """Flows both ways, computed inside the object's reach only (zero elsewhere).

        The reach is the box of the object's extent grown by its last motion and a
        margin of a third of its size (at least 32 px): nothing outside it can
        become object in this frame, and flow costs in proportion to the area.
        """
        h, w = prev.grey.shape
        back = np.zeros((h, w, 2), np.float32)
        fwd = np.zeros((h, w, 2), np.float32)
        box = support((self._amodal >= 0.05) | (self._soft >= 0.05))
        if box is None:
            return back, fwd
        y0, y1, x0, x1 = box
        speed = 0.0 if self._motion is None else float(np.abs(self._motion[:, 2]).max())
        grow = int(max(32.0, (max(y1 - y0, x1 - x0)) / 3) + 2 * speed)
        y0, y1, x0, x1 = max(0, y0 - grow), min(h, y1 + grow), max(0, x0 - grow), min(w, x1 + grow)
        if y1 - y0 < 16 or x1 - x0 < 16:
            return back, fwd
        roi = np.s_[y0:y1, x0:x1]
        crop = np.ascontiguousarray
        b, f = flow_pair(self._dis, crop(frame.grey[roi]), crop(prev.grey[roi]))
        back[roi], fwd[roi] = b, f
        return back, fwd

    def _reacquire(
        self, amodal: np.ndarray, shape: np.ndarray, colour: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Where a hidden part of the object comes back into view.

        While the object is hidden its motion is only extrapolated, so its extent
        may lag or lead. The search region is the hidden part grown by a radius
        that widens the longer the object has been mostly hidden; if pixels there
        look like the object to the global colour models, the extent is re-placed
        where it covers the most object-like colour (a correlation of its shape
        with the posterior over the search radius), and inside it a weaker
        likeness is enough.

        Returns:
            ``(pixels, amodal)``: ``h x w`` bool pixels that come back, and the
            (possibly re-placed) extent.
        """
        thr = self.config.threshold
        extent = amodal >= thr
        hidden = extent & (shape < thr)
        if not hidden.any():
            return hidden, amodal
        size = math.sqrt(float(extent.sum()))
        radius = int(min(size, 2 + 0.1 * size * self._hidden_for))
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
        search = cv2.dilate(hidden.astype(np.uint8), kernel) > 0
        strong = (search & (shape < thr) & (colour >= _REACQUIRE)).astype(np.uint8)
        strong = cv2.morphologyEx(strong, cv2.MORPH_OPEN, np.ones((5, 5), np.uint8)) > 0
        if not strong.any():
            return strong, amodal
        if self._hidden_for > 0 and radius > 2:
            amodal = _replace(amodal, strong.astype(np.float32), radius)
            extent = amodal >= thr
            # What lies outside the re-placed extent is something else of the same colours.
            strong &= cv2.dilate(extent.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        # Inside the re-placed extent, next to what surely came back, a weaker likeness does.
        near = cv2.dilate(strong.astype(np.uint8), np.ones((9, 9), np.uint8)) > 0
        weak = extent & near & (shape < thr) & (colour >= 0.5)
        return strong | weak, amodal

    def _window_side(self, inside: np.ndarray) -> int:
        if self.config.window:
            return max(4, self.config.window // 2 * 2)
        size = math.sqrt(max(1.0, float(inside.sum())))
        return int(np.clip(size / 4, 16, 64)) // 2 * 2

    @staticmethod
    def _separation(posterior: np.ndarray, mask: np.ndarray) -> tuple[float, float, float]:
        """Mean object posterior on the object, on the ring just outside it (8 px) and on
        the ring beyond that (8-24 px)."""
        obj = mask >= 0.5
        if not obj.any():
            return 0.0, 0.0, 0.0
        near = _band(obj, 8) & ~obj
        far = _band(obj, 24) & ~obj & ~near

        def mean(where: np.ndarray) -> float:
            return float(posterior[where].mean()) if where.any() else 0.0

        return mean(obj), mean(near), mean(far)

    def _colour_drop(self, posterior: np.ndarray, binary: np.ndarray) -> float:
        """How much worse the mask fits the object by colour than on the keyframe, in [0, 1].

        Two signs, against the keyframe's own values: the object's pixels are less
        object-like (the mask slid onto background), and the ring just outside is
        more object-like than the background beyond it (the object leaks out of the
        mask). The ring alone is not a sign: a background that looks like the object
        raises both rings alike.
        """
        inner, near, far = self._separation(posterior, binary.astype(np.float32))
        k_inner, k_near, k_far = self._key_rings
        scale = max(k_inner - k_near, 1e-3)
        slid = max(0.0, k_inner - inner)
        leak = max(0.0, (near - far) - (k_near - k_far))
        return min(1.0, (slid + leak) / scale)

    def _measure(
        self, frame: Frame, binary: np.ndarray, fb_ok: np.ndarray, area: float
    ) -> DriftSample:
        if area == 0 or self._area == 0:
            lost = area == 0 and self._area > 0
            if (self._amodal >= 0.5).any() and area == 0:
                return DriftSample(confidence=_HIDDEN_CONFIDENCE, area_change=float(lost))
            return DriftSample(confidence=0.0 if lost else 1.0, area_change=float(lost))
        fb = 1.0 - float(fb_ok[binary].mean())
        drop = self._colour_drop(self._colours.posterior(frame.cells), binary)
        jump = abs(math.log(area / self._area))
        return DriftSample(
            confidence=frame_confidence(fb, drop, jump),
            fb_disagreement=fb,
            colour_drop=max(0.0, drop),
            area_change=jump,
        )


def _motion_error(back: np.ndarray, motion: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How far each pixel's flow is from the object's motion there.

    A pixel ``x`` came from ``x + back(x)``; moving with the object it came from
    ``A^-1 x``. Returns ``(error, displacement)``, ``h x w`` float32 each: the
    distance between the two origins and the object's own displacement at ``x``.
    """
    h, w = back.shape[:2]
    inv = cv2.invertAffineTransform(motion)
    xs = np.arange(w, dtype=np.float32)[None, :]
    ys = np.arange(h, dtype=np.float32)[:, None]
    px = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2] - xs
    py = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2] - ys
    err = np.sqrt((px - back[..., 0]) ** 2 + (py - back[..., 1]) ** 2)
    return err.astype(np.float32), np.sqrt(px * px + py * py).astype(np.float32)


def _uncovered(
    amodal: np.ndarray, shape: np.ndarray, ok: np.ndarray, colour: np.ndarray, threshold: float
) -> np.ndarray:
    """Hidden parts of the extent that come out on this frame (``h x w`` bool).

    A pixel whose flow finds no match on the last frame was not visible there;
    inside the hidden part of the object's extent, and not of a colour the
    global models give to the background, it is the object coming out from
    behind what covered it (opened, 1 px, against speckle of unreliable flow).
    """
    new = (amodal >= threshold) & (shape < threshold) & (ok < 0.5) & (colour >= _UNCOVER_COLOUR)
    return cv2.morphologyEx(new.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8)) > 0


def _moves_with(err: np.ndarray, disp: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Pixels whose consistent flow roughly agrees with the object's motion (``h x w`` bool).

    The tolerance is 2 px plus three quarters of the object's own displacement
    there (see :func:`_motion_error`): the motion of a hidden object is
    extrapolated and may be off by much of itself, but something moving the
    other way (an occluder) stays outside it.
    """
    return (err <= 2.0 + 0.75 * disp) & (ok > 0.5)


def _moves_closely(err: np.ndarray, disp: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Pixels that surely move with the object: it moves at least ``_GROW_MIN_PX`` there
    and their consistent flow is within 1 px plus a quarter of that of its motion."""
    return (disp >= _GROW_MIN_PX) & (err <= 1.0 + 0.25 * disp) & (ok > 0.5)


def _moves_elsewhere(err: np.ndarray, disp: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Pixels whose consistent flow surely does not follow the object: it moves at least
    ``_GROW_MIN_PX`` there and their flow is off by more than 1 px plus half of that."""
    return (disp >= _GROW_MIN_PX) & (err > 1.0 + 0.5 * disp) & (ok > 0.5)


def _replace(amodal: np.ndarray, score: np.ndarray, radius: int) -> np.ndarray:
    """``amodal`` shifted by the offset within ``radius`` that overlaps ``score`` most."""
    box = support(amodal >= 0.5)
    if box is None:
        return amodal
    h, w = amodal.shape
    y0, y1, x0, x1 = box
    template = np.ascontiguousarray((amodal[y0:y1, x0:x1] >= 0.5).astype(np.float32))
    pad = np.pad(score, radius, constant_values=-0.5)
    area = pad[y0 : y1 + 2 * radius, x0 : x1 + 2 * radius]
    corr = cv2.matchTemplate(np.ascontiguousarray(area), template, cv2.TM_CCORR)
    _, _, _, (bx, by) = cv2.minMaxLoc(corr)
    dx, dy = bx - radius, by - radius
    shift = np.float64([[1, 0, dx], [0, 1, dy]])
    return cv2.warpAffine(amodal, shift, (w, h), flags=cv2.INTER_NEAREST)


def support(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """Bounding box ``(y0, y1, x0, x1)`` of the True pixels of ``h x w`` bool, or None."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    return None if w == 0 or h == 0 else (y, y + h, x, x + w)


def sharpen(soft: np.ndarray, threshold: float) -> np.ndarray:
    """Contrast stretch about ``threshold``: keeps the sub-pixel edge, stops blurring."""
    state = (soft - np.float32(threshold)) * np.float32(_STATE_SHARPEN) + np.float32(threshold)
    return np.clip(state, 0.0, 1.0).astype(np.float32)


def _grow(seed: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """The connected parts of ``candidates`` (opened, 1 px) that touch ``seed`` (``h x w`` bool).

    Motion segmentation while an object comes out from behind something: what
    moves closely with the object, is not background-coloured and is connected
    to it is the object, however far it reaches.
    """
    cand = cv2.morphologyEx(candidates.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    if not cand.any():
        return cand > 0
    count, labels = cv2.connectedComponents(cand, connectivity=8)
    touch = cv2.dilate(seed.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    keep = np.zeros(count, bool)
    keep[np.unique(labels[touch & (cand > 0)])] = True
    keep[0] = False
    return keep[labels]


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _band(inside: np.ndarray, radius: int) -> np.ndarray:
    """Pixels within ``radius`` of the boundary of ``inside`` (``h x w`` bool)."""
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    m = inside.astype(np.uint8)
    return (cv2.dilate(m, kernel) > 0) & ~(cv2.erode(m, kernel) > 0)


def _hidden(amodal: np.ndarray, shape: np.ndarray, threshold: float) -> np.ndarray:
    """Substantial parts of the object's extent that are not in view (opened, 3 px)."""
    hidden = ((amodal >= threshold) & (shape < threshold)).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (7, 7))
    return cv2.morphologyEx(hidden, cv2.MORPH_OPEN, kernel) > 0


def _keep_hidden(
    amodal: np.ndarray, visible: np.ndarray, in_front: np.ndarray, threshold: float
) -> np.ndarray:
    """The substantial hidden part of the extent (opened, 2 px), fading a little each frame.

    Only what is covered by something in front (``in_front``, ``h x w`` bool) is
    hidden; the rest of the extent that is not in view is no longer the object
    (it turned or shrank, or the extent was wrong).

    A part that stays hidden is forgotten after some 34 frames (``_HIDDEN_FADE``),
    so that a part the object lost (it turned, or was never there) does not
    linger as a place to re-acquire.
    """
    hidden = ((amodal >= threshold) & ~visible & in_front).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (5, 5))
    hidden = cv2.morphologyEx(hidden, cv2.MORPH_OPEN, kernel) > 0
    return np.where(hidden, amodal * np.float32(_HIDDEN_FADE), 0.0).astype(np.float32)


def _contour_distance(inside: np.ndarray) -> np.ndarray:
    """Distance in pixels of every pixel to the boundary of ``inside``, float32."""
    m = inside.astype(np.uint8)
    d_in = cv2.distanceTransform(m, cv2.DIST_L2, 3)
    d_out = cv2.distanceTransform(1 - m, cv2.DIST_L2, 3)
    return np.where(inside, d_in, d_out).astype(np.float32)
