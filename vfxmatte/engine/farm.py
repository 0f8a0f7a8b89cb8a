"""Render-farm jobs for one shot: a propagation job, then chunk jobs that depend on it.

:func:`plan_farm_jobs` turns a :class:`PipelineConfig` into command lines that
any farm (Deadline, OpenCue, Tractor, a shell loop) can run: one ``vfxmatte
matte ... --phase propagate`` job that writes the guidance of every frame, then
one ``vfxmatte matte ... --frames A-B --guidance GUIDE`` job per chunk, which
need nothing but the plate and that guidance and can run anywhere, in any
order, at the same time. The commands carry every option that differs from its
default (flags generated from the config fields), with absolute paths.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import shlex
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from vfxmatte.cli.params import flag_name
from vfxmatte.config import param_specs
from vfxmatte.engine.chunks import frame_range_text, plan_chunks
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.outputs import OutputSet
from vfxmatte.engine.propagation import (
    check_parallel_propagation,
    guidance_pattern,
    parse_keyframes,
)
from vfxmatte.errors import ConfigError
from vfxmatte.io.plate import open_plate

__all__ = ["DEFAULT_FARM_CHUNK", "FarmJob", "FarmPlan", "config_flags", "plan_farm_jobs"]

DEFAULT_FARM_CHUNK = 10

# Options that say how and where to run, not what to compute: never in a job's command.
_RUN_OPTIONS = {
    "plate",  # given as PLATE
    "engine.executor",
    "engine.scheduler",
    "engine.workers",
    "engine.chunk_size",
    "engine.retries",
    "engine.connect_timeout",
    "engine.progress",
    "engine.phase",
}
# What the propagation job reads; the chunk jobs read everything else.
_PROPAGATION_FIELDS = {"mask", "frames", "key_frame", "keyframes", "guidance_output"}
_PROPAGATION_SECTIONS = ("input.", "propagate.")


def _keep_for_propagation(dotted: str) -> bool:
    return (
        dotted in _PROPAGATION_FIELDS
        or dotted.startswith(_PROPAGATION_SECTIONS)
        or dotted == "engine.overwrite"
    )


def _keep_for_chunks(dotted: str) -> bool:
    if dotted in _RUN_OPTIONS or dotted.startswith("propagate."):
        return False
    return dotted not in _PROPAGATION_FIELDS


@dataclass
class FarmJob:
    """One farm job: its command (``argv``, and as one shell line) and dependencies."""

    name: str
    frames: str
    argv: list[str]
    depends_on: list[str] = field(default_factory=list)

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "frames": self.frames,
            "depends_on": list(self.depends_on),
            "argv": list(self.argv),
            "command": self.command,
        }


@dataclass
class FarmPlan:
    """The jobs of one shot, propagation first."""

    plate: str
    output: str
    guidance: str
    frames: str
    chunk_size: int
    overlap: int
    jobs: list[FarmJob]

    def to_dict(self) -> dict[str, Any]:
        return {
            "version": 1,
            "plate": self.plate,
            "output": self.output,
            "guidance": self.guidance,
            "frames": self.frames,
            "chunk_size": self.chunk_size,
            "overlap": self.overlap,
            "jobs": [job.to_dict() for job in self.jobs],
        }

    def shell_lines(self) -> list[str]:
        """Comment lines and one command per job, in an order that respects dependencies."""
        chunks = sum(1 for job in self.jobs if job.name != "propagate")
        first = "1 propagation job, then " if self.jobs[0].name == "propagate" else ""
        lines = [
            f"# vfxmatte farm-split: {first}{chunks} chunk job(s) of up to {self.chunk_size} "
            f"frame(s), frames {self.frames}; chunk jobs may run in parallel"
        ]
        for job in self.jobs:
            after = f" (after {', '.join(job.depends_on)})" if job.depends_on else ""
            lines.append(f"# {job.name}: frames {job.frames}{after}")
            lines.append(job.command)
        return lines


def config_flags(config: Any, keep: Callable[[str], bool], prefix: str = "") -> list[str]:
    """CLI flags for every field of ``config`` that differs from its default and ``keep``s.

    Flags are the generated ones (``--matte.classical.band-fraction 0.05``,
    ``--no-engine.overwrite``), so the output of this function parses back into
    the same config.
    """
    defaults = type(config)()
    flags: list[str] = []
    for spec in param_specs(type(config)):
        value = getattr(config, spec.name)
        dotted = f"{prefix}{spec.name}"
        if dataclasses.is_dataclass(value):
            flags += config_flags(value, keep, f"{dotted}.")
            continue
        if value == getattr(defaults, spec.name) or not keep(dotted):
            continue
        flag = flag_name(prefix, spec.name)
        if spec.type is bool:
            flags.append(flag if value else f"--no-{flag[2:]}")
        else:
            flags += [flag, str(value)]
    return flags


def _absolute(config: PipelineConfig) -> PipelineConfig:
    """A copy with every path absolute: farm jobs run in other folders."""
    config = copy.deepcopy(config)

    def absolute(path: str) -> str:
        return os.path.abspath(path) if path else path

    config.plate = absolute(config.plate)
    config.mask = absolute(config.mask)
    config.output = absolute(config.output)
    config.guidance = absolute(config.guidance)
    config.guidance_output = absolute(config.guidance_output)
    config.input.ocio = absolute(config.input.ocio)
    config.keyframes = ";".join(f"{n}={absolute(p)}" for n, p in parse_keyframes(config.keyframes))
    return config


def _check_jobs_write_no_input(
    config: PipelineConfig,
    chunk_config: PipelineConfig,
    guidance: str,
    frames: list[int],
    extra_inputs: Mapping[str, str] | None,
) -> None:
    """What the chunk jobs and the propagation job (its ``guidance``) write vs every input."""
    from vfxmatte.engine.paths import pipeline_reads, pipeline_writes
    from vfxmatte.io.write_guard import check_no_input_written

    writes = pipeline_writes(chunk_config, frames)
    if guidance:
        writes.add_frames(guidance, frames, "guidance output")
    check_no_input_written(writes, pipeline_reads(config, frames, extra_inputs))


def _job_argv(program: str, config: PipelineConfig, keep: Callable[[str], bool]) -> list[str]:
    return [*shlex.split(program), "matte", config.plate, *config_flags(config, keep)]


def plan_farm_jobs(
    config: PipelineConfig,
    chunk_size: int = 0,
    program: str = "vfxmatte",
    extra_inputs: Mapping[str, str] | None = None,
) -> FarmPlan:
    """The propagation job and the chunk jobs of ``config``'s shot.

    Args:
        chunk_size: frames per chunk job (0: ``engine.chunk_size``, else 10).
        program: how the farm starts vfxmatte, e.g. ``vfxmatte`` or
            ``/opt/venv/bin/python -m vfxmatte``.
        extra_inputs: more files the jobs must not write (the YAML config file).

    Raises:
        ConfigError / InputError: as a run of ``config`` would, before any job exists;
        InputOverwriteError: a job would write one of the inputs (each job checks
        its own files, locations and lock again when it runs).
    """
    config = _absolute(config)
    if not config.plate:
        raise ConfigError("No plate given; pass the plate pattern or video as PLATE.")
    frames = open_plate(
        config.plate, config.frames or None, first_frame=config.input.first_frame
    ).frames
    size = chunk_size or config.engine.chunk_size or DEFAULT_FARM_CHUNK
    jobs: list[FarmJob] = []
    chunk_config = copy.deepcopy(config)
    chunk_config.frames = ""
    if config.guidance:
        guidance = config.guidance
    elif config.propagate.backend == "given":
        guidance = chunk_config.guidance = config.mask
    else:
        check_parallel_propagation(config)
        guidance = guidance_pattern(config)
        propagate = copy.deepcopy(config)
        propagate.guidance_output = guidance
        argv = _job_argv(program, propagate, _keep_for_propagation)
        jobs.append(FarmJob("propagate", frame_range_text(frames), [*argv, "--phase", "propagate"]))
        chunk_config.guidance = guidance
        chunk_config.input.mask_channel = "A"  # the propagation job writes channel A
        chunk_config.input.mask_resize = False
    _check_jobs_write_no_input(config, chunk_config, guidance if jobs else "", frames, extra_inputs)
    OutputSet(config.output, config.output_options)  # the pattern and its file types
    depends = [jobs[0].name] if jobs else []
    for i, chunk in enumerate(plan_chunks(frames, size), start=1):
        text = frame_range_text(chunk.frames)
        argv = _job_argv(program, chunk_config, _keep_for_chunks)
        jobs.append(FarmJob(f"chunk-{i:03d}", text, [*argv, "--frames", text], list(depends)))
    return FarmPlan(
        plate=config.plate,
        output=config.output,
        guidance=guidance,
        frames=frame_range_text(frames),
        chunk_size=size,
        overlap=config.engine.overlap,
        jobs=jobs,
    )
