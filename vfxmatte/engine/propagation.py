"""The propagation phase: keyframe masks -> one guidance file per frame, before matting.

Propagation is sequential (each frame's guidance comes from the previous one),
matting is not. A parallel run (``engine.executor`` processes or dask) and a
render-farm split therefore propagate the whole shot first, in one process, and
write the guidance of every frame; chunks of frames are then matted anywhere from
those files (:mod:`vfxmatte.engine.chunks`).

:func:`write_pass_guidance` walks the shot exactly as the local frame loop does
(:func:`plan_passes`, one fresh propagator per pass, ``reset`` at keyframes and
``step`` elsewhere) and writes float32 guidance, so a chunked run mattes every
frame from the very guidance the local loop computes in memory: the results are
identical bit for bit. ``sam2`` goes through :func:`~vfxmatte.engine.guidance.
write_guidance`, which the local loop reads back as well.
:class:`BackgroundPropagation` runs the phase in a thread and reports each frame
as its guidance lands, so that chunks can start before the shot is done.
"""

from __future__ import annotations

import copy
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.digest import (
    GUIDANCE_ATTR,
    canonical,
    differences,
    guidance_header,
    propagation_identity,
    read_header,
)
from vfxmatte.engine.outputs import stale_error
from vfxmatte.engine.stages import ColourContext, make_propagator, open_shot_plate
from vfxmatte.errors import ConfigError, VfxMatteError
from vfxmatte.io.image import write_image
from vfxmatte.io.mask import read_mask
from vfxmatte.io.sequence import FramePattern, compress_frames
from vfxmatte.propagate.drift import DriftReport

__all__ = [
    "BackgroundPropagation",
    "PropagationResult",
    "check_parallel_propagation",
    "default_guidance_pattern",
    "keyframe_masks",
    "parse_keyframes",
    "plan_passes",
    "propagate_first",
    "propagate_to_files",
    "write_pass_guidance",
]

log = logging.getLogger(__name__)


@dataclass
class PropagationResult:
    """What the propagation phase did: its guidance pattern, frames written and failed."""

    pattern: str
    written: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    drift: DriftReport = field(default_factory=DriftReport)


def plan_passes(frames: list[int], key: int) -> list[list[int]]:
    """Forward from ``key`` to the last frame, then backward from ``key`` to the first.

    Both passes start at ``key`` (the backward pass re-anchors there and does not
    write it again).
    """
    position = frames.index(key)
    passes = [frames[position:]]
    if position > 0:
        passes.append(frames[position::-1])
    return passes


def parse_keyframes(text: str) -> list[tuple[int, str]]:
    """``"1050=a.png;1100=b.png"`` -> ``[(1050, "a.png"), (1100, "b.png")]``."""
    specs = []
    for item in filter(None, (s.strip() for s in text.split(";"))):
        number, sep, path = item.partition("=")
        if not sep or not number.strip().lstrip("-").isdigit():
            raise ConfigError(f"keyframes expects 'FRAME=PATH;FRAME=PATH', got {item!r}.")
        if not path.strip():
            raise ConfigError(
                f"The keyframes entry {item!r} names no mask file; write FRAME=PATH, e.g. "
                f"'{number.strip()}=masks/key.{number.strip()}.png'."
            )
        specs.append((int(number), path.strip()))
    return specs


def keyframe_masks(
    config: PipelineConfig, frames: list[int], shape: tuple[int, int]
) -> dict[int, np.ndarray]:
    """Frame number -> ``H x W`` float32 keyframe mask, sorted by frame number.

    With ``propagate.backend=given`` no mask is read (the propagator reads every
    frame's mask itself) and the first keyframe maps to an empty placeholder.
    """
    key = config.key_frame if config.key_frame >= 0 else frames[0]
    specs = [(key, config.mask), *parse_keyframes(config.keyframes)]
    masks: dict[int, np.ndarray] = {}
    for number, path in specs:
        if number not in frames:
            raise ConfigError(
                f"The keyframe {number} is not among the frames to process "
                f"({compress_frames(frames)}); give --key-frame and --keyframes frames of "
                "that range, or widen --frames."
            )
        if not path:
            raise ConfigError("No keyframe mask given; pass --mask FIRST_FRAME_MASK.")
        if config.propagate.backend == "given":
            continue  # every frame's mask is read by the propagator
        masks[number] = read_mask(
            path,
            shape=shape,
            channel=config.input.mask_channel,
            resize=config.input.mask_resize,
            number=number,
            nonfinite=config.input.nonfinite,
        )
    return dict(sorted(masks.items())) or {key: np.zeros(shape, np.float32)}


def default_guidance_pattern(output: str) -> str:
    """``out/shot.####.exr`` -> ``out/guidance/shot_guidance.####.exr``."""
    folder, name = os.path.split(FramePattern.parse(output).as_hashes())
    return os.path.join(folder, "guidance", name.split(".", 1)[0] + "_guidance.####.exr")


def guidance_pattern(config: PipelineConfig) -> str:
    """Where the propagation phase writes: ``guidance_output``, else beside the output."""
    if config.guidance_output:
        return config.guidance_output
    if not config.output:
        raise ConfigError("No output path given; pass -o out/shot.####.exr.")
    return default_guidance_pattern(config.output)


def check_parallel_propagation(config: PipelineConfig) -> None:
    """Refuse options that tie propagation to matting (they cannot run as two phases).

    Raises:
        ConfigError: for ``propagate.flow.feed=matte``.
    """
    backend = config.propagate.backend
    if backend in ("flow", "snapcut") and getattr(config.propagate, backend).feed == "matte":
        raise ConfigError(
            f"propagate.{backend}.feed=matte feeds every frame's matte back into propagation, "
            "so frames cannot be matted apart from it (executor processes/dask, farm chunks, "
            f"--phase propagate); use --executor local, or propagate.{backend}.feed=mask."
        )


def _guidance_complete(pattern: str, frames: list[int]) -> bool:
    return set(FramePattern.parse(pattern).frames_on_disk()) >= set(frames)


def plate_colour(config: PipelineConfig) -> ColourContext:
    """The plate's :class:`ColourContext` (reads its first frame)."""
    plate = open_shot_plate(config)
    return ColourContext.for_plate(config, plate.read(plate.frames[0]))


def run_identity(config: PipelineConfig, frames: list[int], plate: str) -> dict[str, Any] | None:
    """The propagation identity of ``config`` (None for ``given``: nothing propagates)."""
    if config.propagate.backend == "given":
        return None
    return propagation_identity(config, keyframe_paths(config, frames[0]), plate)


def stale_guidance(pattern: str, frames: list[int], identity: Mapping[str, Any]) -> dict[int, str]:
    """Guidance frames on disk propagated with another identity: frame -> what differs."""
    expected = canonical(dict(identity))
    parsed = FramePattern.parse(pattern)
    stale = {}
    for number in frames:
        path = parsed.path(number)
        if not os.path.isfile(path):
            continue
        header = read_header(path)
        found = header.attributes.get(GUIDANCE_ATTR) if header is not None else None
        if found != expected:
            stale[number] = differences(expected, found, prefix="propagate.")
    return stale


def refuse_stale_guidance(pattern: str, frames: list[int], identity: Mapping[str, Any]) -> None:
    """Raise :class:`SettingsMismatchError` for guidance frames of another propagation."""
    stale = stale_guidance(pattern, frames, identity)
    if stale:
        raise stale_error(pattern, stale)


def propagate_first(
    config: PipelineConfig,
    *,
    on_frame: Callable[[int], Any] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> PipelineConfig:
    """Propagate the whole shot to guidance files first; the config that mattes from them.

    The local loop does this for ``sam2``, whose propagation runs over the whole
    shot at once: the returned config reads the files with ``propagate.backend=given``.
    ``on_frame`` is called after each guidance frame is written; ``should_cancel``
    is polled between frames (SAM 2 only) and ``True`` stops the pass.
    """
    result = propagate_to_files(config, on_frame=on_frame, should_cancel=should_cancel)
    return given_config(config, result.pattern)


def given_config(config: PipelineConfig, pattern: str) -> PipelineConfig:
    """``config`` that mattes from the guidance files at ``pattern`` (``given``)."""
    given = copy.deepcopy(config)
    given.propagate.backend = "given"
    given.mask = pattern
    given.guidance_output = ""
    given.input.mask_channel = "A"
    given.input.mask_resize = False
    return given


def keyframe_paths(config: PipelineConfig, first: int) -> dict[int, list[str]]:
    """Frame -> mask paths (one object) of ``--mask`` at the key frame plus ``--keyframes``."""
    key = config.key_frame if config.key_frame >= 0 else first
    paths = {key: [config.mask]}
    paths.update({n: [p] for n, p in parse_keyframes(config.keyframes)})
    return paths


def _sam2_guidance(
    config: PipelineConfig,
    pattern: str,
    first: int,
    on_frame: Callable[[int], Any] | None,
    should_cancel: Callable[[], bool] | None = None,
) -> list[int]:
    from vfxmatte.engine.guidance import write_guidance

    return write_guidance(
        config,
        pattern,
        keyframe_paths(config, first),
        on_frame=on_frame,
        should_cancel=should_cancel,
        guard=False,  # the run that propagates checked and locked its files
    )


def write_pass_guidance(
    config: PipelineConfig,
    pattern: str,
    *,
    on_frame: Callable[[int], Any] | None = None,
    on_failed: Callable[[int, str], Any] | None = None,
) -> PropagationResult:
    """Propagate as the local loop does and write every frame's guidance (float32 ``A``).

    A frame that cannot be read stops the phase under ``engine.on_error=stop``;
    under ``skip`` it gets no guidance and propagation carries on from the frame
    before it, as the local loop does.

    Args:
        on_frame: called with each frame number once its guidance file exists.
        on_failed: called with ``(number, reason)`` for each frame skipped.
    """
    out = FramePattern.parse(pattern)
    if out.is_single:
        raise ConfigError(f"The guidance output '{pattern}' has no frame token (####).")
    plate = open_shot_plate(config)
    frames = list(plate.frames)
    first = plate.read(frames[0])
    shape = (first.height, first.width)
    colour = ColourContext.for_plate(config, first)
    del first
    keys = keyframe_masks(config, frames, shape)
    identity = run_identity(config, frames, colour.plate)
    header = guidance_header(identity) if identity is not None else {}
    result = PropagationResult(pattern)

    def read_display(number: int) -> np.ndarray:
        return colour.display(plate.read(number).pixels[..., :3])

    for i, numbers in enumerate(plan_passes(frames, next(iter(keys)))):
        propagator = make_propagator(config, frames, keys, read_display)
        for j, number in enumerate(numbers):
            try:
                display = read_display(number)
                if number in keys:
                    guidance = propagator.reset(display, keys[number], index=number)
                else:
                    guidance = propagator.step(display, index=number)
                if getattr(propagator, "drift", None) is not None:
                    result.drift.add(number, propagator.drift)
            except VfxMatteError as exc:
                if config.engine.on_error == "stop":
                    raise
                log.error("Frame %d failed: %s", number, exc)
                result.failed[number] = str(exc)
                if on_failed is not None:
                    on_failed(number, str(exc))
                continue
            if i > 0 and j == 0:
                continue  # the backward pass only re-anchors at the keyframe
            # float32: a chunk reads back exactly what the local loop mattes from.
            write_image(
                out.path(number), guidance[..., None], ["A"], metadata=header, dtype="float"
            )
            result.written.append(number)
            if on_frame is not None:
                on_frame(number)
    log.info("Wrote guidance for %d frame(s) to %s", len(result.written), pattern)
    if result.drift.samples:
        log.info("%s", result.drift.summary())
    result.written.sort()
    return result


def propagate_to_files(
    config: PipelineConfig,
    *,
    on_frame: Callable[[int], Any] | None = None,
    on_failed: Callable[[int, str], Any] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> PropagationResult:
    """The propagation phase: guidance files of every frame of ``config``.

    Guidance already complete on disk is reused (nothing is written and
    ``on_frame`` is not called) unless ``engine.overwrite`` is set, so a resumed
    run does not propagate again; guidance files of another propagation (their
    ``vfxmatte:guidance`` header differs) stop it with a
    :class:`~vfxmatte.errors.SettingsMismatchError`. Callbacks as
    :func:`write_pass_guidance`; ``should_cancel`` stops a SAM 2 pass between frames.
    """
    check_parallel_propagation(config)
    pattern = guidance_pattern(config)
    frames = open_shot_plate(config).frames
    if not config.engine.overwrite:
        identity = run_identity(config, frames, plate_colour(config).plate)
        if identity is not None:
            refuse_stale_guidance(pattern, frames, identity)
        if _guidance_complete(pattern, frames):
            log.info("The guidance %s is complete; not propagating again.", pattern)
            return PropagationResult(pattern)
    if config.propagate.backend == "sam2":
        written = _sam2_guidance(config, pattern, frames[0], on_frame, should_cancel)
        return PropagationResult(pattern, written)
    return write_pass_guidance(config, pattern, on_frame=on_frame, on_failed=on_failed)


class _Stopped(Exception):
    """Ends a background propagation early (raised from its frame callback)."""


class BackgroundPropagation:
    """:func:`propagate_to_files` in a thread of this process, reporting frames as they land.

    A parallel run on this machine starts a chunk as soon as the guidance of
    its frames exists, so matting overlaps propagation instead of waiting for
    the whole shot. :meth:`drain` returns ``(frame, None)`` for each frame
    written and ``(frame, reason)`` for each frame skipped since the last call.
    """

    def __init__(self, config: PipelineConfig) -> None:
        self.config = config
        self.result: PropagationResult | None = None
        self.error: BaseException | None = None
        self.seconds = 0.0
        self._events: queue.SimpleQueue[tuple[int, str | None]] = queue.SimpleQueue()
        self._stop = threading.Event()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, name="vfxmatte-propagation", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        start = time.perf_counter()
        try:
            self.result = propagate_to_files(
                self.config, on_frame=self._written, on_failed=self._failed
            )
        except _Stopped:
            pass
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = exc
        finally:
            self.seconds = time.perf_counter() - start
            self._done.set()

    def _written(self, number: int) -> None:
        if self._stop.is_set():
            raise _Stopped
        self._events.put((number, None))

    def _failed(self, number: int, reason: str) -> None:
        if self._stop.is_set():
            raise _Stopped
        self._events.put((number, reason))

    @property
    def done(self) -> bool:
        """Finished (read it before :meth:`drain`: then every event is there)."""
        return self._done.is_set()

    def drain(self) -> list[tuple[int, str | None]]:
        events = []
        while True:
            try:
                events.append(self._events.get_nowait())
            except queue.Empty:
                return events

    def stop(self) -> None:
        """Stop after the frame being propagated, and wait for it."""
        self._stop.set()
        self._thread.join()
