"""The worker: reads requests line by line, runs one shot at a time in a thread.

The reading thread stays free while a shot runs, so ``cancel`` and ``status``
are answered at once; the engine polls the cancel flag before every frame (and
the SAM 2 phase between frames), so a cancelled run stops within one frame.
"""

from __future__ import annotations

import logging
import os
import platform
import sys
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from vfxmatte import __version__
from vfxmatte.engine.propagation import given_config
from vfxmatte.errors import VfxMatteError
from vfxmatte.worker.models import ModelCache, propagate_phase, uses_local_sam2
from vfxmatte.worker.protocol import (
    PROTOCOL_VERSION,
    ProtocolError,
    encode,
    error_message,
    parse_request,
    report_data,
)
from vfxmatte.worker.schema import config_schema

__all__ = ["Worker", "serve"]

log = logging.getLogger(__name__)


#: Loggers whose warnings reach the client during a run (``py.warnings``: ``warnings.warn``).
FORWARDED_LOGGERS = ("vfxmatte", "py.warnings")


class _Forward(logging.Handler):
    """Sends the library's warnings during a run to the client as ``log`` messages."""

    def __init__(self, worker: Worker) -> None:
        super().__init__(logging.WARNING)
        self.worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith("vfxmatte.worker"):
            return  # the worker's own diagnostics stay on stderr
        run_id = self.worker.current_id
        self.worker.send(
            {
                "type": "log",
                "id": run_id,
                "level": record.levelname.lower(),
                "logger": record.name,
                "message": record.getMessage(),
            }
        )


class Worker:
    """Protocol state: the output stream, the running shot, the model cache.

    Args:
        write: called with every outgoing line (without its newline); it need not
            be thread-safe: :meth:`send` serialises the calls.
    """

    def __init__(self, write: Callable[[str], None]) -> None:
        self._write = write
        self._send_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._busy = False
        self._cancel = threading.Event()
        self.models = ModelCache()
        self.current_id: Any = None
        self.runs = 0
        self.progress: dict[str, Any] = {}
        self.closed = False

    # -- output --------------------------------------------------------------------------

    def send(self, message: dict[str, Any]) -> None:
        line = encode(message)
        with self._send_lock:
            self._write(line)

    # -- input ---------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self._busy

    def handle_line(self, line: str, number: int = 0) -> None:
        """Answer one request line; never raises (errors become ``error`` messages)."""
        if not line.strip():
            return
        request_id = None
        try:
            request = parse_request(line, number)
            request_id = request["id"]
            getattr(self, f"_on_{request['type']}")(request)
        except ProtocolError as exc:
            self.send(error_message(exc.request_id, exc))
        except VfxMatteError as exc:
            self.send(error_message(request_id, exc))
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker
            log.exception("Request failed")
            self.send(error_message(request_id, exc, internal=True))

    def serve(self, lines: Iterable[str]) -> None:
        """Handle lines until ``shutdown`` or the end of input, then stop the run."""
        for number, line in enumerate(lines, 1):
            self.handle_line(line, number)
            if self.closed:
                return
        self.stop()

    def wait(self, timeout: float | None = None) -> None:
        """Wait for the running shot (if any) to finish."""
        if self._thread is not None:
            self._thread.join(timeout)

    def stop(self, timeout: float | None = None) -> None:
        """Cancel the running shot (if any) and wait for it to finish."""
        self._cancel.set()
        self.wait(timeout)

    # -- requests ------------------------------------------------------------------------

    def _on_hello(self, request: dict[str, Any]) -> None:
        version = request.get("protocol", PROTOCOL_VERSION)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(
                f"The client speaks protocol {version!r}; this worker (vfxmatte {__version__}) "
                f"speaks {PROTOCOL_VERSION}. Install matching versions of the plugin and vfxmatte.",
                request["id"],
            )
        self.send(
            {
                "type": "hello",
                "id": request["id"],
                "protocol": PROTOCOL_VERSION,
                "vfxmatte": __version__,
                "python": platform.python_version(),
                "executable": sys.executable,
                "pid": os.getpid(),
                "schema_digest": config_schema()["digest"],
            }
        )

    def _on_schema(self, request: dict[str, Any]) -> None:
        self.send({"type": "schema", "id": request["id"], "schema": config_schema()})

    def _on_status(self, request: dict[str, Any]) -> None:
        self.send(
            {
                "type": "status",
                "id": request["id"],
                "state": "running" if self.running else "idle",
                "run": self.current_id if self.running else None,
                "progress": dict(self.progress) if self.running else None,
                "runs": self.runs,
                "models": [key.split(":", 1)[0] for key in self.models.keys()],
                "model_builds": self.models.builds,
            }
        )

    def _on_cancel(self, request: dict[str, Any]) -> None:
        target = self.current_id if self.running else None
        # Answer before raising the flag: the run's 'result' must never overtake the
        # answer to the cancel that ended it.
        self.send({"type": "cancel", "id": request["id"], "run": target})
        if target is not None:
            self._cancel.set()

    def _on_shutdown(self, request: dict[str, Any]) -> None:
        self.stop()
        self.closed = True
        self.send({"type": "shutdown", "id": request["id"]})

    def _on_run(self, request: dict[str, Any]) -> None:
        if self.running:
            raise ProtocolError(
                f"A shot is already running (request {self.current_id!r}); send 'cancel' "
                "first or wait for its result.",
                request["id"],
            )
        config = _build_config(request)
        self.wait()  # the previous run's thread is past its result; let it end
        self._cancel.clear()
        self._busy = True
        self.current_id = request["id"]
        self.runs += 1
        self.progress = {}
        self.send({"type": "started", "id": request["id"]})
        self._thread = threading.Thread(
            target=self._run, args=(request["id"], config), name="vfxmatte-run", daemon=True
        )
        self._thread.start()

    # -- the run -------------------------------------------------------------------------

    def _progress(self, run_id: Any, phase: str, number: int, done: int, total: int, status: str):
        self.progress = {"phase": phase, "frame": number, "done": done, "total": total}
        self.send(
            {
                "type": "progress",
                "id": run_id,
                "phase": phase,
                "frame": number,
                "done": done,
                "total": total,
                "status": status,
            }
        )

    def _run(self, run_id: Any, config: Any) -> None:
        """The run thread: the shot, then its one final message.

        The worker is idle again before that message leaves, so a client may send
        its next ``run`` as soon as it reads the result.
        """
        forward = _Forward(self)
        for name in FORWARDED_LOGGERS:
            logging.getLogger(name).addHandler(forward)
        try:
            final = {"type": "result", "id": run_id, "report": self._shot(run_id, config)}
        except VfxMatteError as exc:
            final = error_message(run_id, exc)
        except Exception as exc:  # noqa: BLE001 - report it, keep serving
            log.exception("Run %r failed", run_id)
            final = error_message(run_id, exc, internal=True)
        finally:
            for name in FORWARDED_LOGGERS:
                logging.getLogger(name).removeHandler(forward)
            self._busy = False
        self.send(final)

    def _shot(self, run_id: Any, config: Any) -> dict[str, Any]:
        from vfxmatte.engine.paths import check_pipeline_writes
        from vfxmatte.engine.pipeline import RunReport, run_pipeline

        start = time.perf_counter()
        phase_seconds = 0.0
        if uses_local_sam2(config):
            check_pipeline_writes(config)  # before the SAM 2 phase writes anything
            phase = propagate_phase(
                config,
                self.models,
                lambda n, d, t: self._progress(run_id, "propagate", n, d, t, "written"),
                self._cancel.is_set,
            )
            phase_seconds = phase.seconds
            if phase.cancelled:
                report = RunReport(cancelled=True, timings={"propagate": phase.seconds})
                report.seconds = time.perf_counter() - start
                return report_data(report)
            config = given_config(config, phase.pattern)
        report = run_pipeline(
            config,
            on_progress=lambda e: self._progress(
                run_id, "matte", e.number, e.done, e.total, e.status
            ),
            should_cancel=self._cancel.is_set,
        )
        if phase_seconds:
            report.timings["propagate"] = report.timings.get("propagate", 0.0) + phase_seconds
            report.seconds = time.perf_counter() - start
        return report_data(report)


def _build_config(request: dict[str, Any]) -> Any:
    """The run request's ``config`` mapping plus ``set`` overrides, validated."""
    from vfxmatte.config import apply_overrides, config_from_dict
    from vfxmatte.engine.config import PipelineConfig

    data = request.get("config") or {}
    if not isinstance(data, dict):
        raise ProtocolError(
            f"The run request's 'config' must be a mapping of options, got {data!r}.",
            request["id"],
        )
    overrides = request.get("set") or []
    if not isinstance(overrides, list) or not all(isinstance(s, str) for s in overrides):
        raise ProtocolError(
            "The run request's 'set' must be a list of 'KEY=VALUE' strings.", request["id"]
        )
    config = config_from_dict(PipelineConfig, apply_overrides(data, overrides))
    config.engine.progress = False  # no terminal here: progress goes to the client
    return config


def serve(stdin: TextIO | None = None, stdout: TextIO | None = None) -> int:
    """Run the worker on stdin/stdout until ``shutdown`` or end of input.

    Anything else that writes to stdout (a library's ``print``, C code writing to
    file descriptor 1) would corrupt the protocol, so the process's fd 1 is pointed
    at stderr and the protocol keeps a private copy of the original stdout.
    """
    if stdout is None:
        protocol_fd = os.dup(1)
        os.dup2(2, 1)
        sys.stdout = sys.stderr
        stdout = os.fdopen(protocol_fd, "w", encoding="utf-8", buffering=1)
    stdin = stdin if stdin is not None else sys.stdin
    out = stdout

    def write(line: str) -> None:
        out.write(line + "\n")
        out.flush()

    logging.captureWarnings(True)  # warnings.warn -> the py.warnings logger -> the client
    worker = Worker(write)
    log.info("vfxmatte worker %s ready (pid %d)", __version__, os.getpid())
    worker.serve(stdin)
    return 0
