"""Bounded read-ahead and write-behind threads for the frame loops.

A frame loop reads a plate frame, mattes it and writes its outputs. Reading and
writing are mostly OpenImageIO work that releases the GIL (EXR decode and zip
encode), so they can run beside the matting of another frame: the frame after
the current one is read on one thread (:class:`ReadAhead`) and the one before is
written on another (:class:`WriteBehind`), so that a frame costs about
``max(compute, I/O)`` instead of their sum.

Both keep at most ``depth`` frames waiting (memory stays bounded: with ``depth=1``
a loop holds about three frames and two results), keep the order of the frames,
and hand an exception raised on their thread to the loop, unchanged, where the
frame it belongs to is taken: the loop's error handling and sentences are those of
a loop without threads. ``depth=0`` runs everything in the caller's thread, in turn.
Values are computed by the same functions on the same inputs, so results are
bit-identical with and without the threads.
"""

from __future__ import annotations

import collections
import queue
import threading
from collections.abc import Callable, Hashable, Iterable
from typing import Any, Generic, TypeVar

from vfxmatte.engine.timing import StageTimer

__all__ = ["ReadAhead", "WriteBehind"]

T = TypeVar("T")
_POLL = 0.05


class ReadAhead(Generic[T]):
    """``load(key)`` for each of ``keys``, in order, on a thread at most ``depth`` ahead.

    Take the values with :meth:`take`, in the order of ``keys``. Use it as a
    context manager (or call :meth:`close`): leaving stops the thread, also when
    the loop stops early (cancel, error), and drops what it had read.

    Args:
        timer: the thread's seconds are added to it under ``thread_stage`` (with
            ``depth=0`` the caller times :meth:`take` itself).
    """

    def __init__(
        self,
        load: Callable[[Any], T],
        keys: Iterable[Hashable],
        depth: int = 1,
        *,
        timer: StageTimer | None = None,
        thread_stage: str = "read (thread)",
    ) -> None:
        self._load = load
        self._keys = list(keys)
        self._depth = max(0, int(depth))
        self._timer = timer
        self._stage = thread_stage
        self._next = 0
        self._stop = threading.Event()
        self._queue: queue.Queue[tuple[Hashable, Any, BaseException | None]] = queue.Queue(
            maxsize=max(1, self._depth)
        )
        self._thread: threading.Thread | None = None
        if self._depth and self._keys:
            self._thread = threading.Thread(target=self._work, name="vfxmatte-read", daemon=True)
            self._thread.start()

    def _timed_load(self, key: Hashable) -> T:
        if self._timer is None:
            return self._load(key)
        with self._timer.stage(self._stage):
            return self._load(key)

    def _work(self) -> None:
        for key in self._keys:
            if self._stop.is_set():
                return
            try:
                item = (key, self._timed_load(key), None)
            except BaseException as exc:  # noqa: BLE001 - handed to the loop, unchanged
                item = (key, None, exc)
            while not self._stop.is_set():
                try:
                    self._queue.put(item, timeout=_POLL)
                    break
                except queue.Full:
                    continue
            item = None  # type: ignore[assignment]  # do not hold a frame while waiting

    def take(self, key: Hashable) -> T:
        """The value of ``key``, the next of ``keys``; raises what ``load`` raised for it."""
        if self._next >= len(self._keys) or self._keys[self._next] != key:
            expected = self._keys[self._next] if self._next < len(self._keys) else None
            raise RuntimeError(f"ReadAhead: {key!r} taken, {expected!r} is next")
        self._next += 1
        if self._thread is None:
            return self._load(key)
        while True:
            try:
                got, value, error = self._queue.get(timeout=_POLL)
                break
            except queue.Empty:
                if not self._thread.is_alive() and self._queue.empty():
                    raise RuntimeError("ReadAhead: the reading thread ended early") from None
        if error is not None:
            raise error
        return value

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            while self._thread.is_alive():
                try:
                    self._queue.get(timeout=_POLL)  # unblock a put
                except queue.Empty:
                    pass
            self._thread.join()
            self._thread = None
        while not self._queue.empty():
            self._queue.get_nowait()

    def __enter__(self) -> ReadAhead[T]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class WriteBehind:
    """Run writes on one thread, in order, at most ``depth`` waiting; report each in order.

    :meth:`submit` hands ``write()`` to the thread and returns at once (after
    waiting for the oldest write when ``depth`` are already waiting). When a write
    ends, ``done(tag, error)`` is called **in the caller's thread**, in the order
    of submission, from :meth:`submit`, :meth:`then` or :meth:`flush`; ``error``
    is what ``write`` raised (None when it worked). ``done`` may raise: the
    exception leaves the call that ran it (the loop stops there); the writes
    still waiting are finished by :meth:`close`, which reports nothing.

    :meth:`then` runs a callback after every earlier write is reported, so events
    keep the frames' order (a frame skipped or failed between written ones).

    ``timer`` gets the writes' seconds under ``thread_stage`` (``inline_stage`` with
    ``depth=0``, when they run in the caller's thread).
    """

    def __init__(
        self,
        done: Callable[[Any, BaseException | None], None],
        depth: int = 1,
        *,
        timer: StageTimer | None = None,
        thread_stage: str = "write (thread)",
        inline_stage: str = "write",
    ) -> None:
        self._done = done
        self._depth = max(0, int(depth))
        self._timer = timer
        self._stage = thread_stage
        self._pending: collections.deque[tuple[Any, threading.Event, list[Any]]] = (
            collections.deque()
        )
        self._jobs: queue.Queue[tuple[Callable[[], None], threading.Event, list[Any]] | None] = (
            queue.Queue()
        )
        self._thread: threading.Thread | None = None
        if self._depth:
            self._thread = threading.Thread(target=self._work, name="vfxmatte-write", daemon=True)
            self._thread.start()
        else:
            self._stage = inline_stage  # written in the caller's thread: the loop's own time

    def _run(self, write: Callable[[], None]) -> BaseException | None:
        try:
            if self._timer is None:
                write()
            else:
                with self._timer.stage(self._stage):
                    write()
        except BaseException as exc:  # noqa: BLE001 - handed to the loop, unchanged
            return exc
        return None

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            write, finished, box = job
            box.append(self._run(write))
            job = write = None  # type: ignore[assignment]  # free the frame now
            finished.set()

    def _report_oldest(self, wait: bool) -> bool:
        tag, finished, box = self._pending[0]
        if not finished.is_set():
            if not wait:
                return False
            finished.wait()
        self._pending.popleft()
        self._done(tag, box[0])
        return True

    @property
    def threaded(self) -> bool:
        """Whether writes run on a thread (``depth`` above 0)."""
        return self._thread is not None

    def make_room(self) -> None:
        """Report the writes that have ended; wait for the oldest while ``depth`` wait.

        :meth:`submit` does it too; a loop calls it first to poll its cancel between
        the reports of earlier frames and the write of the next (as without threads).
        """
        while self._pending and self._report_oldest(wait=len(self._pending) >= self._depth):
            pass

    def submit(self, tag: Any, write: Callable[[], None]) -> None:
        """Write on the thread; report it (``done(tag, error)``) when it has ended."""
        if self._thread is None:
            self._done(tag, self._run(write))
            return
        self.make_room()
        finished, box = threading.Event(), []
        self._pending.append((tag, finished, box))
        self._jobs.put((write, finished, box))

    def then(self, callback: Callable[[], None]) -> None:
        """Report every write submitted so far, then run ``callback``."""
        self.flush()
        callback()

    def flush(self) -> None:
        """Wait for every write submitted so far and report each."""
        while self._pending:
            self._report_oldest(wait=True)

    def close(self) -> None:
        """Wait for the writes still running (without reporting them) and end the thread.

        Nothing writes after this returns: the run's lock may be released then.
        """
        if self._thread is None:
            return
        self._jobs.put(None)
        self._thread.join()
        self._thread = None
        self._pending.clear()

    def __enter__(self) -> WriteBehind:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
