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

import copy
import dataclasses
import json
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import numpy as np

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.guidance import guidance_channels
from vfxmatte.engine.propagation import guidance_pattern, parse_keyframes
from vfxmatte.engine.stages import ColourContext
from vfxmatte.errors import ConfigError
from vfxmatte.io.image import write_image
from vfxmatte.io.mask import read_mask
from vfxmatte.io.plate import open_plate
from vfxmatte.io.sequence import FramePattern, compress_frames

__all__ = ["ModelCache", "PhaseResult", "given_config", "propagate_phase", "uses_local_sam2"]

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


def given_config(config: PipelineConfig, pattern: str) -> PipelineConfig:
    """``config`` that mattes from the guidance files at ``pattern`` (the engine's rule)."""
    given = copy.deepcopy(config)
    given.propagate.backend = "given"
    given.mask = pattern
    given.guidance_output = ""
    given.input.mask_channel = "A"
    given.input.mask_resize = False
    return given


def _key_masks(
    config: PipelineConfig, frames: list[int], shape: tuple[int, int]
) -> dict[int, dict[int, np.ndarray]]:
    key = config.key_frame if config.key_frame >= 0 else frames[0]
    paths = {key: config.mask}
    paths.update(parse_keyframes(config.keyframes))
    keys: dict[int, dict[int, np.ndarray]] = {}
    for number, path in sorted(paths.items()):
        if number not in frames:
            raise ConfigError(
                f"The keyframe {number} is not among the frames ({compress_frames(frames)})."
            )
        if not path:
            raise ConfigError("No keyframe mask given; pass --mask FIRST_FRAME_MASK.")
        mask = read_mask(
            path,
            shape=shape,
            channel=config.input.mask_channel,
            resize=config.input.mask_resize,
            number=number,
        )
        keys[number] = {1: mask}
    return keys


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
    from vfxmatte.propagate.sam2 import Sam2Propagator

    start = time.perf_counter()
    pattern = guidance_pattern(config)
    out = FramePattern.parse(pattern)
    plate = open_plate(
        config.plate,
        config.frames or None,
        channels=config.input.channels,
        nonfinite=config.input.nonfinite,
        first_frame=config.input.first_frame,
    )
    frames = list(plate.frames)
    if not config.engine.overwrite and set(out.frames_on_disk()) >= set(frames):
        return PhaseResult([], False, time.perf_counter() - start, pattern)
    first = plate.read(frames[0])
    shape = (first.height, first.width)
    colour = ColourContext.for_plate(config, first)
    del first
    keys = _key_masks(config, frames, shape)
    sam2_config = config.propagate.sam2
    propagator = models.get("sam2", sam2_config, lambda: Sam2Propagator(sam2_config))
    cache: dict[int, np.ndarray] = {}

    def get(number: int) -> np.ndarray:
        # SAM 2 asks for each frame once or twice in a row; keep the last two.
        if number not in cache:
            if len(cache) >= 2:
                cache.pop(next(iter(cache)))
            cache[number] = colour.display(plate.read(number).pixels[..., :3])
        return cache[number]

    channels = guidance_channels([1])
    written: list[int] = []
    stream = propagator.propagate(get, frames, keys)
    try:
        for number, masks in stream:
            mask = masks.get(1, np.zeros(shape, np.float32))
            write_image(
                out.path(number), mask[..., None].astype(np.float32), channels, dtype="half"
            )
            written.append(number)
            on_frame(number, len(written), len(frames))
            if len(written) < len(frames) and should_cancel():
                return PhaseResult(sorted(written), True, time.perf_counter() - start, pattern)
    finally:
        stream.close()  # frees SAM 2's inference state at once, also when cancelled
    log.info("Wrote SAM 2 guidance for %d frame(s) to %s", len(written), pattern)
    return PhaseResult(sorted(written), False, time.perf_counter() - start, pattern)
