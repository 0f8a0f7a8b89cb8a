"""Panoptic matting of one frame: a soft layer per segment, summing to one.

Mask-guided Matting in the Wild (Park et al. 2022) §7.2: every segment of a
panoptic label map, thing or stuff, is matted with its own mask as guidance;
the per-segment alphas are then composed into a partition of unity
(:func:`vfxmatte.panoptic.aggregate.aggregate_layers`, §4.1 order), and each
layer gets its own straight foreground, decontaminated against all the other
layers (the rest of the frame is its background).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vfxmatte.config import param, validate_fields
from vfxmatte.decontaminate.multilevel import MultilevelConfig, estimate_foreground_multilevel
from vfxmatte.matte.classical import ClassicalMatteConfig, matte_classical
from vfxmatte.panoptic.aggregate import aggregate_layers
from vfxmatte.panoptic.labels import Segment

__all__ = ["PanopticConfig", "PanopticResult", "matte_segments", "segment_colour"]

log = logging.getLogger(__name__)


@dataclass
class PanopticConfig:
    """Options of panoptic matting."""

    order: str = param(
        "area",
        "Occlusion order for composing the layers: area (larger segments behind smaller "
        "ones: stuff behind things), ids (ascending id is back to front), or none (normalise "
        "overlaps).",
        choices=("area", "ids", "none"),
    )
    min_area: int = param(16, "Segments smaller than this (pixels) merge into a neighbour.", min=0)
    max_segments: int = param(256, "Refuse label maps with more segments than this.", min=1)
    ranks: int = param(6, "Cryptomatte ranks (coverage pairs per pixel).", min=2, max=16)
    layer_rgb: bool = param(True, "Also write each layer's premultiplied <segment>.R/G/B.")
    decontaminate: bool = param(True, "Estimate a straight foreground per layer.")

    def __post_init__(self) -> None:
        validate_fields(self, "panoptic.")


@dataclass
class PanopticResult:
    """Soft layers of one frame.

    ``layers``: ``K x H x W`` float32, non-negative, summing to 1 per pixel.
    ``fgs``: ``K x H x W x 3`` float32 straight foreground per layer, scene-linear.
    """

    names: list[str]
    layers: np.ndarray
    fgs: np.ndarray


def composition_order(segments: Sequence[Segment], mode: str) -> list[int] | None:
    """Back-to-front segment indices for :func:`aggregate_layers`, or None."""
    if mode == "none":
        return None
    if mode == "ids":
        return sorted(range(len(segments)), key=lambda i: segments[i].id)
    return sorted(range(len(segments)), key=lambda i: -segments[i].area)


def matte_segments(
    display: np.ndarray,
    linear: np.ndarray,
    segments: Sequence[Segment],
    config: PanopticConfig | None = None,
    *,
    matte_config: ClassicalMatteConfig | None = None,
    colour_config: MultilevelConfig | None = None,
) -> PanopticResult:
    """Soft layers and foregrounds for the segments of one frame.

    Args:
        display: ``H x W x 3`` float32 display-referred sRGB in [0,1] (the matte input).
        linear: ``H x W x 3`` float32 scene-linear plate (the colour written out).
        segments: the label map's segments (their masks partition the frame).
    """
    config = config or PanopticConfig()
    h, w = display.shape[:2]
    labels = np.zeros((h, w), np.int64)
    alphas = np.zeros((len(segments), h, w), np.float32)
    for k, segment in enumerate(segments):
        labels[segment.mask] = k
        alphas[k], _ = matte_classical(display, segment.mask.astype(np.float32), matte_config)
    order = composition_order(segments, config.order)
    layers = aggregate_layers(alphas, labels, order=order)
    fgs = np.zeros((len(segments), h, w, 3), np.float32)
    for k in range(len(segments)):
        if config.decontaminate:
            fgs[k] = estimate_foreground_multilevel(linear, layers[k], colour_config)
        else:
            fgs[k] = np.where(layers[k][..., None] > 0, linear, 0)
    return PanopticResult([s.name for s in segments], layers, fgs)


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
