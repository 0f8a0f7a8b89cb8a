"""The worker process seen from Nuke: start it, speak its JSON lines, run a shot.

``python -m vfxmatte.worker`` runs in the Python environment where vfxmatte and
torch are installed (never Nuke's own interpreter). One worker per Python path
is kept for the Nuke session (:func:`get_client`), so models it built stay
loaded between Process presses; :func:`stop_workers` ends them (also at exit).
The protocol is documented in :mod:`vfxmatte.worker` and the README (section Nuke).
"""

from __future__ import annotations

import atexit
import collections
import itertools
import json
import os
import queue
import shutil
import subprocess
import threading
from typing import Any, Callable, Mapping

from vfxmatte_nuke import __version__
from vfxmatte_nuke.errors import PluginError, WorkerError

__all__ = [
    "PROTOCOL_VERSION",
    "WorkerClient",
    "get_client",
    "resolve_python",
    "stop_workers",
    "worker_env",
]

PROTOCOL_VERSION = 1
WORKER_ARGS = ("-m", "vfxmatte.worker")
#: Variables that point a Python at Nuke's own installation: never passed on.
_NUKE_PYTHON_ENV = ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONEXECUTABLE")


def worker_env(base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The worker's environment: Nuke's, without Nuke's Python settings.

    ``VFXMATTE_WORKER_PYTHONPATH`` becomes the worker's ``PYTHONPATH``.
    """
    env = dict(os.environ if base is None else base)
    for name in _NUKE_PYTHON_ENV:
        env.pop(name, None)
    if env.get("VFXMATTE_WORKER_PYTHONPATH"):
        env["PYTHONPATH"] = env["VFXMATTE_WORKER_PYTHONPATH"]
    env["PYTHONIOENCODING"] = "utf-8"
    env["PYTHONUNBUFFERED"] = "1"
    return env


def resolve_python(
    knob: str = "", preference: str = "", environ: Mapping[str, str] | None = None
) -> str:
    """The worker's Python: the node's knob, else the preference, else ``VFXMATTE_PYTHON``.

    Raises:
        PluginError: none is set, or the one that is set is not an executable.
    """
    environ = os.environ if environ is None else environ
    sources = (
        ("the node's 'worker python' knob", knob),
        ("Preferences > vfxmatte > worker python", preference),
        ("the VFXMATTE_PYTHON environment variable", environ.get("VFXMATTE_PYTHON", "")),
    )
    for where, value in sources:
        value = (value or "").strip()
        if not value:
            continue
        found = value if os.path.isfile(value) else shutil.which(value)
        if not found or not os.access(found, os.X_OK):
            raise PluginError(
                f"{where[0].upper() + where[1:]} names '{value}', which is not an executable; "
                "give the python of the environment where vfxmatte is installed."
            )
        return found
    raise PluginError(
        "No worker Python is set. Give the python of an environment where vfxmatte is "
        "installed (e.g. /opt/vfxmatte/.venv/bin/python) in the node's 'worker python' knob, "
        "in Preferences > vfxmatte, or in the VFXMATTE_PYTHON environment variable."
    )


class WorkerClient:
    """One worker process and the conversation with it.

    Args:
        python: the worker environment's Python executable.
        args: the arguments that start the worker (``-m vfxmatte.worker``).
        start_timeout: seconds to wait for the answer to ``hello``.
    """

    def __init__(
        self,
        python: str,
        *,
        args: tuple = WORKER_ARGS,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 120.0,
    ) -> None:
        self.python = python
        self.args = tuple(args)
        self.env = dict(env) if env is not None else worker_env()
        self.start_timeout = start_timeout
        self.info: dict[str, Any] = {}
        self._proc: subprocess.Popen | None = None
        self._messages: queue.Queue = queue.Queue()
        self._stderr: collections.deque = collections.deque(maxlen=200)
        self._ids = itertools.count(1)
        self._lock = threading.Lock()

    # -- process -------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        """Start the process and shake hands; returns the ``hello`` answer.

        Raises:
            WorkerError: the process cannot start, does not answer, or speaks
                another protocol version.
        """
        try:
            self._proc = subprocess.Popen(
                [self.python, *self.args],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=self.env,
                encoding="utf-8",
                bufsize=1,
                creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
            )
        except OSError as exc:
            raise WorkerError(f"Cannot start the worker '{self.python}': {exc}.") from None
        threading.Thread(target=self._read_stdout, daemon=True).start()
        threading.Thread(target=self._read_stderr, daemon=True).start()
        self.info = self.request(
            "hello",
            timeout=self.start_timeout,
            protocol=PROTOCOL_VERSION,
            client=f"vfxmatte_nuke {__version__}",
        )
        return self.info

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _read_stdout(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self._messages.put(json.loads(line))
            except ValueError:
                self._stderr.append("(not a protocol line) " + line.rstrip())
        self._messages.put(None)  # end of output: the process is gone

    def _read_stderr(self) -> None:
        assert self._proc is not None and self._proc.stderr is not None
        for line in self._proc.stderr:
            self._stderr.append(line.rstrip())

    def stderr_tail(self, lines: int = 15) -> str:
        """The last lines the worker wrote to stderr (its log)."""
        return "\n".join(list(self._stderr)[-lines:])

    def _stopped(self) -> WorkerError:
        try:
            code = self._proc.wait(5) if self._proc is not None else None
        except subprocess.TimeoutExpired:
            code = None
        tail = self.stderr_tail()
        hint = ""
        if "No module named" in tail and "vfxmatte" in tail:
            hint = " vfxmatte is not installed for that Python: pip install vfxmatte there."
        return WorkerError(
            f"The vfxmatte worker ('{self.python}') stopped (exit code {code}).{hint}"
            + (f"\nIts last output:\n{tail}" if tail else ""),
            "WorkerStopped",
        )

    # -- messages ------------------------------------------------------------------------

    def send(self, kind: str, **fields: Any) -> int:
        """Send one request; returns its id."""
        if not self.alive:
            raise self._stopped()
        request_id = next(self._ids)
        line = json.dumps({"type": kind, "id": request_id, **fields})
        with self._lock:
            try:
                self._proc.stdin.write(line + "\n")
                self._proc.stdin.flush()
            except (OSError, ValueError):
                raise self._stopped() from None
        return request_id

    def next_message(self, timeout: float | None) -> dict[str, Any] | None:
        """The next message, or None after ``timeout`` seconds.

        Raises:
            WorkerError: the worker ended.
        """
        try:
            message = self._messages.get(timeout=timeout)
        except queue.Empty:
            return None
        if message is None:
            self._messages.put(None)  # keep reporting the end to later calls
            raise self._stopped()
        return message

    def request(self, kind: str, timeout: float = 30.0, **fields: Any) -> dict[str, Any]:
        """Send a request and wait for its answer (messages of other ids are dropped).

        Raises:
            WorkerError: an ``error`` answer, no answer within ``timeout``, or the
                worker ended.
        """
        request_id = self.send(kind, **fields)
        while True:
            message = self.next_message(timeout)
            if message is None:
                raise WorkerError(
                    f"The vfxmatte worker did not answer '{kind}' within {timeout:.0f} s.",
                    "Timeout",
                )
            if message.get("id") != request_id:
                continue
            if message.get("type") == "error":
                raise WorkerError(message.get("message", "?"), message.get("error", "Error"))
            return message

    def run(
        self,
        config: Mapping[str, Any],
        on_message: Callable[[dict[str, Any]], None] | None = None,
        is_cancelled: Callable[[], bool] | None = None,
        poll: float = 0.1,
    ) -> dict[str, Any]:
        """Run one shot and return its report (``cancelled`` true when cancelled).

        ``on_message`` gets every ``started``/``progress``/``log`` message;
        ``is_cancelled`` is polled every ``poll`` seconds and sends ``cancel`` once.

        Raises:
            WorkerError: the worker's ``error`` (bad option, unreadable plate, ...)
                or the worker ended.
        """
        run_id = self.send("run", config=dict(config))
        cancel_sent = False
        while True:
            if is_cancelled is not None and not cancel_sent and is_cancelled():
                self.send("cancel")
                cancel_sent = True
            message = self.next_message(poll)
            if message is None:
                continue
            if message.get("id") == run_id and message.get("type") == "error":
                raise WorkerError(message.get("message", "?"), message.get("error", "Error"))
            if message.get("id") == run_id and message.get("type") == "result":
                return message["report"]
            if on_message is not None:
                on_message(message)

    def close(self, timeout: float = 10.0) -> None:
        """Ask the worker to shut down (it cancels a running shot); kill it if it hangs."""
        if self._proc is None:
            return
        if self.alive:
            try:
                self.send("shutdown")
                self._proc.wait(timeout)
            except (WorkerError, subprocess.TimeoutExpired):
                self._proc.kill()
                self._proc.wait(timeout)
        for stream in (self._proc.stdin, self._proc.stdout, self._proc.stderr):
            if stream is not None:
                stream.close()


_CLIENTS: dict[str, WorkerClient] = {}
_AT_EXIT: list[bool] = []


def get_client(python: str) -> WorkerClient:
    """The session's worker for ``python``, started (and handshaken) when needed."""
    client = _CLIENTS.get(python)
    if client is None or not client.alive:
        if not _AT_EXIT:
            atexit.register(stop_workers)
            _AT_EXIT.append(True)
        client = WorkerClient(python)
        try:
            client.start()
        except WorkerError:
            client.close(timeout=2.0)
            raise
        _CLIENTS[python] = client
    return client


def stop_workers() -> int:
    """End every worker of this session; returns how many there were."""
    count = len(_CLIENTS)
    while _CLIENTS:
        _, client = _CLIENTS.popitem()
        client.close()
    return count
