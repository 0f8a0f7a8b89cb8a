"""What a run reports, frame by frame, and how hosts follow and stop it.

Shared by the local frame loop (:mod:`vfxmatte.engine.pipeline`) and the chunked
parallel runs (:mod:`vfxmatte.engine.parallel`).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from vfxmatte.io.sequence import compress_frames
from vfxmatte.propagate.drift import DriftReport

__all__ = ["FRAME_STATUSES", "Interrupt", "ProgressEvent", "RunReport", "progress_bar"]

log = logging.getLogger(__name__)

FRAME_STATUSES = ("written", "reused", "failed")


@dataclass(frozen=True)
class ProgressEvent:
    """One frame done: ``status`` is ``written``, ``reused`` or ``failed``.

    ``propagated``: the frame's guidance was written by the propagation pass that a
    local ``sam2`` run makes before matting (``done``/``total`` then count that pass).
    """

    number: int
    done: int
    total: int
    status: str


@dataclass
class RunReport:
    """What a run did, frame by frame.

    ``written``: frames whose outputs this run wrote (by any worker, in any attempt);
    ``reused``: frames complete on disk before the run; ``failed``: frame -> reason.
    Frames in none of them were not reached (a cancelled run). ``drift``: the
    propagation's per-frame confidence, from backends that measure it (``snapcut``).
    """

    written: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    cancelled: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)
    drift: DriftReport = field(default_factory=DriftReport)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled

    def statuses(self) -> dict[int, str]:
        """Frame number -> ``written`` / ``reused`` / ``failed``, in frame order."""
        table = {n: "written" for n in self.written}
        table.update({n: "reused" for n in self.reused})
        table.update({n: "failed" for n in self.failed})
        return dict(sorted(table.items()))

    def summary(self) -> str:
        parts = [f"{len(self.written)} frame(s) written", f"{len(self.reused)} already done"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed: {compress_frames(self.failed)}")
        if self.cancelled:
            parts.append("cancelled")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


class Interrupt:
    """Ctrl-C stops after the current frame; a second Ctrl-C stops at once."""

    def __init__(self) -> None:
        self.requested = False

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        if threading.current_thread() is not threading.main_thread():
            yield
            return

        def handler(signum: int, frame: Any) -> None:
            if self.requested:
                raise KeyboardInterrupt
            self.requested = True
            log.warning("Interrupted: stopping after the current frame (Ctrl-C again to abort).")

        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def progress_bar(enabled: bool, total: int) -> Any:
    """A tqdm bar on a terminal when ``enabled``, else None."""
    if not (enabled and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="vfxmatte", dynamic_ncols=True)
