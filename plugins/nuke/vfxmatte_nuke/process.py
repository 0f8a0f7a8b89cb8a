"""The VfxMatte node's buttons: Process, Farm and "current frame".

Process: read the knobs -> decide what the worker reads (plain Reads) and what
Nuke renders first (anything else) -> render the missing input frames -> run the
shot in the worker with ``nuke.ProgressTask`` progress and cancel -> point the
Group's Read at the result and show it. Running it again resumes: input frames
and matte frames already on disk are kept unless "force full render"
(``engine.overwrite``) is on.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from dataclasses import dataclass
from typing import Any, Mapping

from vfxmatte_nuke import nuke_api, trust
from vfxmatte_nuke.client import WorkerClient, get_client, resolve_python, worker_env
from vfxmatte_nuke.errors import PluginError
from vfxmatte_nuke.graph import MASK_INPUT, PLATE_INPUT, RESULT_READ
from vfxmatte_nuke.inputs import Render, plain_read, render_inputs, script_working_space
from vfxmatte_nuke.knobs import config_from_values, knob_list, value_knobs
from vfxmatte_nuke.paths import (
    default_output,
    frame_path,
    frames_of,
    has_frame_token,
    input_dir,
    parse_frame_list,
    parse_frame_range,
)
from vfxmatte_nuke.schema import load_schema

__all__ = [
    "FARM_ARGS",
    "Job",
    "farm",
    "on_farm",
    "on_key_frame_here",
    "on_process",
    "prepare",
    "process",
]

#: Arguments (after the worker's python) of the render-farm chunk generator.
FARM_ARGS = ("-m", "vfxmatte", "farm-split")
PREFERENCE_KNOB = "vfxmatte_python"


@dataclass
class Job:
    """One Process or Farm press: the options for the worker and the inputs to render."""

    config: dict[str, Any]
    output: str
    frames: list[int]
    renders: list[Render]
    redo: bool
    values: dict[str, Any]


def _slash(path: str) -> str:
    return path.replace("\\", "/")


def _node_values(node: Any, schema: Mapping[str, Any]) -> dict[str, Any]:
    names = [k.name for k in value_knobs(knob_list(schema))]
    return nuke_api.knob_values(node, names)


def _output_kinds(config: dict[str, Any], schema_default: str) -> None:
    """The Group's Read needs the multi-layer EXR: make it the first (main) output."""
    options = config.setdefault("output_options", {})
    kinds = [k.strip() for k in str(options.get("kinds", schema_default)).split(",")]
    kinds = [k for k in kinds if k and k != "multilayer"]
    options["kinds"] = ",".join(["multilayer", *kinds])


def _plate(job: Job, plate: Any) -> None:
    """The plate: a Read's files, or a render of the input in the working space."""
    source = plain_read(plate)
    inputs = job.config.setdefault("input", {})
    if source is None:
        pattern = _slash(os.path.join(input_dir(job.output), "plate.####.exr"))
        job.renders.append(Render(PLATE_INPUT, pattern, job.frames, "rgb"))
        colourspace = script_working_space()[1]
    else:
        pattern, colourspace = source.path, source.colourspace
        if source.first_frame is not None and "first_frame" not in inputs:
            inputs["first_frame"] = source.first_frame
    job.config["plate"] = pattern
    if "colourspace" not in inputs:  # the knob is at its default, auto
        inputs["colourspace"] = colourspace[0]
        if colourspace[1] and "ocio" not in inputs:
            inputs["ocio"] = colourspace[1]


def _mask(job: Job, mask: Any, first: int) -> None:
    """The keyframe mask(s) from the mask input, at the key frame and the mask frames."""
    backend = job.config.get("propagate", {}).get("backend", "snapcut")
    if mask is None:
        if job.config.get("guidance"):
            return  # precomputed guidance: no propagation, no mask
        raise PluginError(
            "Connect the keyframe mask (a Roto or a mask image) to the VfxMatte node's "
            "'mask' input."
        )
    key = int(job.values.get("key_frame", -1))
    key = first if key < 0 else key
    extra = [f for f in parse_frame_list(str(job.values.get("mask_frames", ""))) if f != key]
    needed = job.frames if backend == "given" else sorted({key, *extra})
    outside = [f for f in needed if f not in job.frames]
    if outside:
        raise PluginError(
            f"The key frame / mask frames {outside} are not among the frames to process "
            f"({job.frames[0]}-{job.frames[-1]})."
        )
    source = plain_read(mask, colour=False)
    if source is None:
        pattern = _slash(os.path.join(input_dir(job.output), "mask.####.exr"))
        job.renders.append(Render(MASK_INPUT, pattern, needed, "rgba"))
    else:
        pattern = source.path
    if backend == "given":
        job.config["mask"] = pattern
        return
    job.config["mask"] = frame_path(pattern, key)
    job.config["key_frame"] = key
    if extra:
        job.config["keyframes"] = ";".join(f"{f}={frame_path(pattern, f)}" for f in extra)


def prepare(node: Any, schema: Mapping[str, Any] | None = None) -> Job:
    """Read the node's knobs and inputs into a :class:`Job` (nothing is rendered yet).

    Raises:
        PluginError: no plate or mask connected, unsaved script without output,
            a bad frame range, or knob values the options do not allow.
    """
    schema = schema if schema is not None else load_schema()
    values = _node_values(node, schema)
    config = config_from_values(values, schema)
    plate = nuke_api.input_node(node, 0)
    if plate is None:
        raise PluginError("Connect the plate to the VfxMatte node's 'plate' input.")
    text = str(values.get("frames", "") or "").strip()
    frame_range = parse_frame_range(text) if text else (*nuke_api.frame_range(plate), 1)
    output = str(values.get("output", "") or "").strip()
    output = _slash(output or default_output(nuke_api.script_path(), nuke_api.node_name(node)))
    if not has_frame_token(output):
        raise PluginError(f"The output file '{output}' needs a frame token, e.g. shot.####.exr.")
    first, last, step = frame_range
    config["output"] = output
    config["frames"] = f"{first}-{last}" + (f"x{step}" if step > 1 else "")
    redo = bool(values.get("engine_overwrite", False))
    job = Job(config, output, frames_of(frame_range), [], redo, values)
    _plate(job, plate)
    _mask(job, nuke_api.input_node(node, 1), first)
    defaults = {p["key"]: p["default"] for p in schema["params"]}
    _output_kinds(config, str(defaults.get("output_options.kinds", "rgba")))
    return job


def _worker_python(node: Any, job: Job) -> str:
    """The worker's Python; the node's knob only when the artist allows it (:mod:`.trust`)."""
    knob = str(job.values.get("worker_python", "") or "").strip()
    preference = str(nuke_api.preference(PREFERENCE_KNOB, "") or "")
    python = resolve_python(knob, preference)
    if knob:
        trust.check_python(python, nuke_api.node_name(node), preference)
    return python


def _check_scheduler(node: Any, job: Job) -> None:
    """A Dask scheduler named by the node (executor dask) only when the artist allows it."""
    engine = job.config.get("engine", {})
    if engine.get("executor") == "dask" and str(engine.get("scheduler", "")).strip():
        trust.check_scheduler(str(engine["scheduler"]), nuke_api.node_name(node))


class _Progress:
    """Feeds the worker's messages to the progress dialog.

    While the worker is silent (a model loading, a long frame) the dialog's text
    shows the seconds waited, about once a second: the dialog stays alive and
    its Cancel button answers.
    """

    def __init__(self, task: Any, text: str) -> None:
        self.task = task
        self.text = text
        self.since = self.shown = time.monotonic()
        task.set_message(text)

    def on_message(self, message: dict[str, Any]) -> None:
        kind = message.get("type")
        if kind == "progress":
            done, total = int(message["done"]), max(1, int(message["total"]))
            verb = "propagating" if message.get("phase") == "propagate" else "matting"
            self.text = f"{verb} frame {message['frame']} ({done}/{total})"
            self.since = self.shown = time.monotonic()
            self.task.set_progress(100 * done // total)
            self.task.set_message(self.text)
        elif kind == "log":
            nuke_api.log(f"vfxmatte worker {message.get('level')}: {message.get('message')}")

    def is_cancelled(self) -> bool:
        now = time.monotonic()
        if now - self.shown >= 1.0:
            self.shown = now
            self.task.set_message(f"{self.text} ({now - self.since:.0f} s)")
        return self.task.cancelled()


def run_job(node: Any, job: Job, client: WorkerClient) -> dict[str, Any]:
    """Run ``job`` in the worker with a progress dialog; returns the worker's report."""
    with nuke_api.progress_task(f"VfxMatte: {nuke_api.node_name(node)}") as task:
        progress = _Progress(task, f"{len(job.frames)} frame(s) -> {job.output}")
        return client.run(job.config, progress.on_message, progress.is_cancelled)


def show_result(node: Any, job: Job, report: Mapping[str, Any]) -> str:
    """Point the Group's Read at the result, show it, and set the status line."""
    pattern = _slash(report.get("outputs", {}).get("multilayer") or job.output)
    nuke_api.set_knob(node, "result_file", pattern)
    nuke_api.set_knob(node, "result_first", job.frames[0])
    nuke_api.set_knob(node, "result_last", job.frames[-1])
    if report.get("written") or report.get("reused"):
        nuke_api.set_knob(node, "show_result", True)
    read = nuke_api.find_child(node, RESULT_READ)
    if read is not None:
        nuke_api.reload_read(read)
    status = str(report.get("summary", ""))
    failed = report.get("failed") or {}
    if failed:
        status += f" - failed frames: {', '.join(sorted(failed))}"
    drift = (report.get("drift") or {}).get("unreliable") or []
    if drift:
        # Where propagation looks unreliable, before the matte is judged (snapcut).
        status += " - " + str(report.get("drift_summary", ""))
    if report.get("cancelled"):
        status += " - press Process to resume"  # what to do next, last
    nuke_api.set_knob(node, "status", status)
    return status


def _check_schema(node: Any, client: WorkerClient) -> None:
    theirs = client.info.get("schema_digest")
    ours = nuke_api.knob_value(node, "vfxmatte_schema", "")
    if theirs and ours and theirs != ours:
        nuke_api.log(
            f"vfxmatte: {nuke_api.node_name(node)}'s knobs were made from another option "
            f"schema ({ours}) than the worker's ({theirs}, vfxmatte {client.info.get('vfxmatte')})"
            ": options missing on the node keep their defaults. Create a new VfxMatte node to "
            "get the worker's knobs."
        )


def process(
    node: Any,
    schema: Mapping[str, Any] | None = None,
    client: WorkerClient | None = None,
) -> dict[str, Any]:
    """The Process button: render inputs, run the shot in the worker, show the result.

    Raises:
        PluginError: bad knobs or inputs; WorkerError for the worker's errors.
    """
    job = prepare(node, schema)
    _check_scheduler(node, job)
    if client is None:
        client = get_client(_worker_python(node, job))
    _check_schema(node, client)
    render_inputs(node, job.renders, job.redo)
    report = run_job(node, job, client)
    status = show_result(node, job, report)
    nuke_api.log(f"vfxmatte: {nuke_api.node_name(node)}: {status}")
    return report


def farm(node: Any, schema: Mapping[str, Any] | None = None, timeout: float = 300.0) -> str:
    """The Farm button: render inputs, save the job's options, print the farm jobs.

    Runs ``vfxmatte farm-split --config <output folder>/<node>.vfxmatte.json
    --program "<python> -m vfxmatte"`` (plus ``--json`` with the "JSON job" knob)
    with the worker's Python; its output is printed to the Script Editor, saved
    beside the job file as ``<node>_farm.txt`` (``.json``) and returned.

    Raises:
        PluginError: bad knobs or inputs, or farm-split failed.
    """
    job = prepare(node, schema)
    python = _worker_python(node, job)
    render_inputs(node, job.renders, job.redo)
    name = nuke_api.node_name(node)
    folder = os.path.dirname(job.output)
    os.makedirs(folder, exist_ok=True)
    config_path = _slash(os.path.join(folder, f"{name}.vfxmatte.json"))
    with open(config_path, "w", encoding="utf-8") as fh:
        json.dump(job.config, fh, indent=2)
    # Farm jobs start vfxmatte as the worker does (a shared install, as a rule).
    command = [python, *FARM_ARGS, "--config", config_path, "--program", f"{python} -m vfxmatte"]
    if job.values.get("farm_json"):
        command.append("--json")
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=worker_env(), timeout=timeout
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise PluginError(f"Could not run {' '.join(command)}: {exc}") from None
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        raise PluginError(f"vfxmatte farm-split failed (exit code {done.returncode}):\n{tail}")
    suffix = ".json" if job.values.get("farm_json") else ".txt"
    listing = _slash(os.path.join(folder, f"{name}_farm{suffix}"))
    with open(listing, "w", encoding="utf-8") as fh:
        fh.write(done.stdout)
    nuke_api.log(f"vfxmatte farm-split for {name} ({config_path}):\n{done.stdout}")
    return done.stdout


def _shown(text: str, listing_hint: str, lines: int = 25) -> str:
    rows = text.strip().splitlines()
    if len(rows) <= lines:
        return text.strip()
    return "\n".join(rows[:lines] + [f"... {len(rows) - lines} more line(s): {listing_hint}"])


def on_process() -> None:
    """The Process button's command."""
    node = nuke_api.this_node()
    try:
        process(node)
    except PluginError as exc:
        nuke_api.show_message(f"VfxMatte: {exc}")


def on_farm() -> None:
    """The Farm button's command."""
    node = nuke_api.this_node()
    try:
        text = farm(node)
    except PluginError as exc:
        nuke_api.show_message(f"VfxMatte farm: {exc}")
        return
    nuke_api.show_message(
        "vfxmatte farm-split:\n" + _shown(text, "see the Script Editor and the _farm.txt file")
    )


def on_key_frame_here() -> None:
    """The "current frame" button: the key frame becomes the viewer's frame."""
    nuke_api.set_knob(nuke_api.this_node(), "key_frame", nuke_api.current_frame())
