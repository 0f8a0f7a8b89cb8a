"""Weight-free mask propagation with dense optical flow (the ``flow`` backend).

A keyframe mask is carried from frame to frame by backward warping: for the
new frame ``t`` the flow ``t -> t-1`` is estimated on greyscale copies at a
working resolution (long side ``work_long_side``), upsampled and rescaled to
the plate's size, and the previous mask is sampled with ``cv2.remap`` at full
resolution. Every pixel of the new frame thus asks "where was I before?", which
leaves no gaps where the object grows or turns. The warped mask is thresholded
and cleaned (:mod:`vfxmatte.propagate.cleanup`); what is warped to the next
frame is a soft copy of it (see :func:`_sharpen` for why not the 0/1 mask).
Full-resolution work is confined to the object's box grown by the largest flow
vector. Memory is one mask at full resolution plus one small greyscale frame,
whatever the length of the shot.

Known limit, shared by every flow-only propagator: background that the object
uncovers takes the mask value of what covered it whenever its flow is the
background's. DIS mostly gives such pixels the occluder's motion, which keeps
trailing edges clean, but an object leaving the frame can leave a sliver at
the edge. A later (possibly empty) keyframe, or ``feed="matte"``, corrects it.

Flow methods: DIS, Kroeger et al., "Fast Optical Flow using Dense Inverse
Search", ECCV 2016 (``cv2.DISOpticalFlow``), and Farnebäck, "Two-Frame Motion
Estimation Based on Polynomial Expansion", SCIA 2003.

Frames are display-referred RGB, ``H×W×3`` float32 in [0, 1]; masks are
``H×W`` float32 in [0, 1].
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from vfxmatte.config import param, validate_fields
from vfxmatte.errors import InputError
from vfxmatte.propagate.checks import check_image, check_mask, frame_positions
from vfxmatte.propagate.cleanup import clean_mask

__all__ = ["FlowPropagateConfig", "FlowPropagator", "propagate_sequence"]

log = logging.getLogger(__name__)

_DIS_PRESETS = {
    "ultrafast": cv2.DISOpticalFlow_PRESET_ULTRAFAST,
    "fast": cv2.DISOpticalFlow_PRESET_FAST,
    "medium": cv2.DISOpticalFlow_PRESET_MEDIUM,
}

# Contrast stretch of the soft state about the threshold after each warp (see _sharpen).
_STATE_SHARPEN = 2.0

_Box = tuple[int, int, int, int]  # (y0, y1, x0, x1), half-open, full-resolution pixels

# Farnebäck: pyramid scale, levels, window, iterations, poly_n, poly_sigma, flags.
_FARNEBACK_ARGS = (0.5, 4, 15, 3, 5, 1.1, 0)


@dataclass
class FlowPropagateConfig:
    """Options of the ``flow`` propagation backend."""

    method: str = param("dis", "Optical flow algorithm.", choices=("dis", "farneback"))
    dis_preset: str = param(
        "medium", "Speed/quality preset of DIS flow.", choices=("ultrafast", "fast", "medium")
    )
    work_long_side: int = param(
        512,
        "Long side in pixels at which flow is computed; masks are warped at full resolution.",
        min=64,
        max=8192,
    )
    threshold: float = param(
        0.5, "Warped values at or above this are foreground.", min=0.01, max=0.99
    )
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
        "What is warped to the next frame: the propagated mask, or the final matte of the "
        "previous frame when the engine supplies it.",
        choices=("mask", "matte"),
    )
    keep_soft: bool = param(False, "Return the warped soft value instead of a 0/1 mask.")

    def __post_init__(self) -> None:
        validate_fields(self, "propagate.flow.")


class FlowPropagator:
    """Carries a mask through a shot one frame at a time, in either direction.

    The caller decides the direction by the order in which it feeds frames::

        prop = FlowPropagator(FlowPropagateConfig())
        mask = prop.reset(key_image, key_mask)   # the cleaned keyframe mask
        for image in frames_after_key:
            mask = prop.step(image)              # the mask of this frame
            prop.correct(final_alpha)            # optional, used when feed == "matte"

    State: the last frame's greyscale copy at working resolution (``h×w``
    uint8), the soft mask to warp next (``H×W`` float32) and the bounding box
    of its non-zero pixels. Full-resolution work in :meth:`step` is confined to
    that box grown by the largest flow vector, so its cost follows the size of
    the object rather than of the frame.
    """

    def __init__(self, config: FlowPropagateConfig | None = None) -> None:
        self.config = config if config is not None else FlowPropagateConfig()
        self._dis = _make_dis(self.config)
        self._shape: tuple[int, int] | None = None  # (H, W)
        self._work: tuple[int, int] = (0, 0)  # (w, h), cv2 order
        self._prev_grey: np.ndarray | None = None  # [h, w] uint8
        self._state: np.ndarray | None = None  # [H, W] float32 in [0, 1]
        self._box: _Box | None = None  # non-zero pixels of _state; None when empty

    @property
    def shape(self) -> tuple[int, int] | None:
        """``(H, W)`` of the shot, or None before :meth:`reset`."""
        return self._shape

    def reset(
        self,
        key_image: np.ndarray,
        key_mask: np.ndarray,
        *,
        index: int | None = None,
        allow_empty: bool = False,
    ) -> np.ndarray:
        """Start (or re-anchor) from a keyframe.

        Args:
            key_image: ``H×W×3`` float32 display-referred RGB in [0, 1]
                (``H×W`` grey and ``H×W×4`` are accepted; alpha is ignored).
            key_mask: ``H×W`` float32 (or bool) in [0, 1].
            index: frame number, only used in error messages.
            allow_empty: accept a mask with no pixel at or above ``threshold``
                (a keyframe saying "the object is not in view here").

        Returns:
            The cleaned keyframe mask, ``H×W`` float32: 0/1, or soft when
            ``keep_soft`` is set.

        Raises:
            InputError: for a malformed image or mask, a size mismatch, NaN, or
                (unless ``allow_empty``) a mask with no pixel at or above ``threshold``.
        """
        where = f" of frame {index}" if index is not None else ""
        image = check_image(key_image, f"keyframe image{where}")
        mask = check_mask(key_mask, image.shape[:2], f"keyframe mask{where}")
        if not allow_empty and not (mask >= self.config.threshold).any():
            raise InputError(
                f"The keyframe mask{where} is empty: no pixel reaches the threshold "
                f"{self.config.threshold} (largest value {float(mask.max()):.3g}). Paint the "
                "object on the keyframe, lower 'threshold', or check that the mask is not "
                "inverted."
            )
        h, w = image.shape[:2]
        if self._shape != (h, w):
            scale = min(1.0, self.config.work_long_side / max(h, w))
            self._work = (max(8, round(w * scale)), max(8, round(h * scale)))
            self._shape = (h, w)
        self._prev_grey = self._grey(image, f"keyframe image{where}")
        box = _support(mask > 0)
        if box is None:
            self._state, self._box = np.zeros(self._shape, np.float32), None
            return np.zeros(self._shape, np.float32)
        return self._finish(mask[_slices(box)], box)

    def step(self, image: np.ndarray, *, index: int | None = None) -> np.ndarray:
        """Propagate the current mask to the next image in the direction of travel.

        Args:
            image: ``H×W×3`` float32 display-referred RGB in [0, 1], the same
                size as the keyframe.
            index: frame number, only used in error messages.

        Returns:
            ``H×W`` float32 mask of this frame: 0/1, or soft when ``keep_soft``.
            All zeros once the mask is empty.
        """
        if self._state is None or self._prev_grey is None:
            raise RuntimeError("FlowPropagator.step() called before reset(): give a keyframe.")
        what = "frame" if index is None else f"frame {index}"
        image = check_image(image, what)
        if image.shape[:2] != self._shape:
            raise InputError(
                f"Frame size changed within the shot: expected {self._shape[1]}×{self._shape[0]}"
                f" (image shape {self._shape}), found {image.shape[1]}×{image.shape[0]} (image "
                f"shape {image.shape}) at {what}. Every frame of a shot must have the same size."
            )
        grey = self._grey(image, what)
        if self._box is None:  # nothing left to carry
            self._prev_grey = grey
            return np.zeros(self._shape, np.float32)
        flow = self._flow(grey, self._prev_grey)  # [h, w, 2], this frame -> previous
        flow *= (self._shape[1] / flow.shape[1], self._shape[0] / flow.shape[0])  # full-res px
        roi = self._reach(flow)
        warped = self._warp(flow, roi)
        self._prev_grey = grey
        return self._finish(warped, roi)

    def correct(self, matte: np.ndarray) -> None:
        """Replace the state with the engine's final matte of the frame just produced.

        Only used when ``feed == "matte"``; with ``feed == "mask"`` it does
        nothing, so an engine can call it unconditionally.

        Args:
            matte: ``H×W`` float32 alpha in [0, 1] of the frame last returned
                by :meth:`reset` or :meth:`step`.
        """
        if self.config.feed != "matte":
            return
        if self._shape is None:
            raise RuntimeError("FlowPropagator.correct() called before reset(): give a keyframe.")
        state = _sharpen(check_mask(matte, self._shape, "matte"), self.config.threshold)
        self._state, self._box = state, _support(state > 0)

    def fork(self) -> FlowPropagator:
        """An independent copy of this propagator and its state (for the other direction)."""
        other = copy.copy(self)
        other._dis = _make_dis(self.config)
        if self._state is not None:
            other._state = self._state.copy()
        return other

    def _grey(self, image: np.ndarray, what: str) -> np.ndarray:
        """``H×W×C`` float [0, 1] -> ``h×w`` uint8 grey at working resolution.

        Raises:
            InputError: when the colour channels hold NaN or infinity.
        """
        if (image.shape[1], image.shape[0]) != self._work:
            image = cv2.resize(image, self._work, interpolation=cv2.INTER_AREA)
        if image.ndim == 3:
            code = cv2.COLOR_RGB2GRAY if image.shape[2] == 3 else cv2.COLOR_RGBA2GRAY
            image = cv2.cvtColor(image, code)
        if not np.isfinite(image).all():
            raise InputError(
                f"The {what} contains NaN or infinite values; fix or clamp the plate first."
            )
        return np.clip(image * 255.0 + 0.5, 0, 255).astype(np.uint8)

    def _flow(self, grey: np.ndarray, prev_grey: np.ndarray) -> np.ndarray:
        """Flow ``f`` with ``grey(x) ≈ prev_grey(x + f(x))``: ``h×w×2`` float32 (dx, dy)."""
        if self._dis is not None:
            return self._dis.calc(grey, prev_grey, None)
        return cv2.calcOpticalFlowFarneback(grey, prev_grey, None, *_FARNEBACK_ARGS)

    def _reach(self, flow: np.ndarray) -> _Box:
        """Full-res box outside which the warped state is surely zero.

        A pixel samples the previous state at most ``max |flow|`` away (plus
        one pixel of bilinear footprint), so the state's box grown by that
        much holds every non-zero result.
        """
        h, w = self._shape
        y0, y1, x0, x1 = self._box
        dx = float(np.abs(flow[..., 0]).max()) + 2.0
        dy = float(np.abs(flow[..., 1]).max()) + 2.0
        return (
            max(0, int(y0 - dy)),
            min(h, int(np.ceil(y1 + dy))),
            max(0, int(x0 - dx)),
            min(w, int(np.ceil(x1 + dx))),
        )

    def _warp(self, flow: np.ndarray, roi: _Box) -> np.ndarray:
        """Backward-warp the state inside ``roi``.

        Args:
            flow: ``h×w×2`` float32 at working resolution, already in
                full-resolution pixels.
            roi: full-resolution box ``(y0, y1, x0, x1)``.

        Returns:
            The warped state inside ``roi``, float32 in [0, 1].
        """
        h_full, w_full = self._shape
        y0, y1, x0, x1 = roi
        sx, sy = flow.shape[1] / w_full, flow.shape[0] / h_full
        # Upsample the flow for the box only; same pixel-centre convention as cv2.resize.
        to_work = np.float32([[sx, 0, (x0 + 0.5) * sx - 0.5], [0, sy, (y0 + 0.5) * sy - 0.5]])
        coords = cv2.warpAffine(
            flow,
            to_work,
            (x1 - x0, y1 - y0),
            flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_REPLICATE,
        )
        coords[..., 0] += np.arange(x0, x1, dtype=np.float32)  # displacement -> position
        coords[..., 1] += np.arange(y0, y1, dtype=np.float32)[:, None]
        return cv2.remap(
            self._state, coords, None, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
        )

    def _finish(self, soft: np.ndarray, roi: _Box) -> np.ndarray:
        """Threshold and clean ``soft``, keep the new state, return the output mask.

        Args:
            soft: the warped (or keyframe) mask inside ``roi``, float32 in [0, 1];
                the mask is zero outside ``roi``.
            roi: full-resolution box ``(y0, y1, x0, x1)`` of ``soft``.

        Returns:
            ``H×W`` float32 output: 0/1, or soft when ``keep_soft``.
        """
        cfg = self.config
        raw = soft >= cfg.threshold
        # Correct inside the box alone: outside it is background, so a background
        # region touching the box edge also reaches the outside and is no hole.
        binary = clean_mask(raw, cfg.fill_holes_area, cfg.min_island_area)
        changed = binary != raw
        state = _sharpen(soft, cfg.threshold)
        state[changed] = binary[changed]
        if cfg.keep_soft:
            out_roi = soft.copy()
            out_roi[changed] = binary[changed]
        else:
            out_roi = binary.astype(np.float32)
        self._state = np.zeros(self._shape, np.float32)
        self._state[_slices(roi)] = state
        box = _support(state > 0)
        self._box = None if box is None else _offset(box, roi)
        out = np.zeros(self._shape, np.float32)
        out[_slices(roi)] = out_roi
        return out


def propagate_sequence(
    get_frame: Callable[[int], np.ndarray],
    indices: Sequence[int],
    key_masks: Mapping[int, np.ndarray],
    config: FlowPropagateConfig | None = None,
    *,
    matte_of: Callable[[int], np.ndarray | None] | None = None,
) -> Iterator[tuple[int, np.ndarray]]:
    """Propagate keyframe masks through a shot, streaming frames.

    Order of the yielded frames, with ``k0`` the first keyframe in ``indices``:
    ``k0``, then every frame after it in shot order, then every frame before it
    in reverse order (``k0-1`` down to the first). Forward, each later keyframe
    re-anchors the propagation (its own mask is yielded, cleaned; a later
    keyframe may be empty, meaning "the object is out of view"); backward, only
    ``k0`` is used. ``get_frame`` is called once per index, lazily; the state
    held is one full-resolution mask per direction, whatever the shot's length.

    Args:
        get_frame: frame number -> ``H×W×3`` float32 display-referred RGB in [0, 1].
        indices: frame numbers of the shot in shot order, e.g. ``range(1001, 1101)``.
        key_masks: frame number -> ``H×W`` float32 mask in [0, 1].
        config: options; defaults to :class:`FlowPropagateConfig`.
        matte_of: with ``feed == "matte"``, called as ``matte_of(i)`` after the
            consumer has taken frame ``i`` and before the next frame is read;
            it returns the final ``H×W`` alpha of frame ``i`` (or None), which
            then replaces the mask warped to the next frame.

    Yields:
        ``(index, mask)`` with ``mask`` ``H×W`` float32 (0/1 unless ``keep_soft``).

    Raises:
        InputError: for an empty ``key_masks``, a keyframe not in ``indices``,
            repeated indices, or a bad frame or mask (see :meth:`FlowPropagator.reset`).
    """
    config = config if config is not None else FlowPropagateConfig()
    order = list(indices)
    start = _first_key_position(order, key_masks)
    feed = matte_of if config.feed == "matte" else None

    forward = FlowPropagator(config)
    key = order[start]
    mask = forward.reset(get_frame(key), key_masks[key], index=key)
    backward = forward.fork() if start > 0 else None
    yield key, mask
    _correct(feed, key, forward, backward)

    lost = False
    for i in order[start + 1 :]:
        if i in key_masks:
            mask = forward.reset(get_frame(i), key_masks[i], index=i, allow_empty=True)
            lost = not mask.any()  # an empty keyframe is deliberate: no warning
        else:
            mask = forward.step(get_frame(i), index=i)
            lost = _warn_if_lost(i, mask, lost)
        yield i, mask
        _correct(feed, i, forward)
    del forward

    if backward is None:
        return
    lost = False
    for i in reversed(order[:start]):
        mask = backward.step(get_frame(i), index=i)
        lost = _warn_if_lost(i, mask, lost)
        yield i, mask
        _correct(feed, i, backward)


def _make_dis(config: FlowPropagateConfig) -> cv2.DISOpticalFlow | None:
    """The DIS flow object for ``config``, or None for another method.

    The preset sets patch size, stride and iterations. Flow is computed on the
    finest level (``work_long_side`` is the flow resolution), and without the
    variational refinement: that smoothing spreads the background's motion
    into the object's border, which measured as a steady lag of the propagated
    mask (about 10% of the motion per frame on the tests' synthetic shot).
    """
    if config.method != "dis":
        return None
    dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[config.dis_preset])
    dis.setFinestScale(0)
    dis.setVariationalRefinementIterations(0)
    return dis


def _sharpen(soft: np.ndarray, threshold: float) -> np.ndarray:
    """Contrast stretch of a soft mask about ``threshold``; a new float32 array.

    The propagated state stays soft: re-thresholding a bilinearly warped 0/1
    mask rounds its edge to whole pixels every frame, and that rounding drifts
    (a steady half-pixel motion grows the mask by a pixel a frame). Stretching
    about the threshold keeps the sub-pixel edge where it is while stopping
    repeated resampling from blurring it without bound.
    """
    state = soft - np.float32(threshold)
    state *= np.float32(_STATE_SHARPEN)
    state += np.float32(threshold)
    return np.clip(state, 0.0, 1.0, out=state)


def _support(mask: np.ndarray) -> _Box | None:
    """Bounding box ``(y0, y1, x0, x1)`` of the True pixels of ``H×W`` bool, or None."""
    x, y, w, h = cv2.boundingRect(np.ascontiguousarray(mask).view(np.uint8))
    return None if w == 0 or h == 0 else (y, y + h, x, x + w)


def _offset(box: _Box, origin: _Box) -> _Box:
    """``box`` given inside ``origin`` -> full-frame coordinates."""
    return (box[0] + origin[0], box[1] + origin[0], box[2] + origin[2], box[3] + origin[2])


def _slices(box: _Box) -> tuple[slice, slice]:
    return slice(box[0], box[1]), slice(box[2], box[3])


def _first_key_position(order: list[int], key_masks: Mapping[int, np.ndarray]) -> int:
    """Position in ``order`` of the first keyframe; checks indices and keys."""
    if not key_masks:
        raise InputError("No keyframe mask given: flow propagation needs at least one.")
    position = frame_positions(order, allow_empty=True)
    missing = sorted(k for k in key_masks if k not in position)
    if missing:
        span = f"{order[0]}-{order[-1]}, {len(order)} frames" if order else "no frames"
        raise InputError(
            f"Keyframe(s) {missing} are not among the frames to process ({span}). "
            "Give keyframes inside the frame range."
        )
    return min(position[k] for k in key_masks)


def _correct(
    matte_of: Callable[[int], np.ndarray | None] | None,
    index: int,
    *props: FlowPropagator | None,
) -> None:
    """Feed the engine's matte of ``index`` back into the propagators that continue from it."""
    if matte_of is None:
        return
    matte = matte_of(index)
    if matte is None:
        return
    for prop in props:
        if prop is not None:
            prop.correct(matte)


def _warn_if_lost(index: int, mask: np.ndarray, lost: bool) -> bool:
    """Warn once when the propagated mask becomes empty; returns the new 'lost' flag."""
    empty = not mask.any()
    if empty and not lost:
        log.warning(
            "The propagated mask is empty from frame %s on: the object left the frame or the "
            "flow lost it. Add a keyframe there.",
            index,
        )
    return empty
