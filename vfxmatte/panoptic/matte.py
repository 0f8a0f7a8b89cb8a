"""Panoptic matting of one frame: a soft layer per segment, summing to one.

Mask-guided Matting in the Wild (Park et al. 2022) §7.2: every segment of a
panoptic label map, thing or stuff, is matted with its own mask as guidance;
the per-segment alphas are then composed into a partition of unity
(:func:`vfxmatte.panoptic.aggregate.aggregate_layers`, §4.1 order), and each
layer gets its own straight foreground, decontaminated against all the other
layers (the rest of the frame is its background).

The segments are matted with the classical stage, either with the work they share
done once (``sharing="shared"``, :mod:`vfxmatte.panoptic.shared`) or by running it
on the whole frame once per segment (``sharing="none"``, the reference).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vfxmatte.config import param, validate_fields
from vfxmatte.decontaminate.multilevel import MultilevelConfig, estimate_foreground_multilevel
from vfxmatte.errors import InputError
from vfxmatte.matte.classical import ClassicalMatteConfig, matte_classical
from vfxmatte.panoptic.aggregate import aggregate_layers
from vfxmatte.panoptic.labels import Segment
from vfxmatte.panoptic.shared import Box, matte_segments_shared

__all__ = [
    "PanopticConfig",
    "PanopticResult",
    "composition_order",
    "label_indices",
    "matte_segments",
    "preview",
    "segment_colour",
]

log = logging.getLogger(__name__)


@dataclass
class PanopticConfig:
    """Options of panoptic matting."""

    order: str = param(
        "area",
        "Occlusion order for composing the layers: area (larger segments behind smaller "
        "ones: stuff behind things), ids (ascending id is back to front; for an instance "
        "folder, the file order), or none (normalise overlaps).",
        choices=("area", "ids", "none"),
    )
    min_area: int = param(16, "Segments smaller than this (pixels) merge into a neighbour.", min=0)
    max_segments: int = param(256, "The most segments a frame may have (see over_limit).", min=1)
    over_limit: str = param(
        "error",
        "A frame with more than max_segments segments after min_area merging: error, or "
        "merge (merge the smallest into their neighbours until max_segments are left, with "
        "a warning).",
        choices=("error", "merge"),
    )
    sharing: str = param(
        "shared",
        "How the segments are matted: shared (one image check, each segment in its own box, "
        "one matting Laplacian over the union of the bands, the back segment not matted: it "
        "takes what the others leave) or none (the classical matte stage on the whole frame "
        "once per segment, the reference).",
        choices=("shared", "none"),
    )
    ranks: int = param(6, "Cryptomatte ranks (coverage pairs per pixel).", min=2, max=16)
    layer_rgb: bool = param(True, "Also write each layer's premultiplied <segment>.R/G/B.")
    decontaminate: bool = param(True, "Estimate a straight foreground per layer.")

    def __post_init__(self) -> None:
        validate_fields(self, "panoptic.")


@dataclass
class PanopticResult:
    """Soft layers of one frame.

    ``layers``: ``K x H x W`` float32, non-negative, summing to 1 per pixel.
    Each layer's straight foreground (scene-linear) is kept over the box where the
    layer is non-zero: ``fg_crops[k]`` (``h x w x 3`` float32) at ``fg_boxes[k]``;
    it is 0 elsewhere. :meth:`foreground` and :attr:`fgs` give it whole.
    """

    names: list[str]
    layers: np.ndarray
    fg_boxes: list[Box]
    fg_crops: list[np.ndarray]

    def foreground(self, k: int) -> np.ndarray:
        """``H x W x 3`` float32 straight foreground of layer ``k`` (0 where it is absent)."""
        out = np.zeros(self.layers.shape[1:] + (3,), np.float32)
        out[self.fg_boxes[k]] = self.fg_crops[k]
        return out

    def premultiplied(self, k: int, channel: int | None = None) -> np.ndarray:
        """``v_k F_k``, layer ``k``'s colour as it shows in the plate: ``H x W x 3`` float32,
        or ``H x W`` for one ``channel`` (0, 1, 2)."""
        box = self.fg_boxes[k]
        if channel is None:
            out = np.zeros(self.layers.shape[1:] + (3,), np.float32)
            out[box] = self.fg_crops[k] * self.layers[k][box][..., None]
        else:
            out = np.zeros(self.layers.shape[1:], np.float32)
            out[box] = self.fg_crops[k][..., channel] * self.layers[k][box]
        return out

    @property
    def fgs(self) -> np.ndarray:
        """``K x H x W x 3`` float32, every layer's foreground (memory: 12 bytes/pixel/layer)."""
        return np.stack([self.foreground(k) for k in range(len(self.names))])


def composition_order(segments: Sequence[Segment], mode: str) -> list[int] | None:
    """Back-to-front segment indices for :func:`aggregate_layers`, or None."""
    if mode == "none":
        return None
    if mode == "ids":
        return sorted(range(len(segments)), key=lambda i: segments[i].id)
    return sorted(range(len(segments)), key=lambda i: (-segments[i].area, segments[i].id))


def label_indices(segments: Sequence[Segment], shape: tuple[int, int]) -> np.ndarray:
    """``H x W`` int32 map of segment indices, from the segments' common label map.

    Raises:
        InputError: segments of different label maps, a label map of another size,
            or ids in the label map that no segment has.
    """
    label_map = segments[0].label_map
    if label_map is None or any(s.label_map is not label_map for s in segments):
        raise InputError("The segments of one frame must come from one label map.")
    if label_map.shape != shape:
        raise InputError(
            f"The label map is {label_map.shape[1]}x{label_map.shape[0]} but the frame is "
            f"{shape[1]}x{shape[0]}."
        )
    ids = np.array([s.id for s in segments], dtype=np.int64)
    order = np.argsort(ids, kind="stable")
    where = np.clip(np.searchsorted(ids[order], label_map), 0, len(ids) - 1)
    stray = ids[order][where] != label_map
    if stray.any():
        missing = np.unique(label_map[stray])[:10].tolist()
        raise InputError(f"The label map has ids {missing} that no segment has.")
    return order[where].astype(np.int32)


def matte_segments(
    display: np.ndarray,
    linear: np.ndarray,
    segments: Sequence[Segment],
    config: PanopticConfig | None = None,
    *,
    matte_config: ClassicalMatteConfig | None = None,
    colour_config: MultilevelConfig | None = None,
    order: Sequence[int] | None = None,
) -> PanopticResult:
    """Soft layers and foregrounds for the segments of one frame.

    Args:
        display: ``H x W x 3`` float32 display-referred sRGB in [0,1] (the matte input).
        linear: ``H x W x 3`` float32 scene-linear plate (the colour written out).
        segments: the frame's segments (their masks partition the frame; a segment
            may be empty, e.g. an object out of view on this frame: its layer is 0).
        config: options; ``config.sharing`` picks how the segments are matted.
        matte_config, colour_config: the classical matte and the multilevel
            foreground options.
        order: back-to-front segment indices, e.g. a keyframe's kept for a whole
            shot or an instance folder's; None takes ``config.order``.

    Returns:
        The layers (summing to 1) and each layer's straight foreground.
    """
    config = config or PanopticConfig()
    if not segments:
        raise InputError("Panoptic matting needs at least one segment.")
    shape = display.shape[:2]
    labels = label_indices(segments, shape)
    if order is None:
        order = composition_order(segments, config.order)
    k_count = len(segments)
    if config.sharing == "shared":
        back = order[0] if order is not None else None
        alphas = matte_segments_shared(display, labels, k_count, matte_config, back=back)
    else:
        alphas = np.zeros((k_count, *shape), np.float32)
        for k, segment in enumerate(segments):
            if segment.area:
                guide = (labels == k).astype(np.float32)
                alphas[k], _ = matte_classical(display, guide, matte_config)
    layers = aggregate_layers(alphas, labels, order=order)
    del alphas
    boxes, crops = [], []
    for k in range(k_count):
        box, fg = _layer_foreground(linear, layers[k], config, colour_config)
        boxes.append(box)
        crops.append(fg)
    return PanopticResult([s.name for s in segments], layers, boxes, crops)


def _layer_foreground(
    linear: np.ndarray, layer: np.ndarray, config: PanopticConfig, colour: MultilevelConfig | None
) -> tuple[Box, np.ndarray]:
    """Straight foreground of one layer over the box where it is non-zero.

    The multilevel estimate (Germer et al. 2020) treats the other layers as the
    background; its crop is the layer's box grown by the solver's context margin.
    """
    h, w = layer.shape
    box = _nonzero_box(layer)
    if box is None:
        return (slice(0, 0), slice(0, 0)), np.zeros((0, 0, 3), np.float32)
    if not config.decontaminate:
        return box, np.where(layer[box][..., None] > 0, linear[box], 0).astype(np.float32)
    margin = (colour or MultilevelConfig()).context_margin
    ys, xs = box
    grown = (
        slice(max(0, ys.start - margin), min(h, ys.stop + margin)),
        slice(max(0, xs.start - margin), min(w, xs.stop + margin)),
    )
    fg = estimate_foreground_multilevel(linear[grown], layer[grown], colour)
    inner = (
        slice(ys.start - grown[0].start, ys.stop - grown[0].start),
        slice(xs.start - grown[1].start, xs.stop - grown[1].start),
    )
    return box, np.ascontiguousarray(fg[inner])


def _nonzero_box(layer: np.ndarray) -> Box | None:
    nonzero = layer > 0
    rows, cols = np.flatnonzero(nonzero.any(axis=1)), np.flatnonzero(nonzero.any(axis=0))
    if not rows.size:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def segment_colour(index: int) -> np.ndarray:
    """A distinct display colour for segment ``index`` (golden-angle hues), RGB in [0,1]."""
    import colorsys

    hue = (index * 0.618033988749895) % 1.0
    return np.array(colorsys.hsv_to_rgb(hue, 0.65, 0.95), np.float32)


def preview(result: PanopticResult) -> np.ndarray:
    """``H x W x 3`` uint8: the layers blended in their segment colours."""
    colours = np.stack([segment_colour(k) for k in range(len(result.names))])
    rgb = np.einsum("khw,kc->hwc", result.layers, colours)
    return (np.clip(rgb, 0, 1) * 255 + 0.5).astype(np.uint8)
