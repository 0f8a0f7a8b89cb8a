"""Chunks of frames matted from guidance files: the unit of parallel and render-farm work.

After the propagation phase every frame has a guidance file, so matte, refine and
decontaminate of one frame need nothing but that frame (:meth:`Stages.process
<vfxmatte.engine.stages.Stages.process>` is a pure function of it). A shot is cut
into chunks of consecutive frames; a chunk runs in one worker, which builds its
:class:`~vfxmatte.engine.stages.Stages` once (:class:`StagesCache`) and keeps
them for every chunk it is given.

**Warm-up.** A stage that uses neighbouring frames (temporal smoothing, the
temporal sparsity of refinement) would restart cold at every chunk boundary and
leave a seam. With ``engine.overlap = N`` a chunk first processes the N frames
before it (its *warm-up*) without writing them, so its first frame sees the same
history as in an uninterrupted run. A stages object with temporal state may
define ``reset_sequence()``: it is called before the first frame of every run of
consecutive frames a chunk processes.

**Resume and retries.** A frame whose outputs are complete on disk (and carry this
run's settings digest, :mod:`vfxmatte.engine.digest`) is not written again, so a
chunk retried after its worker died rewrites only what the dead attempt did not
finish; each file is written atomically (temporary name, then
rename), so no frame is ever seen half written.
"""

from __future__ import annotations

import atexit
import functools
import gc
import json
import logging
import os
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfxmatte.config import config_to_dict
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.digest import FrameSettings, run_settings
from vfxmatte.engine.outputs import OutputSet
from vfxmatte.engine.prefetch import ReadAhead, WriteBehind
from vfxmatte.engine.stages import ColourContext, Stages, open_shot_plate
from vfxmatte.errors import MissingFramesError, OutputError, VfxMatteError
from vfxmatte.io.frame import Frame
from vfxmatte.io.mask import read_mask
from vfxmatte.io.sequence import FramePattern, compress_frames

__all__ = [
    "Chunk",
    "ChunkResult",
    "ChunkTask",
    "GuidanceSource",
    "StagesCache",
    "auto_chunk_size",
    "cpu_count",
    "exit_quickly",
    "frame_range_text",
    "limit_threads",
    "plan_chunks",
    "run_chunk",
    "warmup_frames",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class GuidanceSource:
    """Where each frame's guidance mask is read: a pattern, a channel, resize or not."""

    pattern: str
    channel: str = "A"
    resize: bool = False

    def frames_on_disk(self) -> list[int]:
        return FramePattern.parse(self.pattern).frames_on_disk()

    def require(self, frames: Iterable[int], hint: str) -> None:
        """Raise :class:`MissingFramesError` listing the frames that have no guidance file."""
        present = set(self.frames_on_disk())
        missing = sorted(f for f in frames if f not in present)
        if missing:
            raise MissingFramesError(
                f"The guidance '{self.pattern}' lacks {len(missing)} frame(s): "
                f"{compress_frames(missing)}; {hint}",
                missing,
            )

    def read(self, number: int, shape: tuple[int, int]) -> np.ndarray:
        """``H x W`` float32 guidance of frame ``number`` (empty masks allowed)."""
        return read_mask(
            FramePattern.parse(self.pattern).path(number),
            shape=shape,
            channel=self.channel,
            resize=self.resize,
            number=number,
            allow_empty=True,
        )


@dataclass(frozen=True)
class Chunk:
    """Frames one task writes, and the warm-up frames it processes first."""

    frames: tuple[int, ...]
    warmup: tuple[int, ...] = ()

    @property
    def name(self) -> str:
        return frame_range_text(self.frames)


def frame_step(frames: Sequence[int]) -> int | None:
    """The step of an increasing arithmetic progression, else None (1 for one frame)."""
    if len(frames) < 2:
        return 1
    step = frames[1] - frames[0]
    if step < 1 or any(b - a != step for a, b in zip(frames, frames[1:], strict=False)):
        return None
    return step


def frame_range_text(frames: Sequence[int]) -> str:
    """A ``--frames`` value: ``1001-1050``, ``1001-1049x2``, or ``1001-1003,1007``."""
    step = frame_step(frames)
    if step is None:
        return compress_frames(frames).replace(" ", "")
    if len(frames) == 1:
        return str(frames[0])
    suffix = f"x{step}" if step > 1 else ""
    return f"{frames[0]}-{frames[-1]}{suffix}"


def warmup_frames(first: int, step: int, overlap: int, available: Iterable[int]) -> tuple[int, ...]:
    """Up to ``overlap`` frames before ``first`` (every ``step``), in order, all available.

    The walk back stops at the first frame that is not available (the start of
    the shot, or a hole).
    """
    have = set(available)
    frames: list[int] = []
    number = first - step
    while len(frames) < overlap and number in have:
        frames.append(number)
        number -= step
    return tuple(reversed(frames))


def plan_chunks(
    frames: Sequence[int], size: int, overlap: int = 0, available: Iterable[int] | None = None
) -> list[Chunk]:
    """Cut ``frames`` (in order) into chunks of ``size`` with ``overlap`` warm-up frames.

    Args:
        available: frames warm-up may use (default ``frames``); a farm chunk uses
            every frame that has guidance, including frames before its range.
    """
    if size < 1:
        raise ValueError(f"chunk size must be at least 1, got {size}")
    have = set(frames if available is None else available)
    step = frame_step(list(frames)) or 1
    chunks = []
    for i in range(0, len(frames), size):
        part = tuple(frames[i : i + size])
        chunks.append(Chunk(part, warmup_frames(part[0], step, overlap, have)))
    return chunks


def auto_chunk_size(frames: int, workers: int, overlap: int = 0) -> int:
    """Frames per chunk: about eight chunks per worker, between 1 and 50 frames.

    Many small chunks keep every worker busy to the end of the shot (the last
    chunk finishes alone); a task costs about 10 ms, a frame hundreds. With
    warm-up, a chunk is at least four times the overlap, so that at most a fifth
    of the work is warm-up.
    """
    size = -(-frames // max(1, 8 * workers))
    return max(1, 4 * overlap, min(50, size))


def cpu_count() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def limit_threads(threads: int) -> None:
    """Use ``threads`` threads in OpenCV, torch, numba and later-started BLAS pools.

    Several worker processes on one machine each get a share of its cores, so
    that N workers on N cores do not fight over them. Call it from the thread that
    runs the work too: numba's setting is per thread.
    """
    if threads < 1:
        return
    for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[name] = str(threads)
    if "numba" not in sys.modules:
        os.environ["NUMBA_NUM_THREADS"] = str(threads)
    else:
        numba = sys.modules["numba"]
        numba.set_num_threads(max(1, min(threads, numba.config.NUMBA_NUM_THREADS)))
    import cv2

    cv2.setNumThreads(threads)
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != threads:
        torch.set_num_threads(threads)


class StagesCache:
    """The :class:`Stages` of one worker process, built once per config and kept.

    Building may load networks; a worker keeps the last build and rebuilds only
    for another config. ``builds`` and ``chunks`` count what it did.
    """

    def __init__(self, threads: int = 0) -> None:
        self.threads = threads
        self.builds = 0
        self.chunks = 0
        self._key: tuple[str, ColourContext] | None = None
        self._stages: Stages | None = None
        self._lock = threading.Lock()

    def get(self, config: PipelineConfig, colour: ColourContext) -> Stages:
        key = (json.dumps(config_to_dict(config), sort_keys=True, default=str), colour)
        with self._lock:
            self.chunks += 1
            if self._stages is None or key != self._key:
                self._stages = None  # free the previous models before loading new ones
                self._stages = Stages(config, colour)
                self._key = key
                self.builds += 1
            limit_threads(self.threads)  # after the build: it may have imported torch
            return self._stages

    def clear(self) -> None:
        with self._lock:
            self._stages, self._key = None, None


@dataclass
class ChunkTask:
    """Everything a worker needs to matte one chunk (picklable).

    ``shape`` is the plate's ``(H, W)``. ``fresh_after_ns``: with
    ``engine.overwrite``, outputs modified after this file-system time were
    written by this run (by an attempt that died), so a retry keeps them.
    ``settings``: the run's settings digest (:mod:`vfxmatte.engine.digest`); made
    from ``config`` when not given.
    """

    config: PipelineConfig
    colour: ColourContext
    guidance: GuidanceSource
    chunk: Chunk
    shape: tuple[int, int]
    fresh_after_ns: int | None = None
    settings: FrameSettings | None = None


@dataclass
class ChunkResult:
    """Per-frame status of one chunk; ``error`` is the frame error that stops the run."""

    chunk: Chunk
    statuses: dict[int, str] = field(default_factory=dict)
    messages: dict[int, str] = field(default_factory=dict)
    error: VfxMatteError | None = None
    cancelled: bool = False
    timings: dict[str, float] = field(default_factory=dict)
    worker: str = ""


def _is_done(task: ChunkTask, outputs: OutputSet, number: int) -> bool:
    height, width = task.shape
    if not outputs.is_complete(number, width, height):
        return False
    if not task.config.engine.overwrite:
        return True
    fresh = task.fresh_after_ns
    # Strictly newer: a file stamped in the same clock tick as the run's start is
    # redone (the same frame again) rather than taken for this run's.
    return fresh is not None and all(
        os.stat(path).st_mtime_ns > fresh for path in outputs.paths(number)
    )


def _needed(sequence: list[int], todo: set[int], overlap: int) -> list[bool]:
    """Frame i is processed when it or one of the ``overlap`` frames after it is to do."""
    return [any(f in todo for f in sequence[i : i + overlap + 1]) for i in range(len(sequence))]


def _reset_sequence(stages: Any) -> None:
    reset = getattr(stages, "reset_sequence", None)
    if callable(reset):
        reset()


class _Stopped(Exception):
    """A frame error under ``on_error=stop`` (or an output error) ended the chunk."""


class _ChunkRun:
    """The frames of one chunk, as :func:`run_chunk` walks them.

    Frames are read ahead on one thread and written behind on another
    (``engine.io_depth``, :mod:`vfxmatte.engine.prefetch`); a frame's status is
    recorded in frame order, once its files are written.
    """

    def __init__(
        self, task: ChunkTask, stages: Stages, on_frame: Callable[[int, str], None] | None
    ) -> None:
        self.task, self.stages, self.on_frame = task, stages, on_frame
        config = task.config
        settings = task.settings or run_settings(config, task.colour, list(task.chunk.frames))
        self.outputs = OutputSet(config.output, config.output_options, settings)
        self.todo = {n for n in task.chunk.frames if not _is_done(task, self.outputs, n)}
        self.writable = set(task.chunk.frames)
        frames = [*task.chunk.warmup, *task.chunk.frames]
        self.plate = open_shot_plate(task.config, frames) if self.todo else None
        self.result = ChunkResult(task.chunk, worker=f"{os.uname().nodename}:{os.getpid()}")
        self.frames: ReadAhead[tuple[Frame, np.ndarray, np.ndarray]] | None = None
        self.writes: WriteBehind | None = None

    def record(self, number: int, status: str) -> None:
        if number in self.writable:
            self.result.statuses[number] = status
            if self.on_frame is not None:
                self.on_frame(number, status)

    def load(self, number: int) -> tuple[Frame, np.ndarray, np.ndarray]:
        """Plate frame, its display copy and its guidance (on the reader thread)."""
        frame = self.plate.read(number)  # type: ignore[union-attr]
        display = self.task.colour.display(frame.pixels[..., :3])
        return frame, display, self.task.guidance.read(number, self.task.shape)

    def failed(self, number: int, exc: VfxMatteError) -> str:
        """Record a frame error: ``failed``, or raise :class:`_Stopped` to end the chunk."""
        if number not in self.writable:
            log.warning("Warm-up frame %d failed (%s); continuing without it.", number, exc)
            return "failed"
        log.error("Frame %d failed: %s", number, exc)
        self.result.messages[number] = str(exc)
        self.record(number, "failed")
        if self.task.config.engine.on_error == "stop" or isinstance(exc, OutputError):
            self.result.error = exc
            raise _Stopped
        return "failed"

    def written(self, number: int, error: BaseException | None) -> None:
        """A frame's write ended (on the writer thread); record it here, in order."""
        if error is None:
            self.record(number, "written")
        elif isinstance(error, VfxMatteError):
            self.failed(number, error)
        else:
            raise error

    def frame(self, number: int, should_stop: Callable[[], bool] | None = None) -> str:
        """Process (and write, if to do) one frame: ``ok``, ``failed`` or ``cancelled``
        (computed, not written); :class:`_Stopped` ends the chunk."""
        frames, writes, timer = self.frames, self.writes, self.stages.timer
        assert frames is not None and writes is not None
        try:
            with timer.stage("read"):  # the wait for the reader thread
                frame, display, guidance = frames.take(number)
            result = self.stages.process(frame, guidance, display)
        except VfxMatteError as exc:
            writes.flush()  # the frames before it are recorded first
            return self.failed(number, exc)
        if number in self.todo:
            with timer.stage("write"):  # the wait for the writer thread
                writes.make_room()
            if writes.threaded and should_stop is not None and should_stop():
                # Polled again once the earlier frames are recorded, so that a stop
                # after frame N leaves frames up to N, as without threads.
                return "cancelled"
            writes.submit(number, functools.partial(self.outputs.write, result))
        else:
            writes.then(functools.partial(self.record, number, "reused"))
        return "ok"

    def walk(
        self, sequence: list[int], needed: list[bool], should_stop: Callable[[], bool] | None
    ) -> None:
        """Every frame of ``sequence`` in order; :class:`_Stopped` ends the walk."""
        writes = self.writes
        assert writes is not None
        cold = True
        for number, need in zip(sequence, needed, strict=True):
            if not need:
                cold = True
                writes.then(functools.partial(self.record, number, "reused"))
                continue
            if should_stop is not None and should_stop():
                self.result.cancelled = True
                break
            if cold:
                _reset_sequence(self.stages)
            outcome = self.frame(number, should_stop)
            if outcome == "cancelled":
                self.result.cancelled = True
                break
            cold = outcome == "failed"  # the history has a hole: start again cold
        writes.flush()


def run_chunk(
    task: ChunkTask,
    stages: Stages,
    *,
    on_frame: Callable[[int, str], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ChunkResult:
    """Matte the frames of ``task.chunk`` (after its warm-up) and write those not done.

    Frames are processed in order. A frame is skipped when it is done and none of
    the ``engine.overlap`` frames after it is to do; the stages' temporal state is
    reset (``reset_sequence``) wherever the processed frames are not consecutive.
    The next frames are read and the previous ones written on their own threads
    (``engine.io_depth``); the frames are the same as without them.

    Args:
        on_frame: called with ``(number, status)`` after each frame of the chunk.
        should_stop: polled before each frame; True ends the chunk (``cancelled``).

    Returns:
        A :class:`ChunkResult` with a status for every frame reached. A frame
        error (:class:`VfxMatteError`) fails that frame; with ``on_error=stop`` it
        also ends the chunk and is returned as ``error``. Other exceptions propagate
        (the executor retries the chunk).
    """
    before = dict(stages.timer.seconds)
    run = _ChunkRun(task, stages, on_frame)
    sequence = [*task.chunk.warmup, *task.chunk.frames]
    needed = _needed(sequence, run.todo, task.config.engine.overlap)
    reads = [n for n, need in zip(sequence, needed, strict=True) if need]
    depth, timer = task.config.engine.io_depth, stages.timer
    with (
        ReadAhead(run.load, reads, depth, timer=timer) as run.frames,
        WriteBehind(run.written, depth, timer=timer) as run.writes,
    ):
        try:
            run.walk(sequence, needed, should_stop)
        except _Stopped:
            pass
    seconds = stages.timer.seconds
    run.result.timings = {k: v - before.get(k, 0.0) for k, v in seconds.items()}
    return run.result


def file_system_now(folder: str) -> int:
    """The file system's clock (``st_mtime_ns`` of a new file in ``folder``).

    Compared with output files' modification times, it does not depend on the
    clocks of the machines that run the workers.
    """
    os.makedirs(folder, exist_ok=True)
    probe = os.path.join(folder, f".vfxmatte-clock-{os.getpid()}-{time.monotonic_ns()}")
    with open(probe, "wb"):
        pass
    try:
        return os.stat(probe).st_mtime_ns
    finally:
        os.unlink(probe)


_PROCESS_CACHE = StagesCache()


def exit_quickly() -> None:
    """Let this worker process end without a last garbage collection over its objects.

    With torch loaded, the collection Python runs at exit takes seconds (1.8 s
    measured for ``import torch`` alone), which a cluster's close waits for, once
    per worker ("worker process still alive, killing"). Freezing the objects at
    exit (``gc.freeze`` from ``atexit``) skips it; files are closed by their owners
    before (outputs are written and renamed by then).
    """
    global _EXIT_QUICKLY
    if not _EXIT_QUICKLY:
        atexit.register(gc.freeze)
        _EXIT_QUICKLY = True


_EXIT_QUICKLY = False


def init_worker_process(threads: int) -> None:
    """Initializer of a worker process of the ``processes`` executor."""
    _PROCESS_CACHE.threads = threads
    limit_threads(threads)
    exit_quickly()


def run_chunk_in_process(task: ChunkTask) -> ChunkResult:
    """Task function of worker processes: the process's cached stages, then :func:`run_chunk`."""
    return run_chunk(task, _PROCESS_CACHE.get(task.config, task.colour))
