"""Every file a run of a :class:`PipelineConfig` reads and writes, checked before any work.

:func:`guarded_run` is what :func:`~vfxmatte.engine.pipeline.run_pipeline` does
first, whatever the executor or phase (so the CLI, the worker, the ComfyUI nodes,
the Nuke plugin and farm chunks are all covered):

1. list the files it will write, for every frame: each output kind (with its
   derived ``<name>_<kind>`` or ``{kind}`` name), previews, guidance written by
   propagation (``--guidance-output``, the ``sam2`` first phase, a parallel run's
   or ``--phase propagate``'s guidance beside the output), and the files it reads:
   every plate frame on disk, masks and mask sequences, keyframe masks, guidance
   files, weights and checkpoints, the OCIO config, the YAML config file;
2. refuse a write that is an input (:mod:`vfxmatte.io.write_guard`), an 8-bit file
   type for a scene-linear output, a location that cannot be written;
3. take the lock of those frames of those patterns (:mod:`vfxmatte.io.lock`) and
   remove the temporary files a killed run left of them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.outputs import OutputSet, output_patterns, preview_pattern
from vfxmatte.engine.propagation import guidance_pattern, parse_keyframes
from vfxmatte.engine.stages import open_shot_plate
from vfxmatte.io.atomic import remove_stale_temps
from vfxmatte.io.lock import OutputLock
from vfxmatte.io.plate import is_video
from vfxmatte.io.write_guard import (
    PathSet,
    check_locations,
    check_no_input_written,
    check_writes,
    remove_empty_folders,
)

__all__ = [
    "check_pipeline_writes",
    "guarded_run",
    "guarded_writes",
    "propagation_reads",
    "pipeline_reads",
    "pipeline_writes",
    "written_guidance",
]


def written_guidance(config: PipelineConfig) -> str:
    """The guidance pattern a run of ``config`` writes, or ``""``."""
    backend = config.propagate.backend
    if config.engine.phase == "propagate":
        return guidance_pattern(config)
    if config.guidance:
        return ""  # a farm chunk reads it
    if config.engine.executor != "local":
        return "" if backend == "given" else guidance_pattern(config)
    if backend == "sam2":
        return guidance_pattern(config)
    return config.guidance_output


def pipeline_writes(config: PipelineConfig, frames: list[int]) -> PathSet:
    """Every file a run of ``config`` over ``frames`` may write, labelled."""
    writes = PathSet()
    if config.engine.phase != "propagate":
        for kind, pattern in output_patterns(config.output, config.output_options.kinds).items():
            writes.add_frames(pattern.source, frames, f"{kind} output")
        if config.output_options.preview != "none":
            writes.add_frames(preview_pattern(config.output).source, frames, "preview")
    guidance = written_guidance(config)
    if guidance:
        writes.add_frames(guidance, frames, "guidance output")
    return writes


def pipeline_reads(
    config: PipelineConfig, frames: list[int], extra: Mapping[str, str] | None = None
) -> PathSet:
    """Every file a run of ``config`` reads (and every plate frame on disk), labelled.

    ``extra``: more inputs by label, e.g. ``{"config file": "job.yaml"}``.
    """
    reads = PathSet()
    if is_video(config.plate):
        reads.add(config.plate, "plate")
    else:
        reads.add_on_disk(config.plate, "plate", frames)
    reads.add_on_disk(config.mask, "mask")
    for number, path in parse_keyframes(config.keyframes):
        reads.add(path, f"keyframe mask of frame {number}")
    reads.add_on_disk(config.guidance, "guidance")
    reads.add(config.matte.network.weights, "matte.network weights")
    reads.add(config.refine.sparse.weights, "refine.sparse weights")
    reads.add(config.decontaminate.network.weights, "decontaminate.network weights")
    reads.add(config.propagate.sam2.checkpoint, "SAM 2 checkpoint")
    reads.add(config.input.ocio, "OCIO config")
    for label, path in (extra or {}).items():
        reads.add(path, label)
    return reads


def check_pipeline_writes(
    config: PipelineConfig,
    extra_inputs: Mapping[str, str] | None = None,
    frames: list[int] | None = None,
) -> tuple[PathSet, list[int], list[str]]:
    """Steps 1 and 2 of the module docstring (no lock): the writes, the frames and the
    folders made for the outputs.

    Raises:
        InputOverwriteError, OutputLocationError, ConfigError: one sentence each.
    """
    frames = list(frames if frames is not None else open_shot_plate(config).frames)
    writes = pipeline_writes(config, frames)
    check_no_input_written(writes, pipeline_reads(config, frames, extra_inputs))
    if config.engine.phase != "propagate":
        OutputSet(config.output, config.output_options)  # file types
    return writes, frames, check_locations(writes)


def _patterns(config: PipelineConfig) -> list[str]:
    patterns = []
    if config.engine.phase != "propagate":
        kinds = output_patterns(config.output, config.output_options.kinds)
        patterns += [p.source for p in kinds.values()]
        if config.output_options.preview != "none":
            patterns.append(preview_pattern(config.output).source)
    return patterns + [p for p in (written_guidance(config),) if p]


def propagation_reads(
    config: PipelineConfig, frames: list[int], keyframe_paths: Mapping[int, list[str]]
) -> PathSet:
    """What ``vfxmatte propagate`` reads: the plate, the keyframe masks, the checkpoint."""
    reads = PathSet()
    if is_video(config.plate):
        reads.add(config.plate, "plate")
    else:
        reads.add_on_disk(config.plate, "plate", frames)
    for number, paths in keyframe_paths.items():
        for path in paths:
            reads.add(path, f"keyframe mask of frame {number}")
    reads.add(config.propagate.sam2.checkpoint, "SAM 2 checkpoint")
    reads.add(config.input.ocio, "OCIO config")
    return reads


@contextlib.contextmanager
def guarded_writes(
    writes: PathSet,
    reads: PathSet,
    patterns: Sequence[str],
    frames: Sequence[int],
    what: str,
    *,
    checked: list[str] | None = None,
) -> Iterator[None]:
    """Check ``writes`` against ``reads`` and their locations (unless ``checked``), lock
    ``frames`` of ``patterns``, remove the temporary files a killed run left of them.

    ``checked``: the folders :func:`check_locations` made, when it was called already.
    Those folders are removed again if they are still empty at the end (a run refused
    for a bad input leaves nothing behind).
    """
    made = checked if checked is not None else check_writes(writes, reads)
    try:
        with OutputLock(patterns, frames, what=what):
            remove_stale_temps(writes.files)
            yield
    finally:
        remove_empty_folders(made)


@contextlib.contextmanager
def guarded_run(
    config: PipelineConfig, extra_inputs: Mapping[str, str] | None = None
) -> Iterator[list[int]]:
    """Check, lock and clean (the module docstring) around a run; yields its frames.

    Raises:
        InputOverwriteError, OutputLocationError, OutputLockedError, ConfigError.
    """
    writes, frames, made = check_pipeline_writes(config, extra_inputs)
    with guarded_writes(
        writes, PathSet(), _patterns(config), frames, "vfxmatte matte", checked=made
    ):
        yield frames
