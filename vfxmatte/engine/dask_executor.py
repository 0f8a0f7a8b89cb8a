"""The ``dask`` executor: chunks as tasks on a Dask distributed cluster.

With ``engine.scheduler`` empty a :class:`distributed.LocalCluster` of
``engine.workers`` processes (one thread each) is started for the run and closed
after it; with ``tcp://HOST:PORT`` the run connects to a running cluster (whose
workers must see the same file paths). When every worker is on this machine the
propagation phase runs in this process, beside the chunks, which start as their
guidance lands; on a remote cluster it runs first, as one task on one worker.

Dask schedules the tasks, retries a task that raised (``engine.retries``) and
reschedules the tasks of a worker that died on the others (until the
scheduler's ``allowed-failures``); chunks skip frames already complete on disk,
so the frames a dead worker had written are kept.

:class:`StagesPlugin` is registered on every worker (also on workers that join or
restart later): it sets the worker's thread count and holds its
:class:`~vfxmatte.engine.chunks.StagesCache`, so models are loaded once per
worker, not once per frame.

The local cluster is made for shared machines: the scheduler, the nannies and
the workers listen on 127.0.0.1 only, and talk over TLS with credentials made for
the run (``Security.temporary()``, needs ``cryptography``), so neither another
machine nor another user of this one can connect to it and run code as the user.
Its HTTP servers answer a health check and nothing else, unless
``engine.dashboard`` asks for the dashboard (also on 127.0.0.1).

This module imports ``distributed``; nothing imports it unless the executor is
``dask`` (extra ``vfxmatte[distributed]``).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import uuid
from collections.abc import Iterable, Iterator
from typing import Any, cast
from urllib.parse import urlsplit

from vfxmatte.engine.chunks import (
    ChunkResult,
    ChunkTask,
    StagesCache,
    cpu_count,
    exit_quickly,
    limit_threads,
    run_chunk,
)
from vfxmatte.engine.config import EngineConfig, PipelineConfig
from vfxmatte.engine.propagation import PropagationResult, propagate_to_files
from vfxmatte.errors import BackendUnavailableError, DeviceError, VfxMatteError

try:
    import dask
    import distributed
    from distributed.diagnostics.plugin import WorkerPlugin
except ImportError as exc:  # pragma: no cover - the extra is in the dev install
    raise BackendUnavailableError(
        f"The dask executor needs Dask distributed: {exc}. "
        "pip install 'vfxmatte[distributed]', or use --executor processes."
    ) from exc

__all__ = [
    "LOOPBACK",
    "PLUGIN_NAME",
    "DaskExecutor",
    "StagesPlugin",
    "bokeh_missing",
    "run_chunk_on_worker",
    "start_local_cluster",
]

log = logging.getLogger(__name__)

PLUGIN_NAME = "vfxmatte-stages"
#: How long a stopped run waits for its running chunks to end their frame (beyond the
#: connect timeout); a frame takes seconds, not minutes.
_STOP_WAIT_S = 120.0
_MALLOC_TRIM = "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"


def _host(address: str) -> str:
    return urlsplit(address).hostname or address


class StagesPlugin(WorkerPlugin):
    """Per worker: its thread count and its :class:`StagesCache`.

    Args:
        slots_by_host: the thread slots of all workers of each host, so that the
            workers of one machine share its cores (each gets ``cores // slots``
            threads per slot); a worker of a host not listed (one that joined
            later) counts only its own slots.
    """

    name = PLUGIN_NAME

    def __init__(self, slots_by_host: dict[str, int]) -> None:
        self.slots_by_host = slots_by_host
        self.cache: StagesCache | None = None  # made on the worker (a lock does not pickle)

    def setup(self, worker: Any) -> None:
        own = max(1, worker.state.nthreads)
        slots = max(own, self.slots_by_host.get(_host(worker.address), own))
        threads = max(1, cpu_count() // slots)
        self.cache = StagesCache(threads)
        limit_threads(threads)
        exit_quickly()  # the cluster's close waits for this process to end

    def teardown(self, worker: Any) -> None:
        if self.cache is not None:
            self.cache.clear()


def run_chunk_on_worker(task: ChunkTask, stop: str = "") -> ChunkResult:
    """The task function: this worker's cached stages, then :func:`run_chunk`.

    ``stop`` names the run's :class:`distributed.Event`; once it is set the chunk
    ends before its next frame (a task that starts after it does nothing).
    """
    should_stop = _stop_event(stop).is_set if stop else None
    if should_stop is not None and should_stop():
        return ChunkResult(task.chunk, cancelled=True)
    worker = distributed.get_worker()
    plugin = worker.plugins.get(PLUGIN_NAME)
    cache = plugin.cache if isinstance(plugin, StagesPlugin) else None
    if cache is None:  # a worker that did not get the plugin: give it one now
        plugin = StagesPlugin({})
        plugin.setup(worker)
        worker.plugins[PLUGIN_NAME] = plugin
        cache = plugin.cache
    stages = cache.get(task.config, task.colour)  # type: ignore[union-attr]
    return run_chunk(task, stages, should_stop=should_stop)


def _stop_event(name: str, client: Any = None) -> Any:
    return distributed.Event(name, client=client)


@contextlib.contextmanager
def _environ_kept() -> Iterator[None]:
    """Undo what a nanny in this process writes into ``os.environ`` before spawning.

    Nannies set their workers' variables (``OMP_NUM_THREADS=1`` ...) in their own
    process, which here is the caller's: a host application must not inherit them.
    """
    before = dict(os.environ)
    try:
        yield
    finally:
        for name in set(os.environ) - set(before):
            del os.environ[name]
        os.environ.update(before)


#: Where every server of the local cluster listens: this machine only.
LOOPBACK = "127.0.0.1"
#: The HTTP routes of the local cluster's servers without the dashboard: a health check.
_HEALTH_ONLY = ["distributed.http.health"]
#: Credentials of the TLS clusters :func:`start_local_cluster` made in this process, by
#: scheduler address: a run given such an address (``engine.scheduler``) connects with them.
_CREDENTIALS: dict[str, Any] = {}


def _temporary_security() -> Any:
    """TLS credentials for one run (``Security.temporary()``), or None without ``cryptography``."""
    from distributed.security import Security

    try:
        return Security.temporary()
    except ImportError:
        log.warning(
            "The Python package 'cryptography' is not installed, so the local Dask cluster "
            "runs without TLS: it listens on 127.0.0.1 only, but any user of this machine "
            "could connect to it and run code as you. pip install cryptography (part of "
            "vfxmatte[distributed]), or use --executor processes on a shared machine."
        )
        return None


def bokeh_missing() -> str | None:
    """Why Dask cannot serve its dashboard here (bokeh missing), or None when it can."""
    try:
        import distributed.dashboard.scheduler  # noqa: F401 - what the scheduler imports
    except ImportError as exc:
        return str(exc)
    return None


def start_local_cluster(workers: int, *, dashboard: bool = False, tls: bool = True) -> Any:
    """A :class:`distributed.LocalCluster` of ``workers`` one-thread worker processes.

    Every server of it (scheduler, nannies, workers and their HTTP servers)
    listens on 127.0.0.1 at a free port; with ``tls`` (the default) they talk
    over TLS with temporary credentials, so only clients made from the cluster
    (``distributed.Client(cluster)``, or a run in this process given its
    ``scheduler_address``) can connect. Without ``dashboard`` the HTTP
    servers answer ``/health`` only; with it the scheduler serves Dask's
    dashboard (bokeh) and info pages on 127.0.0.1 (``cluster.dashboard_link``).

    Unlike Dask's default, the workers keep glibc's adaptive ``malloc``: the
    nanny's ``MALLOC_TRIM_THRESHOLD_=65536`` makes every large array a fresh
    ``mmap``, which slowed the default pipeline by about 30% per frame here.
    """
    settings: dict[str, Any] = {_MALLOC_TRIM: None, "distributed.worker.http.routes": _HEALTH_ONLY}
    if not dashboard:
        settings["distributed.scheduler.http.routes"] = _HEALTH_ONLY
    security = _temporary_security() if tls else None
    with _environ_kept(), dask.config.set(settings):
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host=LOOPBACK,
            # A free port on 127.0.0.1 ("" or ":0" would listen on every interface).
            dashboard_address=f"{LOOPBACK}:0",
            worker_dashboard_address=None,
            scheduler_kwargs={"dashboard": dashboard},
            security=security,
            silence_logs=logging.ERROR,
        )
    if security is not None:
        _CREDENTIALS[cluster.scheduler_address] = security
    return cluster


def _propagate_on_worker(
    config: PipelineConfig,
) -> tuple[PropagationResult | None, VfxMatteError | None]:
    """The propagation task: an input error is returned, not raised, so it is not retried."""
    try:
        return propagate_to_files(config), None
    except VfxMatteError as exc:
        return None, exc


def _this_machine() -> set[str]:
    """Names and addresses under which workers on this machine may be listed."""
    names = {"127.0.0.1", "localhost", "::1", socket.gethostname()}
    try:
        names.add(socket.gethostbyname(socket.gethostname()))
    except OSError:
        pass
    return names


def _slots_by_host(info: dict[str, Any]) -> dict[str, int]:
    """Thread slots of all the workers of each host, from ``Client.scheduler_info()``."""
    slots: dict[str, int] = {}
    for address, worker in info.get("workers", {}).items():
        host = _host(address)
        slots[host] = slots.get(host, 0) + int(worker.get("nthreads", 1))
    return slots


class DaskExecutor:
    """Chunks as Dask tasks, on a local cluster or on ``engine.scheduler``."""

    retry_errors: tuple[type[BaseException], ...] = ()  # Dask retries by itself

    def __init__(self, engine: EngineConfig) -> None:
        self.engine = engine
        self.cluster: Any = None
        self._distributed_level = logging.NOTSET
        self._all_local = False
        self.run_id = uuid.uuid4().hex[:8]
        self.stop_name = f"vfxmatte-stop-{self.run_id}"
        if engine.scheduler:
            self.client = self._connect(engine.scheduler, engine.connect_timeout)
            if engine.workers:
                log.warning("--workers is ignored with --scheduler: the cluster has its own.")
        else:
            self.client = self._start_local(engine.workers or cpu_count())
        try:
            self._show_dashboard()
            info = self.client.scheduler_info()
            if not info.get("workers"):
                log.warning("The Dask cluster has no workers yet; chunks wait until some join.")
            self.workers = max(1, len(info.get("workers", {})))
            hosts = {_host(address) for address in info.get("workers", {})}
            self._all_local = bool(hosts) and hosts <= _this_machine()
            self.client.register_plugin(StagesPlugin(_slots_by_host(info)), name=PLUGIN_NAME)
        except BaseException:
            self.close()
            raise

    @staticmethod
    def _connect(address: str, timeout: float) -> Any:
        try:
            return distributed.Client(
                address, timeout=timeout, set_as_default=False, security=_CREDENTIALS.get(address)
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise DeviceError(
                f"No Dask scheduler answered at '{address}' within {timeout:g} s ({exc}). "
                "Start one (dask scheduler; dask worker ADDRESS --nthreads 1), check the "
                "address (tcp://HOST:PORT), or leave --scheduler empty to start a local "
                "cluster."
            ) from None

    def _start_local(self, workers: int) -> Any:
        log.info("Starting a local Dask cluster of %d worker process(es).", workers)
        # The scheduler and nannies run in this process and log every step at INFO.
        quiet = logging.getLogger("distributed")
        self._distributed_level = quiet.level
        if not log.isEnabledFor(logging.INFO):
            quiet.setLevel(logging.WARNING)
        self.cluster = start_local_cluster(workers, dashboard=self.engine.dashboard)
        return distributed.Client(self.cluster, set_as_default=False)

    def _show_dashboard(self) -> None:
        """Log the dashboard's link when ``engine.dashboard`` asks for it."""
        if not self.engine.dashboard:
            return
        link = self.client.dashboard_link
        if self.cluster is None:
            log.warning("Dask dashboard of the cluster at %s: %s", self.engine.scheduler, link)
            return
        missing = bokeh_missing()
        if missing:
            log.warning(
                "The Dask dashboard needs the Python package bokeh, which is not installed "
                "(%s): pip install 'bokeh>=3.1'. Until then %s shows only that, and Dask's "
                "plain pages are under %s.",
                missing,
                link,
                link.replace("/status", "/info/main/workers.html"),
            )
        else:
            log.warning(
                "Dask dashboard of this run: %s (on this machine only; it closes when the run "
                "ends).",
                link,
            )

    @property
    def propagates_here(self) -> bool:
        """Workers all on this machine share its files: propagate here, beside the chunks."""
        return self.cluster is not None or self._all_local

    def propagate(self, config: PipelineConfig) -> PropagationResult:
        """The propagation phase as one task on one worker of the cluster."""
        future = self.client.submit(
            _propagate_on_worker,
            config,
            key=f"vfxmatte-propagate-{self.run_id}",
            pure=False,
            retries=self.engine.retries,
        )
        result, error = future.result()
        if error is not None:
            raise error
        return cast(PropagationResult, result)

    def submit(self, task: ChunkTask) -> Any:
        return self.client.submit(
            run_chunk_on_worker,
            task,
            self.stop_name,
            key=f"vfxmatte-chunk-{task.chunk.name}-{self.run_id}",
            pure=False,
            retries=self.engine.retries,
        )

    def wait(self, futures: Iterable[Any], timeout: float) -> set[Any]:
        # distributed.wait() needs a default client; a future's state is kept up to
        # date by this client's own thread, so polling it is cheap.
        futures = list(futures)
        deadline = time.monotonic() + timeout
        while True:
            done = {f for f in futures if f.done()}
            if done or time.monotonic() >= deadline:
                return done
            time.sleep(0.01)

    def lost_worker(self, exc: BaseException) -> str | None:
        if isinstance(exc, distributed.KilledWorker):
            return f"the Dask workers running it died too often ({exc})"
        return None

    def cancel(self, futures: Iterable[Any]) -> None:
        """Stop the chunks, and wait for those running to end before the run returns.

        Cancelling a future does not stop a task that has started: on a cluster
        that outlives the run (``engine.scheduler``) it would go on writing frames
        after the run stopped. The run's stop event ends every chunk before its
        next frame; the frame being matted is finished and written, as the local
        loop writes the frames before the one that stops it.
        """
        futures = list(futures)
        stop = _stop_event(self.stop_name, self.client)
        stop.set()
        deadline = time.monotonic() + self.engine.connect_timeout + _STOP_WAIT_S
        while not all(f.done() for f in futures) and time.monotonic() < deadline:
            time.sleep(0.01)
        self.client.cancel(futures)
        stop.clear()  # the scheduler forgets an event that is clear and awaited by none

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            _CREDENTIALS.pop(self.cluster.scheduler_address, None)
            with _environ_kept():
                self.cluster.close()
            logging.getLogger("distributed").setLevel(self._distributed_level)
