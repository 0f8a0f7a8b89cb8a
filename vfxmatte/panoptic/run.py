"""Panoptic matting of stills and shots: read, matte every segment, write layers.

Three inputs give each frame its segments:

* ``labels``: a label map per frame (a still, or a pattern with the plate's frames),
  PNG/EXR ids or COCO panoptic (with ``segments_info`` naming them);
* ``instances``: a folder of instance masks (:mod:`vfxmatte.panoptic.instances`);
* ``labels`` + ``propagate``: one keyframe label map carried through the shot
  (:mod:`vfxmatte.panoptic.keyframe`).

Per frame one EXR (float, because Cryptomatte ids must not pass through half):

* ``R,G,B``: the scene-linear plate, for viewing;
* ``<segment>.A`` per segment (and ``<segment>.R/G/B``, premultiplied: ``v_k F_k``);
* ``CryptoObject00.R/G/B/A`` ... with the ``cryptomatte/<key>/...`` metadata, so
  the file opens in Nuke's Cryptomatte node;

plus a colour-coded preview PNG beside it under ``preview/``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

from vfxmatte.engine.config import PropagateStageConfig
from vfxmatte.engine.paths import guarded_writes
from vfxmatte.engine.stages import ColourContext, check_plate_size
from vfxmatte.errors import ConfigError, InputError, closest_hint
from vfxmatte.io.image import write_image
from vfxmatte.io.plate import Plate, is_video, open_plate
from vfxmatte.io.sequence import FramePattern, resolve_frames
from vfxmatte.io.write_guard import PathSet
from vfxmatte.matte.classical import ClassicalMatteConfig
from vfxmatte.panoptic.cryptomatte import write_cryptomatte
from vfxmatte.panoptic.instances import limit_instances, scan_instances
from vfxmatte.panoptic.keyframe import KeyframeSegments, propagate_label_map
from vfxmatte.panoptic.labels import (
    Segment,
    read_coco_segments_info,
    read_label_map,
    segments_from_label_map,
)
from vfxmatte.panoptic.matte import (
    PanopticConfig,
    PanopticResult,
    composition_order,
    matte_segments,
    preview,
)

__all__ = ["PanopticJob", "run_panoptic", "write_panoptic"]

log = logging.getLogger(__name__)

PROPAGATE_BACKENDS = ("flow", "snapcut", "sam2")


@dataclass
class PanopticJob:
    """Inputs and outputs of one ``vfxmatte panoptic`` run.

    Give ``labels`` (a label map or a pattern of them) or ``instances`` (a mask
    folder). ``propagate`` (``flow``, ``snapcut`` or ``sam2``) carries a single ``labels`` map,
    drawn on frame ``key_frame`` (default: the first frame), through the shot.
    """

    plate: str
    output: str
    labels: str | None = None
    frames: str | None = None
    segments_info: str | None = None
    colourspace: str = "auto"
    instances: str | None = None
    key_frame: int | None = None
    propagate: str | None = None
    propagate_config: PropagateStageConfig = field(default_factory=PropagateStageConfig)

    def check(self) -> None:
        """Raise :class:`ConfigError` for a combination of inputs that cannot work."""
        if (self.labels is None) == (self.instances is None):
            raise ConfigError(
                "Give the segments with --labels (label maps) or with --instances (a folder "
                "of instance masks), exactly one of them."
            )
        if self.propagate is not None:
            if self.propagate not in PROPAGATE_BACKENDS:
                raise ConfigError(
                    f"--propagate must be flow, snapcut or sam2, got '{self.propagate}'."
                    + closest_hint(self.propagate, PROPAGATE_BACKENDS)
                )
            if self.labels is None or not FramePattern.parse(self.labels).is_single:
                raise ConfigError(
                    "--propagate carries one keyframe label map through the shot: give "
                    "--labels KEY.png (a single file, not a pattern or --instances)."
                )
        elif self.key_frame is not None:
            raise ConfigError("--key-frame is the frame of the label map for --propagate.")


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
    extra: dict[str, np.ndarray | Callable[[], np.ndarray]]
    extra = {c: linear[..., i] for i, c in enumerate("RGB")}
    for k, (name, layer) in enumerate(zip(names, result.layers, strict=True)):
        extra[f"{name}.A"] = layer
        if config.layer_rgb:  # computed as the file is filled, one channel at a time
            for i, c in enumerate("RGB"):
                extra[f"{name}.{c}"] = functools.partial(result.premultiplied, k, i)
    coverages = dict(zip(names, result.layers, strict=True))
    meta = {k: v for k, v in (metadata or {}).items() if not k.startswith("cryptomatte/")}
    write_cryptomatte(path, coverages, ranks=config.ranks, metadata=meta, extra_channels=extra)
    write_image(
        _preview_path(path),
        preview(result).astype(np.float32) / 255.0,
        ["R", "G", "B"],
        dtype="uint8",
    )


def run_panoptic(
    job: PanopticJob,
    config: PanopticConfig | None = None,
    *,
    matte_config: ClassicalMatteConfig | None = None,
    on_frame: Callable[[int, PanopticResult], None] | None = None,
) -> list[int]:
    """Matte every frame of ``job``; returns the frame numbers written, in order.

    Args:
        on_frame: called with each frame's number and result once it is written.

    Before any work the files it writes are checked against its inputs and their
    locations, and locked (:func:`~vfxmatte.engine.paths.guarded_writes`).
    """
    config = config or PanopticConfig()
    job.check()
    plate = open_plate(job.plate, job.frames)
    out = FramePattern.parse(job.output)
    if len(plate.frames) > 1 and out.is_single:
        raise ConfigError(f"The output '{job.output}' needs a frame token (####) for a shot.")
    writes = PathSet()
    for number in plate.frames:
        writes.add(out.path(number), f"panoptic output frame {number}")
        writes.add(_preview_path(out.path(number)), f"panoptic preview frame {number}")
    with guarded_writes(writes, _reads(job, plate), [job.output], plate.frames, "panoptic"):
        return _run(job, config, plate, out, matte_config, on_frame)


def _preview_path(path: str) -> str:
    folder, base = os.path.split(path)
    return os.path.join(folder, "preview", os.path.splitext(base)[0] + ".png")


def _reads(job: PanopticJob, plate: Plate) -> PathSet:
    """Every input of a panoptic job: plate, label maps, segments info, instance folder."""
    reads = PathSet()
    if is_video(job.plate):
        reads.add(job.plate, "plate")
    else:
        reads.add_on_disk(job.plate, "plate", plate.frames)
    if job.labels:
        reads.add_on_disk(job.labels, "label map")
    reads.add(job.segments_info, "segments info")
    if job.instances:
        reads.add_folder(job.instances, "instance-mask folder")
        for root, _, names in os.walk(job.instances):
            for name in names:
                reads.add(os.path.join(root, name), "instance mask")
    reads.add(job.propagate_config.sam2.checkpoint, "SAM 2 checkpoint")
    return reads


def _run(
    job: PanopticJob,
    config: PanopticConfig,
    plate: Plate,
    out: FramePattern,
    matte_config: ClassicalMatteConfig | None,
    on_frame: Callable[[int, PanopticResult], None] | None,
) -> list[int]:
    """:func:`run_panoptic` once its files are checked and locked."""
    first = plate.read(plate.frames[0])
    if job.propagate is not None:
        check_plate_size(job.plate, first.width, first.height, job.propagate, "--propagate sam2")
    colour = ColourContext.resolve(job.colourspace, first)
    shape = (first.height, first.width)
    written = []
    for number, pixels, metadata, segments, order in _frames(job, config, plate, shape, colour):
        display = colour.display(pixels)
        linear = colour.linear_plate(pixels)
        result = matte_segments(
            display, linear, segments, config, matte_config=matte_config, order=order
        )
        meta = dict(metadata)
        meta["oiio:ColorSpace"] = colour.linear
        write_panoptic(out.path(number), result, linear, config, meta)
        log.info("Frame %d: %d segments", number, len(segments))
        written.append(number)
        if on_frame is not None:
            on_frame(number, result)
    return sorted(written)


def _frames(
    job: PanopticJob,
    config: PanopticConfig,
    plate: Plate,
    shape: tuple[int, int],
    colour: ColourContext,
) -> Iterator[tuple[int, np.ndarray, dict, list[Segment], list[int] | None]]:
    """``(number, plate pixels, metadata, segments, order)`` of every frame to matte."""
    if job.propagate is not None:
        yield from _propagated(job, config, plate, shape, colour)
    elif job.instances is not None:
        yield from _from_instances(job.instances, config, plate, shape)
    else:
        yield from _from_label_maps(job, config, plate, shape)


def _read(plate: Plate, number: int) -> tuple[np.ndarray, dict]:
    frame = plate.read(number)
    return frame.pixels[..., :3], frame.metadata


def _check_size(label_map: np.ndarray, shape: tuple[int, int], what: str) -> None:
    if label_map.shape != shape:
        raise InputError(
            f"The label map '{what}' is {label_map.shape[1]}x{label_map.shape[0]} but the plate "
            f"is {shape[1]}x{shape[0]}; give label maps of the plate's size."
        )


def _from_label_maps(
    job: PanopticJob, config: PanopticConfig, plate: Plate, shape: tuple[int, int]
) -> Iterator[tuple[int, np.ndarray, dict, list[Segment], list[int] | None]]:
    assert job.labels is not None
    labels = FramePattern.parse(job.labels)
    if labels.is_single and len(plate.frames) > 1:
        raise ConfigError(
            f"One label map '{job.labels}' for a shot of {len(plate.frames)} frames: give a "
            "label map per frame (a pattern such as labels.####.png), or carry this one "
            "through the shot with --propagate flow (and --key-frame N, its frame)."
        )
    if not labels.is_single:
        resolve_frames(labels, plate.frames)
    info = read_coco_segments_info(job.segments_info) if job.segments_info else None
    for number in plate.frames:
        path = labels.path(number)
        label_map = read_label_map(path)
        _check_size(label_map, shape, path)
        segments = segments_from_label_map(
            label_map, info=info, min_area=config.min_area, max_segments=config.max_segments,
            over_limit=config.over_limit,
        )  # fmt: skip
        yield (number, *_read(plate, number), segments, None)


def _from_instances(
    folder_path: str, config: PanopticConfig, plate: Plate, shape: tuple[int, int]
) -> Iterator[tuple[int, np.ndarray, dict, list[Segment], list[int] | None]]:
    folder = scan_instances(folder_path)
    folder.check_frames(plate.frames)
    keep = None
    for number in plate.frames:
        label_map = folder.label_map(number, shape, keep=keep)
        if number == plate.frames[0]:
            keep = limit_instances(folder, label_map, config.max_segments, config.over_limit)
            if keep is not None:
                label_map = folder.label_map(number, shape, keep=keep)
        segments = folder.segments(label_map, keep=keep)
        # The folder's order is the occlusion order (ids are back to front).
        order = None if config.order == "none" else list(range(len(segments)))
        yield (number, *_read(plate, number), segments, order)


def _propagated(
    job: PanopticJob,
    config: PanopticConfig,
    plate: Plate,
    shape: tuple[int, int],
    colour: ColourContext,
) -> Iterator[tuple[int, np.ndarray, dict, list[Segment], list[int] | None]]:
    assert job.labels is not None
    key_frame = plate.frames[0] if job.key_frame is None else job.key_frame
    label_map = read_label_map(job.labels)
    _check_size(label_map, shape, job.labels)
    info = read_coco_segments_info(job.segments_info) if job.segments_info else None
    segments = segments_from_label_map(
        label_map, info=info, min_area=config.min_area, max_segments=config.max_segments,
        over_limit=config.over_limit,
    )  # fmt: skip
    key = KeyframeSegments.from_segments(segments, composition_order(segments, config.order))
    backend = dataclasses.replace(job.propagate_config, backend=job.propagate)
    for number, _, frame_segments in propagate_label_map(plate, colour, key_frame, key, backend):
        yield (number, *_read(plate, number), frame_segments, key.order)
