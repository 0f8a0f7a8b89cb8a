"""What the worker keeps between requests: models keyed by their config.

A persistent worker builds a model once and reuses it for every shot that asks
for the same options: the SAM 2 video predictor (seconds to build and to load a
checkpoint) is the main one today. :func:`propagate_phase` is the engine's
"sam2 first" phase (``run_pipeline`` with ``propagate.backend=sam2`` writes
guidance files for the whole shot, then mattes with ``given``) done with a cached
predictor, a progress callback per frame and a cancel check between frames.
Within a shot SAM 2 keeps its memory bank across frames; between shots only the
weights are kept (a new shot starts a fresh inference state, as it must).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.propagation import guidance_pattern, keyframe_paths
from vfxmatte.engine.stages import open_shot_plate
from vfxmatte.io.sequence import FramePattern

__all__ = ["ModelCache", "PhaseResult", "propagate_phase", "uses_local_sam2"]

log = logging.getLogger(__name__)


class ModelCache:
    """Built models keyed by ``(kind, config)``; the least recently used is dropped.

    ``size`` is small on purpose: a SAM 2 model holds hundreds of MB (on a GPU too),
    and a worker rarely alternates between several.
    """

    def __init__(self, size: int = 1) -> None:
        self.size = max(1, size)
        self.builds = 0
        self._items: OrderedDict[str, Any] = OrderedDict()
        self._lock = threading.Lock()

    @staticmethod
    def key(kind: str, config: Any) -> str:
        """``kind`` plus the canonical JSON of a config dataclass."""
        return f"{kind}:{json.dumps(dataclasses.asdict(config), sort_keys=True)}"

    def get(self, kind: str, config: Any, build: Callable[[], Any]) -> Any:
        """The cached model of ``(kind, config)``, built with ``build()`` when missing."""
        key = self.key(kind, config)
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            while len(self._items) >= self.size:
                self._items.popitem(last=False)  # free the old model before building
        model = build()
        with self._lock:
            self.builds += 1
            self._items[key] = model
        return model

    def keys(self) -> list[str]:
        """The cached keys, least recently used first."""
        with self._lock:
            return list(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


@dataclasses.dataclass
class PhaseResult:
    """What :func:`propagate_phase` did: frames written, whether it was cancelled, time."""

    written: list[int]
    cancelled: bool
    seconds: float
    pattern: str


def uses_local_sam2(config: PipelineConfig) -> bool:
    """Whether ``run_pipeline`` would run SAM 2 as the local loop's first phase.

    Parallel executors, farm chunks (``guidance``) and ``engine.phase=propagate``
    go through the engine as they are.
    """
    return (
        config.propagate.backend == "sam2"
        and config.engine.executor == "local"
        and not config.guidance
        and config.engine.phase == "all"
    )


def propagate_phase(
    config: PipelineConfig,
    models: ModelCache,
    on_frame: Callable[[int, int, int], None],
    should_cancel: Callable[[], bool],
) -> PhaseResult:
    """Write SAM 2 guidance for every frame of ``config``, as the engine's first phase.

    Guidance already complete on disk is reused unless ``engine.overwrite`` is set.
    ``on_frame(number, done, total)`` is called after every written frame and
    ``should_cancel()`` is polled before the next one.

    Raises:
        VfxMatteError: bad plate, masks or options; sam2 not installed; weights.
    """
    from vfxmatte.engine.guidance import write_guidance
    from vfxmatte.propagate.sam2 import Sam2Propagator

    start = time.perf_counter()
    pattern = guidance_pattern(config)
    frames = list(open_shot_plate(config).frames)
    if not config.engine.overwrite and set(FramePattern.parse(pattern).frames_on_disk()) >= set(
        frames
    ):
        return PhaseResult([], False, time.perf_counter() - start, pattern)
    sam2_config = config.propagate.sam2
    propagator = models.get("sam2", sam2_config, lambda: Sam2Propagator(sam2_config))
    written: list[int] = []
    cancelled = False

    def frame_done(number: int) -> None:
        written.append(number)
        on_frame(number, len(written), len(frames))

    def cancel() -> bool:
        nonlocal cancelled
        cancelled = should_cancel()
        return cancelled

    write_guidance(
        config,
        pattern,
        keyframe_paths(config, frames[0]),
        on_frame=frame_done,
        should_cancel=cancel,
        sam2=propagator,
    )
    if not cancelled:
        log.info("Wrote SAM 2 guidance for %d frame(s) to %s", len(written), pattern)
    return PhaseResult(sorted(written), cancelled, time.perf_counter() - start, pattern)
