"""Where chunks run: worker processes on this machine, or a Dask cluster.

An executor takes :class:`~vfxmatte.engine.chunks.ChunkTask` objects and hands
back futures; :mod:`vfxmatte.engine.parallel` collects them. Scheduling is the
executor's own (``concurrent.futures`` or Dask distributed); nothing here
decides which worker runs what. ``dask`` is imported only by the Dask executor
(:mod:`vfxmatte.engine.dask_executor`).
"""

from __future__ import annotations

import concurrent.futures as cf
import dataclasses
import logging
import multiprocessing
from collections.abc import Iterable
from concurrent.futures.process import BrokenProcessPool
from typing import Any, Protocol

from vfxmatte.engine.chunks import (
    ChunkTask,
    cpu_count,
    init_worker_process,
    run_chunk_in_process,
)
from vfxmatte.engine.config import EngineConfig, PipelineConfig
from vfxmatte.engine.propagation import PropagationResult, propagate_to_files
from vfxmatte.errors import ConfigError, closest_hint

__all__ = [
    "EXECUTORS",
    "Executor",
    "ProcessExecutor",
    "make_executor",
    "runs_here_when_too_small",
    "threads_per_worker",
    "too_small_for_dask",
]

log = logging.getLogger(__name__)

EXECUTORS = ("local", "processes", "dask")

#: Seconds a local Dask cluster adds to a run on this kind of machine: start (scheduler,
#: nannies, worker processes importing vfxmatte and building their stages) and stop
#: (``benchmarks/dask_overhead_bench.py``).
LOCAL_DASK_OVERHEAD_S = 6.0
#: Seconds per frame per megapixel of the matte backends on one core (the default
#: pipeline: 0.9 s at 1080p, ``benchmarks/pipeline_bench.py``), and per frame.
SECONDS_PER_MEGAPIXEL = {"classical": 0.45, "network": 1.8}
SECONDS_PER_FRAME = 0.05


class Executor(Protocol):
    """What :func:`~vfxmatte.engine.parallel.run_chunked` needs from an executor."""

    #: Exceptions of a future after which the driver resubmits the chunk itself.
    retry_errors: tuple[type[BaseException], ...]
    workers: int
    #: Whether the propagation phase runs in this process (the workers share this
    #: machine's files): it then runs beside the chunks, which start as soon as
    #: their guidance is written. Otherwise :meth:`propagate` runs it first.
    propagates_here: bool

    def propagate(self, config: PipelineConfig) -> PropagationResult:
        """Run the propagation phase on the executor (one task) and wait for it."""
        ...

    def submit(self, task: ChunkTask) -> Any:
        """Start a chunk; returns a future of its :class:`ChunkResult`."""
        ...

    def wait(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        """The futures done after at most ``timeout`` seconds (maybe none)."""
        ...

    def lost_worker(self, exc: BaseException) -> str | None:
        """A sentence when ``exc`` means the chunk's worker died for good, else None."""
        ...

    def cancel(self, futures: Iterable[Any]) -> None: ...

    def close(self) -> None: ...


def threads_per_worker(workers: int, cores: int | None = None) -> int:
    """Threads each of ``workers`` processes sharing ``cores`` cores should use."""
    return max(1, (cores or cpu_count()) // max(1, workers))


class ProcessExecutor:
    """Worker processes on this machine (``concurrent.futures``, spawned, not forked).

    Each process builds its stages once (:class:`~vfxmatte.engine.chunks.StagesCache`)
    and uses ``cores // workers`` threads. A process that dies breaks the pool:
    the driver resubmits the chunks that were lost, in a new pool.
    """

    retry_errors: tuple[type[BaseException], ...] = (BrokenProcessPool,)
    propagates_here = True

    def __init__(self, workers: int = 0) -> None:
        self.workers = workers or cpu_count()
        self.threads = threads_per_worker(self.workers)
        self._pool: cf.ProcessPoolExecutor | None = None

    def _new_pool(self) -> cf.ProcessPoolExecutor:
        return cf.ProcessPoolExecutor(
            max_workers=self.workers,
            # fork would copy OpenMP/torch thread pools in an unusable state
            mp_context=multiprocessing.get_context("spawn"),
            initializer=init_worker_process,
            initargs=(self.threads,),
        )

    def propagate(self, config: PipelineConfig) -> PropagationResult:
        return propagate_to_files(config)

    def submit(self, task: ChunkTask) -> cf.Future:
        if self._pool is None:
            self._pool = self._new_pool()
        try:
            return self._pool.submit(run_chunk_in_process, task)
        except BrokenProcessPool:
            log.warning("A worker process died; starting new ones.")
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new_pool()
            return self._pool.submit(run_chunk_in_process, task)

    def wait(self, futures: Iterable[cf.Future], timeout: float) -> set[cf.Future]:
        done, _ = cf.wait(list(futures), timeout=timeout, return_when=cf.FIRST_COMPLETED)
        return done

    def lost_worker(self, exc: BaseException) -> str | None:
        if isinstance(exc, BrokenProcessPool):
            return "its worker process died (killed, or out of memory)"
        return None

    def cancel(self, futures: Iterable[cf.Future]) -> None:
        for future in futures:
            future.cancel()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def too_small_for_dask(
    config: PipelineConfig, width: int, height: int, frames: int, cores: int | None = None
) -> str | None:
    """Why a local Dask cluster cannot win on this shot, or None when it may.

    The run in this process takes about ``frames x`` the per-frame cost of the matte
    backend at ``width x height``; ``min(workers, cores)`` workers save at most
    ``1 - 1/that`` of it, which must beat :data:`LOCAL_DASK_OVERHEAD_S`.
    """
    cores = cores or cpu_count()
    workers = max(1, min(config.engine.workers or cores, cores))
    rate = SECONDS_PER_MEGAPIXEL.get(config.matte.backend, SECONDS_PER_MEGAPIXEL["network"])
    here = frames * (SECONDS_PER_FRAME + rate * width * height / 1e6)
    saved = here * (1.0 - 1.0 / workers)
    if saved >= LOCAL_DASK_OVERHEAD_S:
        return None
    return (
        f"The shot is too small for Dask, running locally unless forced: {frames} frame(s) "
        f"of {width}x{height} take about {here:.0f} s in this process, and {workers} "
        f"worker(s) on {cores} core(s) would save at most {saved:.0f} s while a local "
        f"cluster costs about {LOCAL_DASK_OVERHEAD_S:.0f} s to start and stop. Pass "
        "--engine.force-executor to use Dask anyway."
    )


def runs_here_when_too_small(config: PipelineConfig) -> PipelineConfig:
    """``config`` with ``engine.executor=local`` when a local Dask cluster cannot win.

    Only for ``executor=dask`` without ``engine.scheduler`` (a running cluster costs
    nothing to start) and without ``engine.force_executor``; logs the reason.
    """
    engine = config.engine
    if engine.executor != "dask" or engine.scheduler or engine.force_executor:
        return config
    from vfxmatte.engine.stages import open_shot_plate

    plate = open_shot_plate(config)
    reason = too_small_for_dask(config, plate.info.width, plate.info.height, len(plate.frames))
    if reason is None:
        return config
    log.warning("%s", reason)
    return dataclasses.replace(config, engine=dataclasses.replace(engine, executor="local"))


def make_executor(engine: EngineConfig) -> Executor:
    """The executor ``engine.executor`` names (``processes`` or ``dask``).

    Raises:
        ConfigError: an unknown name (with the closest valid one).
        BackendUnavailableError: ``dask`` without ``vfxmatte[distributed]``.
        DeviceError: an unreachable ``engine.scheduler``.
    """
    if engine.executor == "processes":
        return ProcessExecutor(engine.workers)
    if engine.executor == "dask":
        from vfxmatte.engine.dask_executor import DaskExecutor

        return DaskExecutor(engine)
    raise ConfigError(
        f"Option 'engine.executor' got {engine.executor!r}; valid choices for a parallel run: "
        "processes, dask." + closest_hint(engine.executor, EXECUTORS)
    )
