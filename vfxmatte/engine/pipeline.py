"""The frame-wise engine: plate + keyframe mask(s) -> mattes on disk.

:func:`run_pipeline` is the one entry point of the CLI, Python, ComfyUI and Nuke.
It walks the shot in passes (forward from the first keyframe, then backward from
it), keeps one frame in memory at a time, writes every output atomically, skips
frames whose outputs are already complete (resume), and reports each frame's
status. Hosts follow progress and cancel through ``on_progress`` / ``should_cancel``.
Parallel runs (worker processes, a Dask cluster, render-farm chunks) live in
:mod:`vfxmatte.engine.parallel` and give the same frames.
"""

from __future__ import annotations

import functools
import json
import logging
import os
import time
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vfxmatte.config import validate_fields
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.digest import guidance_header, run_settings
from vfxmatte.engine.outputs import FrameResult, OutputSet
from vfxmatte.engine.paths import guarded_run
from vfxmatte.engine.prefetch import ReadAhead, WriteBehind
from vfxmatte.engine.propagation import (
    keyframe_masks,
    plan_passes,
    propagate_first,
    refuse_stale_guidance,
)
from vfxmatte.engine.report import Interrupt, ProgressEvent, RunReport, progress_bar
from vfxmatte.engine.stages import ColourContext, Stages, make_propagator, open_shot_plate
from vfxmatte.errors import OutputError, VfxMatteError
from vfxmatte.io.frame import Frame
from vfxmatte.io.image import read_image, write_image
from vfxmatte.io.plate import Plate
from vfxmatte.io.sequence import FramePattern

__all__ = ["ProgressEvent", "RunReport", "plan_passes", "run_pipeline"]

log = logging.getLogger(__name__)


class _Run:
    """State of one :func:`run_pipeline` call."""

    def __init__(
        self,
        config: PipelineConfig,
        on_progress: Callable[[ProgressEvent], None] | None,
        should_cancel: Callable[[], bool] | None,
    ) -> None:
        self.config = config
        self.plate: Plate = open_shot_plate(config)
        self.frames = list(self.plate.frames)
        self._ahead_plate: Plate | None = None  # see _read_ahead
        self.guidance_out = (
            FramePattern.parse(config.guidance_output) if config.guidance_output else None
        )
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.interrupt = Interrupt()
        self._first: Frame | None = self.plate.read(self.frames[0])
        self.shape = (self._first.height, self._first.width)
        self.colour = ColourContext.for_plate(config, self._first)
        self.settings = run_settings(config, self.colour, self.frames)
        self.outputs = OutputSet(config.output, config.output_options, self.settings)
        self.report = RunReport(outputs={k: p.source for k, p in self.outputs.patterns.items()})
        self.key_masks = keyframe_masks(config, self.frames, self.shape)  # bad masks first
        self.guidance_header = self._guidance_header()
        if not config.engine.overwrite:
            self.outputs.refuse_stale(self.frames)
        self.stages = Stages(config, self.colour)
        if next(iter(self.key_masks)) != self.frames[0]:
            self._first = None  # the first pass starts elsewhere; do not hold a frame for it
        self.done = 0

    def _guidance_header(self) -> dict[str, str]:
        """The header of ``--guidance-output`` files (refused if made by other settings)."""
        if self.guidance_out is None or not self.settings.guidance:
            return {}
        identity = json.loads(self.settings.guidance)["propagation"]
        if not self.config.engine.overwrite:
            refuse_stale_guidance(self.guidance_out.source, self.frames, identity)
        return guidance_header(identity)

    def _needs_images(self) -> bool:
        return self.config.propagate.backend in ("flow", "snapcut")

    def _is_done(self, number: int) -> bool:
        if self.config.engine.overwrite:
            return False
        return self.outputs.is_complete(number, self.shape[1], self.shape[0])

    def _fed_matte(self, alpha: np.ndarray) -> np.ndarray:
        # A resumed run reads the matte back from the EXR; feed the same quantised
        # values in an uninterrupted run so that both give identical frames.
        if self.config.output_options.dtype == "half":
            return alpha.astype(np.float16).astype(np.float32)
        return alpha

    def _alpha_on_disk(self, number: int) -> np.ndarray | None:
        for kind, channel in (("alpha", "A"), ("rgba", "A"), ("multilayer", "matte.A")):
            if kind in self.outputs.patterns:
                path = self.outputs.patterns[kind].path(number)
                if not os.path.isfile(path):
                    return None
                return read_image(path, [channel], number=number).pixels[..., 0]
        return None

    def _emit(self, number: int, status: str, bar: Any) -> None:
        self.done += 1
        if bar is not None:
            bar.update(1)
        if self.on_progress is not None:
            self.on_progress(ProgressEvent(number, self.done, len(self.frames), status))

    def _cancelled(self) -> bool:
        return self.interrupt.requested or bool(self.should_cancel and self.should_cancel())

    def _skips(self, reuse: bool, feed_matte: bool) -> bool:
        """A frame done on disk is not even read when nothing needs its image or matte."""
        return reuse and not self._needs_images() and not feed_matte

    def run_pass(self, numbers: list[int], bar: Any, *, anchor_only_first: bool) -> bool:
        """One propagation pass; returns False when the run was cancelled.

        With ``anchor_only_first`` the first frame (the keyframe, already written
        by the forward pass) only re-anchors the propagator. The next frames are read
        and the previous ones written on their own threads (``engine.io_depth``,
        :mod:`vfxmatte.engine.prefetch`); statuses are reported in frame order, once
        a frame's files are written.
        """
        propagator = make_propagator(self.config, self.frames, self.key_masks, self._read_ahead)
        feed_matte = getattr(getattr(propagator, "config", None), "feed", "mask") == "matte"
        self.stages.reset_sequence()  # a pass runs away from its keyframe: not after the last
        anchor = numbers[:1] if anchor_only_first else []
        plan = [(n, self._is_done(n)) for n in numbers[len(anchor) :]]
        reads = anchor + [n for n, reuse in plan if not self._skips(reuse, feed_matte)]
        depth, timer = self.config.engine.io_depth, self.stages.timer
        with (
            ReadAhead(self._read, reads, depth, timer=timer) as frames,
            WriteBehind(functools.partial(self._written, bar), depth, timer=timer) as writes,
        ):
            if anchor:
                self._frame(anchor[0], frames, propagator, True, feed_matte)
            for number, reuse in plan:
                if self._cancelled():
                    writes.flush()
                    return False
                if self._skips(reuse, feed_matte):
                    self.stages.reset_sequence()  # the next processed frame has no predecessor
                    writes.then(functools.partial(self._reused, number, bar))
                    continue
                try:
                    write = self._frame(number, frames, propagator, reuse, feed_matte)
                except VfxMatteError as exc:
                    writes.flush()  # the frames before it are reported first
                    self._failed(number, exc, bar)
                    continue
                if write is None:
                    writes.then(functools.partial(self._reused, number, bar))
                    continue
                with self.stages.timer.stage("write"):  # the wait for the writer thread
                    writes.make_room()
                if writes.threaded and self._cancelled():
                    # Polled again once the earlier frames are reported, so that a
                    # cancel after frame N leaves frames up to N, as without threads.
                    writes.flush()
                    return False
                writes.submit(number, write)
            writes.flush()
        return True

    def _reused(self, number: int, bar: Any) -> None:
        self.report.reused.append(number)
        self._emit(number, "reused", bar)

    def _failed(self, number: int, exc: VfxMatteError, bar: Any) -> None:
        if self.config.engine.on_error == "stop" or isinstance(exc, OutputError):
            raise exc  # an output that cannot be written fails every frame: stop
        log.error("Frame %d failed: %s", number, exc)
        self.report.failed[number] = str(exc)
        self._emit(number, "failed", bar)

    def _written(self, bar: Any, number: int, error: BaseException | None) -> None:
        """A frame's write ended (on the writer thread); report it here, in order."""
        if error is None:
            self.report.written.append(number)
            self._emit(number, "written", bar)
        elif isinstance(error, VfxMatteError):
            self._failed(number, error, bar)
        else:
            raise error

    def _read_ahead(self, number: int) -> np.ndarray:
        """Display-referred frame ``number`` for a propagator that runs back from the next
        keyframe: its own plate reader, as the reader thread uses ``self.plate``."""
        if self._ahead_plate is None:
            self._ahead_plate = open_shot_plate(self.config)
        return self.colour.display(self._ahead_plate.read(number).pixels[..., :3])

    def _read(self, number: int) -> tuple[Frame, np.ndarray]:
        """Plate frame ``number`` and its display-referred copy (on the reader thread)."""
        first, self._first = self._first, None  # held only until its first use
        frame = first if first is not None and first.number == number else self.plate.read(number)
        return frame, self.colour.display(frame.pixels[..., :3])

    def _frame(
        self,
        number: int,
        frames: ReadAhead[tuple[Frame, np.ndarray]],
        propagator: Any,
        reuse: bool,
        feed_matte: bool,
    ) -> Callable[[], None] | None:
        """Propagate and matte one frame; the write of its files (None when reused)."""
        timer = self.stages.timer
        with timer.stage("read"):  # the wait for the reader thread
            frame, display = frames.take(number)
        with timer.stage("propagate"):
            if number in self.key_masks:
                guidance = propagator.reset(display, self.key_masks[number], index=number)
            else:
                guidance = propagator.step(display, index=number)
        drift = getattr(propagator, "drift", None)
        if drift is not None:
            self.report.drift.add(number, drift)
        if reuse:
            alpha = self._alpha_on_disk(number) if feed_matte else None
            if alpha is not None:
                propagator.correct(alpha)
            return None
        result = self.stages.process(frame, guidance, display)
        # The writer thread gets arrays nobody changes after this (a propagator may
        # update its own in place).
        guidance = guidance.copy() if self.guidance_out is not None else None
        if feed_matte:
            fed = self._fed_matte(result.alpha)
            propagator.correct(fed.copy() if fed is result.alpha else fed)
        return functools.partial(self._write, guidance, result)

    def _write(self, guidance: np.ndarray | None, result: FrameResult) -> None:
        """Every file of one frame (on the writer thread)."""
        if self.guidance_out is not None and guidance is not None:
            # float32, as the propagation phase of a parallel run writes it
            write_image(
                self.guidance_out.path(result.number),
                guidance,
                ["A"],
                metadata=self.guidance_header,
                dtype="float",
            )
        self.outputs.write(result)


def _propagation_pass(
    config: PipelineConfig,
    on_progress: Callable[[ProgressEvent], None] | None,
    should_cancel: Callable[[], bool] | None,
) -> PipelineConfig | None:
    """SAM 2's whole-shot pass before matting; the config that mattes from its files.

    Each guidance frame written is reported as a :class:`ProgressEvent` with status
    ``propagated`` (``done``/``total`` count this pass), so a host's progress moves
    during it too. ``None`` when ``should_cancel`` stopped the pass.
    """
    total = len(open_shot_plate(config).frames)
    done = 0
    stopped = False

    def on_frame(number: int) -> None:
        nonlocal done
        done += 1
        if on_progress is not None:
            on_progress(ProgressEvent(number, done, total, "propagated"))

    def cancel() -> bool:
        nonlocal stopped
        stopped = stopped or bool(should_cancel is not None and should_cancel())
        return stopped

    given = propagate_first(config, on_frame=on_frame, should_cancel=cancel)
    return None if stopped else given


def run_pipeline(
    config: PipelineConfig,
    *,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    extra_inputs: Mapping[str, str] | None = None,
) -> RunReport:
    """Run the whole job of ``config`` and return its :class:`RunReport`.

    ``engine.executor=local`` runs the frame loop of this module. ``processes`` and
    ``dask``, and a run from precomputed ``guidance`` (a render-farm chunk), run in
    two phases: propagation to guidance files, then chunks of frames matted in
    parallel (:mod:`vfxmatte.engine.parallel`); their frames are identical.
    ``engine.phase=propagate`` stops after writing the guidance.

    Args:
        on_progress: called after every frame (hosts update their progress bar;
            an exception raised here stops the run, e.g. ComfyUI's interrupt). A local
            ``sam2`` run first reports each propagated frame (status ``propagated``),
            then each matted one.
        should_cancel: polled before every frame (between chunks' results in a
            parallel run); ``True`` stops the run cleanly.
        extra_inputs: more files the run must not write, by label (the CLI's YAML
            config file).

    Before any work every file the run writes is checked against every input and
    its location, and its frames are locked (:func:`~vfxmatte.engine.paths.guarded_run`);
    frames on disk made with other settings stop the run unless ``engine.overwrite``
    (:mod:`vfxmatte.engine.digest`).

    Raises:
        VfxMatteError: bad input or config, or a failing frame with ``on_error=stop``;
            :class:`~vfxmatte.errors.OutputError` for an output that cannot or must
            not be written (any ``on_error``).
    """
    validate_fields(config.engine, where="engine.")
    with guarded_run(config, extra_inputs):
        return _dispatch(config, on_progress, should_cancel)


def _dispatch(
    config: PipelineConfig,
    on_progress: Callable[[ProgressEvent], None] | None,
    should_cancel: Callable[[], bool] | None,
) -> RunReport:
    """:func:`run_pipeline` once its outputs are checked and locked."""
    if config.engine.phase == "propagate":
        from vfxmatte.engine.parallel import run_propagation_phase

        return run_propagation_phase(config)
    if config.engine.executor == "dask":
        from vfxmatte.engine.executors import runs_here_when_too_small

        config = runs_here_when_too_small(config)
    if config.guidance or config.engine.executor != "local":
        from vfxmatte.engine.parallel import run_chunked

        return run_chunked(config, on_progress=on_progress, should_cancel=should_cancel)
    start = time.perf_counter()
    if config.propagate.backend == "sam2":
        given = _propagation_pass(config, on_progress, should_cancel)
        if given is None:
            outputs = OutputSet(config.output, config.output_options).patterns
            report = RunReport(cancelled=True, outputs={k: p.source for k, p in outputs.items()})
            report.seconds = time.perf_counter() - start
            return report
        config = given
    run = _Run(config, on_progress, should_cancel)
    key = next(iter(run.key_masks))
    bar = progress_bar(config.engine.progress, len(run.frames))
    try:
        with run.interrupt.installed():
            for i, numbers in enumerate(plan_passes(run.frames, key)):
                if not run.run_pass(numbers, bar, anchor_only_first=i > 0):
                    run.report.cancelled = True
                    break
    finally:
        if bar is not None:
            bar.close()
    run.report.seconds = time.perf_counter() - start
    run.report.timings = dict(run.stages.timer.seconds)
    run.report.written.sort()
    run.report.reused.sort()
    return run.report
