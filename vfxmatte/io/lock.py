"""A lock beside each output: two runs never write the same frames of one output at once.

**Per output pattern and frame set, not per folder or per pattern.** A render farm
splits one shot into chunk jobs of disjoint frame ranges that run at the same time
on different machines and write the same output pattern, and it re-queues a job
whose machine died, possibly on another machine. So each run puts one small lock
file per pattern it writes beside that pattern's files::

    out/.shot.#.exr.<host>.<pid>.<tag>.vfxmatte-lock   (JSON: pattern, frames, host, pid...)

and two runs conflict only where their frames overlap: the chunks of one job never
do, a second run of the same shot does (it is refused, naming the run that holds
the frames). The frames are those the run *writes*: warm-up frames a chunk only
reads are not locked.

**Stale locks.** The holder touches its files every :data:`HEARTBEAT_SECONDS` (a
daemon thread). A lock is stale when, on this host, its process is gone (the pid
does not exist, or belongs to a process started at another time), or, from another
host, its file has not been touched for :data:`STALE_SECONDS` by the file system's
clock (our own new lock file's time: no machine's clock is trusted). A stale lock is
taken over (removed) with a warning in the log.

**Races.** A run creates its own lock file first (complete, by rename) and then
reads the others; of two live overlapping locks the younger one gives way (by
``(created, host, pid, tag)``, an order both runs agree on), so of two runs started
at the same instant exactly one goes on.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vfxmatte.errors import OutputLockedError
from vfxmatte.io.sequence import FramePattern, compress_frames, parse_frame_range

__all__ = ["HEARTBEAT_SECONDS", "STALE_SECONDS", "OutputLock", "process_alive"]

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 15.0
STALE_SECONDS = 120.0
_SUFFIX = ".vfxmatte-lock"


def _start_time(pid: int) -> int | None:
    """The start time of process ``pid`` in clock ticks since boot (Linux), else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            fields = handle.read().rsplit(b")", 1)[1].split()
        return int(fields[19])
    except (OSError, IndexError, ValueError):
        return None


def process_alive(pid: int, started: int | None = None) -> bool:
    """Whether process ``pid`` of this host runs (and, if known, started at ``started``)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # someone else's process: it exists
    except OSError:
        return False
    now = _start_time(pid)
    return started is None or now is None or now == started


@dataclass(frozen=True)
class _Held:
    """A lock file found beside an output, and what it says."""

    path: str
    data: dict[str, Any]
    mtime_ns: int

    def order(self) -> tuple:
        d = self.data
        return (d.get("created", 0), d.get("host", ""), d.get("pid", 0), d.get("tag", ""))

    def frames(self) -> set[int]:
        try:
            return set(parse_frame_range(self.data.get("frames", "")))
        except Exception:  # noqa: BLE001 - an unreadable lock covers everything
            return set()

    def describe(self) -> str:
        d = self.data
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(d.get("created", 0) / 1e9))
        return f"pid {d.get('pid', '?')} on host {d.get('host', '?')}, since {since}"


def _key(pattern: str) -> tuple[str, str]:
    """``(folder, name)`` of a pattern's lock files: the name has one ``#`` for the token."""
    parsed = FramePattern.parse(pattern)
    text = parsed.source if parsed.is_single else f"{parsed.head}#{parsed.tail}"
    folder, name = os.path.split(os.path.abspath(text))
    return os.path.realpath(folder), name


class OutputLock:
    """The lock of ``frames`` of every pattern in ``patterns``, for one run.

    Use as a context manager (or :meth:`acquire` / :meth:`release`). The folders
    must exist (:func:`vfxmatte.io.write_guard.check_locations` makes them).

    Raises:
        OutputLockedError: another live run holds some of these frames of a pattern.
    """

    def __init__(self, patterns: Sequence[str], frames: Sequence[int], what: str = "run") -> None:
        self.keys = list(dict.fromkeys(_key(p) for p in patterns if p))
        self.sources = {_key(p): p for p in patterns if p}
        self.frames = sorted(set(frames))
        self.what = what
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.tag = uuid.uuid4().hex[:8]
        self.paths: list[str] = []
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def _data(self, folder: str, name: str) -> dict[str, Any]:
        return {
            "pattern": os.path.join(folder, name),
            "frames": compress_frames(self.frames),
            "host": self.host,
            "pid": self.pid,
            "pid_started": _start_time(self.pid),
            "created": time.time_ns(),
            "tag": self.tag,
            "what": self.what,
        }

    def _create(self, folder: str, name: str) -> _Held:
        path = os.path.join(folder, f".{name}.{self.host}.{self.pid}.{self.tag}{_SUFFIX}")
        tmp = path + ".tmp"
        data = self._data(folder, name)
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(data, handle)
        os.replace(tmp, path)
        self.paths.append(path)
        return _Held(path, data, os.stat(path).st_mtime_ns)

    def acquire(self) -> OutputLock:
        try:
            for folder, name in self.keys:
                self._check(folder, name, self._create(folder, name))
        except BaseException:
            self.release()
            raise
        self._thread = threading.Thread(target=self._beat, name="vfxmatte-lock", daemon=True)
        self._thread.start()
        return self

    def _others(self, folder: str, name: str, own: str) -> list[_Held]:
        prefix = f".{name}."
        found = []
        for entry in os.scandir(folder):
            if not (entry.name.startswith(prefix) and entry.name.endswith(_SUFFIX)):
                continue
            if entry.path == own:
                continue
            try:
                with open(entry.path, encoding="utf-8") as handle:
                    data = json.load(handle)
                found.append(_Held(entry.path, data, entry.stat().st_mtime_ns))
            except (OSError, ValueError):
                continue  # removed meanwhile, or not ours
        return found

    def _stale(self, held: _Held, now_ns: int) -> bool:
        data = held.data
        if data.get("host") == self.host:
            return not process_alive(int(data.get("pid", -1)), data.get("pid_started"))
        return now_ns - held.mtime_ns > STALE_SECONDS * 1e9

    def _check(self, folder: str, name: str, mine: _Held) -> None:
        for held in self._others(folder, name, mine.path):
            theirs = held.frames() or set(self.frames)  # unreadable frames: all of them
            overlap = theirs & set(self.frames)
            if not overlap:
                continue
            if self._stale(held, mine.mtime_ns):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(held.path)
                log.warning(
                    "Took over the lock of %s (%s), which no longer runs: %s",
                    held.data.get("pattern", name), held.describe(), held.path,
                )  # fmt: skip
                continue
            if held.order() > mine.order():
                continue  # younger: that run gives way
            raise OutputLockedError(
                f"Another vfxmatte run ({held.describe()}) is writing frames "
                f"{compress_frames(sorted(overlap))} of '{self.sources[(folder, name)]}'; "
                "wait for it to finish or stop it, or write to another output. If that run "
                f"was killed, its lock '{held.path}' is taken over automatically (on its own "
                f"host at once, elsewhere {STALE_SECONDS:.0f} s after its last sign of life)."
            )

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_SECONDS):
            for path in list(self.paths):
                with contextlib.suppress(OSError):
                    os.utime(path)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=1.0)
        for path in self.paths:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)
        self.paths = []

    def __enter__(self) -> OutputLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
