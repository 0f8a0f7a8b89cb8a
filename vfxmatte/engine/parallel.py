"""Parallel and render-farm runs: propagate to guidance files, then matte chunks of frames.

Two phases. **Propagation** is sequential: it runs once, in one process, and
writes every frame's guidance (:func:`~vfxmatte.engine.propagation.propagate_to_files`;
skipped with ``propagate.backend=given`` or with precomputed ``guidance``).
**Matting** (matte, refine, decontaminate) then maps over chunks of frames
(:mod:`vfxmatte.engine.chunks`) on the executor ``engine.executor`` names:
``processes`` (worker processes on this machine), ``dask`` (a Dask cluster), or
``local`` in this process, which is what one render-farm chunk
(``vfxmatte matte --frames 1001-1050 --guidance G``) runs.

When the executor's workers share this machine, propagation runs in a thread of
this process (:class:`~vfxmatte.engine.propagation.BackgroundPropagation`) and
each chunk is submitted as soon as the guidance of its frames exists, so matting
overlaps propagation; on a remote cluster it runs first, as one task.

Frames whose outputs are complete before the run are reported ``reused`` and not
sent anywhere; every other frame is ``written`` (by whichever worker and attempt
wrote it) or ``failed``. The frames are identical to those of the local loop.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable
from typing import Any

from vfxmatte.engine.chunks import (
    Chunk,
    ChunkResult,
    ChunkTask,
    GuidanceSource,
    auto_chunk_size,
    file_system_now,
    plan_chunks,
    run_chunk,
)
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.digest import run_settings
from vfxmatte.engine.outputs import OutputSet
from vfxmatte.engine.propagation import (
    BackgroundPropagation,
    PropagationResult,
    check_parallel_propagation,
    guidance_pattern,
    keyframe_masks,
    propagate_to_files,
)
from vfxmatte.engine.report import Interrupt, ProgressEvent, RunReport, progress_bar
from vfxmatte.engine.stages import ColourContext, Stages, open_shot_plate
from vfxmatte.errors import DeviceError, OutputError, VfxMatteError
from vfxmatte.io.plate import is_video, open_plate
from vfxmatte.io.sequence import FramePattern

__all__ = ["run_chunked", "run_propagation_phase"]

log = logging.getLogger(__name__)

_POLL_SECONDS = 0.2


def run_propagation_phase(config: PipelineConfig) -> RunReport:
    """``engine.phase=propagate``: write the guidance of every frame, matte nothing.

    The report lists the guidance frames written (or reused when the guidance
    was already complete) and names the pattern under ``outputs["guidance"]``.
    """
    start = time.perf_counter()
    result = propagate_to_files(config)
    frames = open_plate(
        config.plate, config.frames or None, first_frame=config.input.first_frame
    ).frames
    report = RunReport(
        written=result.written,
        reused=sorted(set(frames) - set(result.written) - set(result.failed)),
        failed=dict(result.failed),
        outputs={"guidance": result.pattern},
        drift=result.drift,
    )
    report.seconds = time.perf_counter() - start
    report.timings = {"propagate": report.seconds}
    return report


class _ChunkedRun:
    """State of one :func:`run_chunked` call."""

    def __init__(
        self,
        config: PipelineConfig,
        on_progress: Callable[[ProgressEvent], None] | None,
        should_cancel: Callable[[], bool] | None,
    ) -> None:
        self.config = config
        plate = open_shot_plate(config)
        self.frames = list(plate.frames)
        first = plate.read(self.frames[0])
        self.shape = (first.height, first.width)
        self.colour = ColourContext.for_plate(config, first)
        self.source, self.available, self.needs_propagation = self._guidance()
        self.settings = run_settings(config, self.colour, self.frames)
        self.outputs = OutputSet(config.output, config.output_options, self.settings)
        if not config.engine.overwrite:
            self.outputs.refuse_stale(self.frames)
        self.done_at_start = self._done_at_start()
        if self.done_at_start.issuperset(self.frames):
            self.needs_propagation = False  # nothing to matte: no guidance needed
        self.fresh_after_ns = (
            file_system_now(self._output_folder()) if config.engine.overwrite else None
        )
        self.report = RunReport(outputs={k: p.source for k, p in self.outputs.patterns.items()})
        self.report.outputs["guidance"] = self.source.pattern
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.interrupt = Interrupt()
        self.bar: Any = None
        self.done = 0
        # Frames whose guidance exists (None: all of them) and frames it failed for.
        self.ready: set[int] | None = set() if self.needs_propagation else None
        self.unguided: dict[int, str] = {}

    def _guidance(self) -> tuple[GuidanceSource, list[int], bool]:
        """Where guidance comes from, the frames warm-up may use, and whether to propagate."""
        config, frames = self.config, self.frames
        channel, resize = config.input.mask_channel, config.input.mask_resize
        if config.guidance:
            source = GuidanceSource(config.guidance, channel, resize)
            source.require(
                frames,
                "run the propagation job first (vfxmatte farm-split prints it: vfxmatte matte "
                "... --phase propagate), or check --guidance and --frames.",
            )
            return source, self._warmup_candidates(source), False
        if config.propagate.backend == "given":
            source = GuidanceSource(config.mask, channel, resize)
            source.require(frames, "propagate.backend=given needs a mask for every plate frame.")
            return source, frames, False
        check_parallel_propagation(config)
        keyframe_masks(config, frames, self.shape)  # bad keyframes fail before any work
        return GuidanceSource(guidance_pattern(config)), frames, True

    def _warmup_candidates(self, source: GuidanceSource) -> list[int]:
        """Frames with guidance and a plate frame: a chunk may warm up before ``--frames``."""
        if not self.config.engine.overlap:
            return self.frames
        config = self.config
        if is_video(config.plate):
            plate_frames = open_plate(config.plate, first_frame=config.input.first_frame).frames
        else:
            plate_frames = FramePattern.parse(config.plate).frames_on_disk()
        return sorted(set(source.frames_on_disk()) & set(plate_frames))

    def _done_at_start(self) -> set[int]:
        if self.config.engine.overwrite:
            return set()
        height, width = self.shape
        return {n for n in self.frames if self.outputs.is_complete(n, width, height)}

    def _output_folder(self) -> str:
        pattern = next(iter(self.outputs.patterns.values()))
        return os.path.dirname(os.path.abspath(pattern.path(self.frames[0])))

    # -- reporting -------------------------------------------------------------------

    def _emit(self, number: int, status: str) -> None:
        self.done += 1
        if self.bar is not None:
            self.bar.update(1)
        if self.on_progress is not None:
            self.on_progress(ProgressEvent(number, self.done, len(self.frames), status))

    def _add(self, number: int, status: str, message: str = "", *, emit: bool = True) -> None:
        if status == "failed":
            self.report.failed[number] = message
        else:
            (self.report.written if status == "written" else self.report.reused).append(number)
        if emit:
            self._emit(number, status)

    def _merge(self, result: ChunkResult, *, emit: bool) -> None:
        """Add a chunk's statuses; raise its error under ``on_error=stop``."""
        for name, seconds in result.timings.items():
            self.report.timings[name] = self.report.timings.get(name, 0.0) + seconds
        for number, status in sorted(result.statuses.items()):
            if number in self.done_at_start:
                continue  # reported as reused at the start
            # Complete on disk, yet not before the run: an earlier attempt wrote it.
            status = "written" if status == "reused" else status
            self._add(number, status, result.messages.get(number, ""), emit=emit)
        if result.error is not None:
            raise result.error

    def _chunk_failed(self, chunk: Chunk, reason: str, error: BaseException) -> None:
        """A chunk given up on: its frames complete on disk are written, the rest failed."""
        height, width = self.shape
        message = f"frames {chunk.name} could not be matted: {reason}"
        log.error("%s", message)
        for number in chunk.frames:
            if number in self.done_at_start:
                continue
            complete = self.outputs.is_complete(number, width, height)
            self._add(number, "written" if complete else "failed", message)
        if self.config.engine.on_error == "stop" or isinstance(error, OutputError):
            if isinstance(error, VfxMatteError):
                raise error
            raise DeviceError(message[0].upper() + message[1:] + ".") from error

    def _cancelled(self) -> bool:
        return self.interrupt.requested or bool(self.should_cancel and self.should_cancel())

    # -- running ---------------------------------------------------------------------

    def tasks(self, size: int) -> list[ChunkTask]:
        chunks = plan_chunks(self.frames, size, self.config.engine.overlap, self.available)
        return [
            ChunkTask(
                self.config,
                self.colour,
                self.source,
                chunk,
                self.shape,
                self.fresh_after_ns,
                self.settings,
            )
            for chunk in chunks
            if any(n not in self.done_at_start for n in chunk.frames)
        ]

    def start(self) -> None:
        self.bar = progress_bar(self.config.engine.progress, len(self.frames))
        for number in sorted(self.done_at_start):
            self._add(number, "reused")

    # -- propagation ---------------------------------------------------------------

    def _guidance_failed(self, number: int, reason: str) -> None:
        self.unguided[number] = reason
        if number not in self.done_at_start:
            self._add(number, "failed", reason)

    def _propagated(self, seconds: float) -> None:
        """Propagation is over: every frame has guidance, or failed."""
        self.report.timings["propagate"] = seconds
        todo = [n for n in self.frames if n not in self.unguided]
        self.source.require(todo, "the propagation phase did not write them.")
        self.ready = None

    def propagate_first(self, propagate: Callable[[PipelineConfig], PropagationResult]) -> None:
        """The propagation phase, before any chunk (on a remote cluster, in this process)."""
        if not self.needs_propagation:
            return
        start = time.perf_counter()
        result = propagate(self.config)
        self.report.drift = result.drift
        for number, reason in sorted(result.failed.items()):
            self._guidance_failed(number, reason)
        self._propagated(time.perf_counter() - start)

    def follow(self, background: BackgroundPropagation) -> None:
        """Take the frames a background propagation wrote or failed since last time."""
        done = background.done  # before drain(): then no event is left behind
        for number, reason in background.drain():
            if reason is None:
                self.ready.add(number)  # type: ignore[union-attr]
            else:
                self._guidance_failed(number, reason)
        if done:
            if background.error is not None:
                raise background.error
            if background.result is not None:
                self.report.drift = background.result.drift
            self._propagated(background.seconds)

    def _startable(self, task: ChunkTask) -> ChunkTask | None | bool:
        """The task to submit (frames without guidance left out), None, or False: not yet."""
        chunk = task.chunk
        if self.ready is not None:
            known = self.ready.union(self.unguided)
            if not known.issuperset(chunk.warmup) or not known.issuperset(chunk.frames):
                return False
        if not self.unguided:
            return task
        frames = tuple(n for n in chunk.frames if n not in self.unguided)
        warmup = tuple(n for n in chunk.warmup if n not in self.unguided)
        return dataclasses.replace(task, chunk=Chunk(frames, warmup)) if frames else None

    # -- running ---------------------------------------------------------------------

    def run_here(self) -> None:
        """Every chunk in this process, in order, with per-frame progress."""
        self.propagate_first(propagate_to_files)
        size = self.config.engine.chunk_size or len(self.frames)
        stages = Stages(self.config, self.colour)
        for task in self.tasks(size):
            startable = self._startable(task)
            if not isinstance(startable, ChunkTask):
                continue
            result = run_chunk(
                startable, stages, on_frame=self._emit_unless_done, should_stop=self._cancelled
            )
            self._merge(result, emit=False)
            if result.cancelled:
                self.report.cancelled = True
                return

    def _emit_unless_done(self, number: int, status: str) -> None:
        if number not in self.done_at_start:
            self._emit(number, "written" if status == "reused" else status)

    def run_on(self, executor: Any) -> None:
        """Chunks as futures of ``executor``, submitted as their guidance lands."""
        background = None
        if self.needs_propagation and executor.propagates_here:
            background = BackgroundPropagation(self.config)
        else:
            self.propagate_first(executor.propagate)
        engine = self.config.engine
        size = engine.chunk_size or auto_chunk_size(
            len(self.frames), executor.workers, engine.overlap
        )
        waiting = self.tasks(size)
        pending: dict[Any, tuple[ChunkTask, int]] = {}
        try:
            while waiting or pending or self.ready is not None:
                if self._cancelled():
                    self.report.cancelled = True
                    return
                if background is not None and self.ready is not None:
                    self.follow(background)
                waiting = self._submit_startable(executor, waiting, pending)
                if not pending:
                    time.sleep(_POLL_SECONDS / 4)  # waiting for guidance only
                    continue
                for future in executor.wait(list(pending), _POLL_SECONDS):
                    task, attempt = pending.pop(future)
                    if self._collect(executor, future, task, attempt):
                        pending[executor.submit(task)] = (task, attempt + 1)
        finally:
            if background is not None and not background.done:
                background.stop()
            if pending:
                executor.cancel(list(pending))

    def _submit_startable(
        self, executor: Any, waiting: list[ChunkTask], pending: dict[Any, tuple[ChunkTask, int]]
    ) -> list[ChunkTask]:
        """Submit the waiting chunks whose guidance is all there; the others still wait."""
        still = []
        for task in waiting:
            startable = self._startable(task)
            if startable is False:
                still.append(task)
            elif isinstance(startable, ChunkTask):
                pending[executor.submit(startable)] = (startable, 1)
        return still

    def _collect(self, executor: Any, future: Any, task: ChunkTask, attempt: int) -> bool:
        """Merge one finished future; True when the chunk is to be submitted again."""
        try:
            result = future.result()
        except executor.retry_errors as exc:
            if attempt <= self.config.engine.retries:
                log.warning("Retrying frames %s: %s", task.chunk.name, exc)
                return True
            self._chunk_failed(task.chunk, executor.lost_worker(exc) or str(exc), exc)
        except VfxMatteError as exc:
            self._chunk_failed(task.chunk, str(exc), exc)
        except Exception as exc:
            reason = executor.lost_worker(exc)
            if reason is None:
                raise
            self._chunk_failed(task.chunk, reason, exc)
        else:
            self._merge(result, emit=True)
        return False

    def finish(self, start: float) -> RunReport:
        if self.bar is not None:
            self.bar.close()
        report = self.report
        report.seconds = time.perf_counter() - start
        report.written.sort()
        report.reused.sort()
        report.failed = dict(sorted(report.failed.items()))
        return report


def run_chunked(
    config: PipelineConfig,
    *,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunReport:
    """Propagate (unless guidance is given), then matte chunks of frames on the executor.

    Input and config errors are raised before any worker is started.

    Raises:
        VfxMatteError: bad input or config, missing guidance frames (listed), an
            unreachable scheduler, or a failing frame with ``on_error=stop``.
    """
    start = time.perf_counter()
    run = _ChunkedRun(config, on_progress, should_cancel)
    executor = None
    if config.engine.executor != "local":
        from vfxmatte.engine.executors import make_executor

        executor = make_executor(config.engine)
    try:
        with run.interrupt.installed():
            run.start()
            if executor is None:
                run.run_here()
            else:
                run.run_on(executor)
    finally:
        if executor is not None:
            executor.close()
        report = run.finish(start)
    return report
