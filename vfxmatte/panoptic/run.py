"""Panoptic matting of stills and sequences: read, matte every segment, write layers.

Per frame one EXR (float, because Cryptomatte ids must not pass through half):

* ``R,G,B``: the scene-linear plate, for viewing;
* ``<segment>.A`` per segment (and ``<segment>.R/G/B``, premultiplied: ``v_k F_k``);
* ``CryptoObject00.R/G/B/A`` ... with the ``cryptomatte/<key>/...`` metadata, so
  the file opens in Nuke's Cryptomatte node;

plus a colour-coded preview PNG beside it under ``preview/``.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import numpy as np

from vfxmatte.engine.stages import ColourContext
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.image import read_image, write_image
from vfxmatte.io.sequence import FramePattern, resolve_frames
from vfxmatte.panoptic.cryptomatte import write_cryptomatte
from vfxmatte.panoptic.labels import (
    read_coco_segments_info,
    read_label_map,
    segments_from_label_map,
)
from vfxmatte.panoptic.matte import PanopticConfig, PanopticResult, matte_segments, preview

__all__ = ["PanopticJob", "run_panoptic", "write_panoptic"]

log = logging.getLogger(__name__)


@dataclass
class PanopticJob:
    """Inputs and outputs of one ``vfxmatte panoptic`` run."""

    plate: str
    labels: str
    output: str
    frames: str | None = None
    segments_info: str | None = None
    colourspace: str = "auto"


def _layer_name(name: str) -> str:
    """A segment name usable as an EXR layer (no dots, no spaces)."""
    cleaned = "".join(c if c.isalnum() or c in "_-" else "_" for c in name)
    return cleaned or "segment"


def write_panoptic(
    path: str,
    result: PanopticResult,
    linear: np.ndarray,
    config: PanopticConfig,
    metadata: dict | None = None,
) -> None:
    """Write one frame's layers, Cryptomatte and preview (see the module docstring)."""
    names = [_layer_name(n) for n in result.names]
    if len(set(names)) != len(names):
        raise InputError(f"Segment names are not unique as EXR layers: {', '.join(names)}.")
    extra = {c: linear[..., i] for i, c in enumerate("RGB")}
    for name, layer, fg in zip(names, result.layers, result.fgs, strict=True):
        extra[f"{name}.A"] = layer
        if config.layer_rgb:
            for i, c in enumerate("RGB"):
                extra[f"{name}.{c}"] = fg[..., i] * layer
    coverages = dict(zip(names, result.layers, strict=True))
    meta = {k: v for k, v in (metadata or {}).items() if not k.startswith("cryptomatte/")}
    write_cryptomatte(path, coverages, ranks=config.ranks, metadata=meta, extra_channels=extra)
    folder, base = os.path.split(path)
    write_image(
        os.path.join(folder, "preview", os.path.splitext(base)[0] + ".png"),
        preview(result).astype(np.float32) / 255.0,
        ["R", "G", "B"],
        dtype="uint8",
    )


def run_panoptic(job: PanopticJob, config: PanopticConfig | None = None) -> list[int]:
    """Matte every frame of ``job``; returns the frame numbers written.

    ``plate`` and ``labels`` are both stills, or both sequences with the same
    frame numbers (a label map per frame).
    """
    config = config or PanopticConfig()
    plate, labels, out = (FramePattern.parse(p) for p in (job.plate, job.labels, job.output))
    frames = resolve_frames(plate, job.frames)
    if not labels.is_single:
        resolve_frames(labels, frames)
    if len(frames) > 1 and out.is_single:
        raise ConfigError(f"The output '{job.output}' needs a frame token (####) for a shot.")
    info = read_coco_segments_info(job.segments_info) if job.segments_info else None
    for number in frames:
        frame = read_image(plate.path(number), "RGB", number=number)
        label_map = read_label_map(labels.path(number))
        if label_map.shape != frame.pixels.shape[:2]:
            raise InputError(
                f"The label map '{labels.path(number)}' is {label_map.shape[1]}x"
                f"{label_map.shape[0]} but the plate is {frame.width}x{frame.height}."
            )
        segments = segments_from_label_map(
            label_map, info=info, min_area=config.min_area, max_segments=config.max_segments
        )
        colour = ColourContext.resolve(job.colourspace, frame)
        display = colour.display(frame.pixels)
        linear = colour.linear_plate(frame.pixels)
        result = matte_segments(display, linear, segments, config)
        write_panoptic(out.path(number), result, linear, config, frame.metadata)
        log.info("Frame %d: %d segments", number, len(segments))
    return frames
