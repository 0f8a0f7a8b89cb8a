"""Propagation as its own phase: keyframe masks -> guidance mask files for every frame.

``vfxmatte propagate`` and the engine's ``sam2`` path use this: propagation is
sequential per shot, so it runs once and writes one EXR per frame (channel ``A``
for one object, ``<object>.A`` for several: each object its own layer, never
merged). Matting can then run frame-parallel (a farm, Dask) with
``propagate.backend=given``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.digest import guidance_header, propagation_identity
from vfxmatte.engine.stages import ColourContext, check_plate_size, open_shot_plate
from vfxmatte.errors import ConfigError
from vfxmatte.io.image import write_image
from vfxmatte.io.mask import read_mask
from vfxmatte.io.plate import Plate
from vfxmatte.io.sequence import FramePattern, compress_frames
from vfxmatte.io.write_guard import PathSet

__all__ = ["guidance_channels", "propagate_objects", "write_guidance"]

log = logging.getLogger(__name__)

#: ``frame number -> {object id -> H x W mask}``
KeyMasks = Mapping[int, Mapping[int, np.ndarray]]


def guidance_channels(objects: list[int]) -> list[str]:
    """Channel names of a guidance file: ``A`` alone, or ``obj<N>.A`` per object."""
    return ["A"] if len(objects) == 1 else [f"obj{i}.A" for i in objects]


def _flow_objects(
    config: PipelineConfig, get: Callable[[int], np.ndarray], frames: list[int], keys: KeyMasks
) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
    """The flow or snapcut backend, one propagator per object, in the same order as sam2."""
    backend = config.propagate.backend
    if backend == "snapcut":
        from vfxmatte.propagate.snapcut import propagate_sequence
    else:
        from vfxmatte.propagate.flow import propagate_sequence

    objects = sorted({o for masks in keys.values() for o in masks})
    options = getattr(config.propagate, backend)
    streams = {
        o: propagate_sequence(get, frames, {f: m[o] for f, m in keys.items() if o in m}, options)
        for o in objects
    }
    # Every stream yields frames in the same order: first keyframe, forward, backward.
    for results in zip(*streams.values(), strict=True):
        number = results[0][0]
        yield number, {o: mask for o, (_, mask) in zip(objects, results, strict=True)}


def propagate_objects(
    config: PipelineConfig,
    plate: Plate,
    colour: ColourContext,
    keys: KeyMasks,
    sam2: Any = None,
) -> Iterator[tuple[int, dict[int, np.ndarray]]]:
    """``(frame number, {object: mask})`` for every frame, from the configured backend.

    ``sam2``: an already built :class:`~vfxmatte.propagate.sam2.Sam2Propagator` to
    use (a worker keeps one between shots); by default one is built for this call.
    """
    cache: dict[int, np.ndarray] = {}

    def get(number: int) -> np.ndarray:
        # The backends ask for each frame once or twice in a row; keep the last two.
        if number not in cache:
            if len(cache) >= 2:
                cache.pop(next(iter(cache)))
            cache[number] = colour.display(plate.read(number).pixels[..., :3])
        return cache[number]

    backend = config.propagate.backend
    if backend == "sam2":
        from vfxmatte.propagate.sam2 import Sam2Propagator

        propagator = sam2 if sam2 is not None else Sam2Propagator(config.propagate.sam2)
        yield from propagator.propagate(get, plate.frames, keys)
    elif backend in ("flow", "snapcut"):
        height, width = get(plate.frames[0]).shape[:2]  # cached: read once either way
        check_plate_size(config.plate, width, height, backend)  # images from a host: no path
        yield from _flow_objects(config, get, plate.frames, keys)
    else:
        raise ConfigError(
            f"Propagation to files needs propagate.backend flow, snapcut or sam2, got '{backend}'."
        )


def write_guidance(
    config: PipelineConfig,
    pattern: str,
    keyframe_paths: Mapping[int, list[str]],
    *,
    on_frame: Callable[[int], Any] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    sam2: Any = None,
    guard: bool = True,
) -> list[int]:
    """Propagate keyframe masks through ``config.plate`` and write guidance files.

    Each file's header carries the propagation's identity (``vfxmatte:guidance``,
    :mod:`vfxmatte.engine.digest`), which the runs that matte from it record.

    Args:
        pattern: output pattern, e.g. ``guide/shot.####.exr``.
        keyframe_paths: frame number -> mask paths, one per object (object ids 1..N).
        on_frame: called with each frame number after its file is written.
        should_cancel: polled after each frame while frames remain; ``True`` stops the
            phase there (the propagator's state is freed at once).
        sam2: an already built SAM 2 propagator (see :func:`propagate_objects`).
        guard: first refuse to write an input or where nothing can be written, and lock
            the frames (:func:`~vfxmatte.engine.paths.guarded_writes`); off only for a
            caller that did so (the engine's own first phase).

    Returns:
        The frame numbers written.
    """
    out = FramePattern.parse(pattern)
    if out.is_single:
        raise ConfigError(f"The guidance output '{pattern}' has no frame token (####).")
    if not guard:
        return _write_guidance(config, out, keyframe_paths, on_frame, should_cancel, sam2)
    from vfxmatte.engine.paths import guarded_writes, propagation_reads

    frames = list(open_shot_plate(config).frames)
    writes = PathSet()
    writes.add_frames(pattern, frames, "guidance output")
    reads = propagation_reads(config, frames, keyframe_paths)
    with guarded_writes(writes, reads, [pattern], frames, "vfxmatte propagate"):
        return _write_guidance(config, out, keyframe_paths, on_frame, should_cancel, sam2)


def _write_guidance(
    config: PipelineConfig,
    out: FramePattern,
    keyframe_paths: Mapping[int, list[str]],
    on_frame: Callable[[int], Any] | None,
    should_cancel: Callable[[], bool] | None,
    sam2: Any,
) -> list[int]:
    """:func:`write_guidance` once its files are checked."""
    plate = open_shot_plate(config)
    first = plate.read(plate.frames[0])
    shape = (first.height, first.width)
    colour = ColourContext.for_plate(config, first)
    del first
    keys: dict[int, dict[int, np.ndarray]] = {}
    for number, paths in sorted(keyframe_paths.items()):
        if not all(paths):
            raise ConfigError(
                "No keyframe mask given; pass --mask FIRST_FRAME_MASK."
                if not any(paths)
                else f"The keyframe {number} has an empty mask path among {paths}."
            )
        if number not in plate.frames:
            raise ConfigError(
                f"The keyframe {number} is not among the frames ({compress_frames(plate.frames)}); "
                "give keyframes of that range, or widen --frames."
            )
        keys[number] = {
            i + 1: read_mask(
                p,
                shape=shape,
                channel=config.input.mask_channel,
                resize=config.input.mask_resize,
                number=number,
                nonfinite=config.input.nonfinite,
            )
            for i, p in enumerate(paths)
        }
    objects = sorted({o for masks in keys.values() for o in masks})
    channels = guidance_channels(objects)
    # flow and snapcut here are not the engine's loop (one propagator per object)
    variant = "objects" if config.propagate.backend in ("flow", "snapcut") else ""
    header = guidance_header(
        propagation_identity(config, keyframe_paths, colour.plate, variant=variant)
    )
    written = []
    stream = propagate_objects(config, plate, colour, keys, sam2=sam2)
    try:
        for number, masks in stream:
            stack = np.stack([masks.get(o, np.zeros(shape, np.float32)) for o in objects], axis=2)
            write_image(
                out.path(number), stack.astype(np.float32), channels, metadata=header, dtype="half"
            )
            written.append(number)
            if on_frame is not None:
                on_frame(number)
            if should_cancel is not None and len(written) < len(plate.frames) and should_cancel():
                break
    finally:
        stream.close()  # frees a SAM 2 inference state at once, also when cancelled
    log.info("Wrote guidance for %d frame(s) to %s", len(written), out.source)
    return sorted(written)
