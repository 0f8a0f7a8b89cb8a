"""The frame-wise engine: plate + keyframe mask(s) -> mattes on disk.

:func:`run_pipeline` is the one entry point of the CLI, Python, ComfyUI and Nuke.
It walks the shot in passes (forward from the first keyframe, then backward from
it), keeps one frame in memory at a time, writes every output atomically, skips
frames whose outputs are already complete (resume), and reports each frame's
status. Hosts follow progress and cancel through ``on_progress`` / ``should_cancel``.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.outputs import OutputSet
from vfxmatte.engine.stages import ColourContext, Stages, make_propagator
from vfxmatte.errors import ConfigError, VfxMatteError
from vfxmatte.io.frame import Frame
from vfxmatte.io.image import read_image, write_image
from vfxmatte.io.mask import read_mask
from vfxmatte.io.plate import Plate, open_plate
from vfxmatte.io.sequence import FramePattern, compress_frames

__all__ = ["ProgressEvent", "RunReport", "plan_passes", "run_pipeline"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """One frame done: ``status`` is ``written``, ``reused`` or ``failed``."""

    number: int
    done: int
    total: int
    status: str


@dataclass
class RunReport:
    """What a run did, frame by frame."""

    written: list[int] = field(default_factory=list)
    reused: list[int] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    cancelled: bool = False
    seconds: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    outputs: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed and not self.cancelled

    def summary(self) -> str:
        parts = [f"{len(self.written)} frame(s) written", f"{len(self.reused)} already done"]
        if self.failed:
            parts.append(f"{len(self.failed)} failed: {compress_frames(self.failed)}")
        if self.cancelled:
            parts.append("cancelled")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


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


def _parse_keyframes(text: str) -> list[tuple[int, str]]:
    """``"1050=a.png;1100=b.png"`` -> ``[(1050, "a.png"), (1100, "b.png")]``."""
    specs = []
    for item in filter(None, (s.strip() for s in text.split(";"))):
        number, sep, path = item.partition("=")
        if not sep or not number.strip().lstrip("-").isdigit():
            raise ConfigError(f"keyframes expects 'FRAME=PATH;FRAME=PATH', got {item!r}.")
        specs.append((int(number), path.strip()))
    return specs


def _keyframe_masks(
    config: PipelineConfig, frames: list[int], shape: tuple[int, int]
) -> dict[int, np.ndarray]:
    key = config.key_frame if config.key_frame >= 0 else frames[0]
    specs = [(key, config.mask), *_parse_keyframes(config.keyframes)]
    masks: dict[int, np.ndarray] = {}
    for number, path in specs:
        if number not in frames:
            raise ConfigError(
                f"The keyframe {number} is not among the frames to process "
                f"({compress_frames(frames)})."
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
        )
    return dict(sorted(masks.items())) or {key: np.zeros(shape, np.float32)}


class _Interrupt:
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


class _Run:
    """State of one :func:`run_pipeline` call."""

    def __init__(
        self,
        config: PipelineConfig,
        on_progress: Callable[[ProgressEvent], None] | None,
        should_cancel: Callable[[], bool] | None,
    ) -> None:
        self.config = config
        self.plate: Plate = open_plate(
            config.plate,
            config.frames or None,
            channels=config.input.channels,
            nonfinite=config.input.nonfinite,
            first_frame=config.input.first_frame,
        )
        self.frames = list(self.plate.frames)
        self.outputs = OutputSet(config.output, config.output_options)
        self.guidance_out = (
            FramePattern.parse(config.guidance_output) if config.guidance_output else None
        )
        self.on_progress = on_progress
        self.should_cancel = should_cancel
        self.report = RunReport(outputs={k: p.source for k, p in self.outputs.patterns.items()})
        self.interrupt = _Interrupt()
        self._first: Frame | None = self.plate.read(self.frames[0])
        self.shape = (self._first.height, self._first.width)
        self.colour = ColourContext.for_plate(config, self._first)
        self.stages = Stages(config, self.colour)
        self.key_masks = _keyframe_masks(config, self.frames, self.shape)
        if next(iter(self.key_masks)) != self.frames[0]:
            self._first = None  # the first pass starts elsewhere; do not hold a frame for it
        self.done = 0

    def _needs_images(self) -> bool:
        return self.config.propagate.backend == "flow"

    def _is_done(self, number: int) -> bool:
        if self.config.engine.overwrite:
            return False
        return self.outputs.is_complete(number, self.shape[1], self.shape[0])

    def _fed_matte(self, alpha: np.ndarray) -> np.ndarray:
        # A resumed run reads the matte back from the EXR; feed the same quantised
        # values in an uninterrupted run so that both give identical frames.
        if self.config.output_options.dtype == "half":
            return alpha.astype(np.float16).astype(np.float32)
        return alpha

    def _alpha_on_disk(self, number: int) -> np.ndarray | None:
        for kind, channel in (("alpha", "A"), ("rgba", "A"), ("multilayer", "matte.A")):
            if kind in self.outputs.patterns:
                path = self.outputs.patterns[kind].path(number)
                if not os.path.isfile(path):
                    return None
                return read_image(path, [channel], number=number).pixels[..., 0]
        return None

    def _emit(self, number: int, status: str, bar: Any) -> None:
        self.done += 1
        if bar is not None:
            bar.update(1)
        if self.on_progress is not None:
            self.on_progress(ProgressEvent(number, self.done, len(self.frames), status))

    def _cancelled(self) -> bool:
        return self.interrupt.requested or bool(self.should_cancel and self.should_cancel())

    def run_pass(self, numbers: list[int], bar: Any, *, anchor_only_first: bool) -> bool:
        """One propagation pass; returns False when the run was cancelled.

        With ``anchor_only_first`` the first frame (the keyframe, already written
        by the forward pass) only re-anchors the propagator.
        """
        propagator = make_propagator(self.config, self.frames)
        feed_matte = getattr(getattr(propagator, "config", None), "feed", "mask") == "matte"
        if anchor_only_first:
            self._frame(numbers[0], propagator, True, feed_matte)
            numbers = numbers[1:]
        for number in numbers:
            if self._cancelled():
                return False
            reuse = self._is_done(number)
            if reuse and not self._needs_images() and not feed_matte:
                self.report.reused.append(number)
                self._emit(number, "reused", bar)
                continue
            try:
                self._frame(number, propagator, reuse, feed_matte)
            except VfxMatteError as exc:
                if self.config.engine.on_error == "stop":
                    raise
                log.error("Frame %d failed: %s", number, exc)
                self.report.failed[number] = str(exc)
                self._emit(number, "failed", bar)
                continue
            status = "reused" if reuse else "written"
            (self.report.reused if reuse else self.report.written).append(number)
            self._emit(number, status, bar)
        return True

    def _frame(self, number: int, propagator: Any, reuse: bool, feed_matte: bool) -> None:
        timer = self.stages.timer
        with timer.stage("read"):
            first, self._first = self._first, None  # held only until its first use
            frame = (
                first if first is not None and first.number == number else self.plate.read(number)
            )
            display = self.colour.display(frame.pixels[..., :3])
        with timer.stage("propagate"):
            if number in self.key_masks:
                guidance = propagator.reset(display, self.key_masks[number], index=number)
            else:
                guidance = propagator.step(display, index=number)
        if reuse:
            alpha = self._alpha_on_disk(number) if feed_matte else None
            if alpha is not None:
                propagator.correct(alpha)
            return
        result = self.stages.process(frame, guidance, display)
        with timer.stage("write"):
            if self.guidance_out is not None:
                write_image(self.guidance_out.path(number), guidance, ["A"], dtype="half")
            self.outputs.write(result)
        if feed_matte:
            propagator.correct(self._fed_matte(result.alpha))


def _default_guidance_pattern(output: str) -> str:
    folder, name = os.path.split(FramePattern.parse(output).as_hashes())
    return os.path.join(folder, "guidance", name.split(".", 1)[0] + "_guidance.####.exr")


def _propagate_first(config: PipelineConfig) -> PipelineConfig:
    """Run whole-shot propagation (sam2) to guidance files, then matte with ``given``.

    Guidance already complete on disk is reused unless ``engine.overwrite`` is set,
    so a resumed run does not propagate again.
    """
    from vfxmatte.engine.guidance import write_guidance

    pattern = config.guidance_output or _default_guidance_pattern(config.output)
    plate = open_plate(config.plate, config.frames or None, first_frame=config.input.first_frame)
    guide = FramePattern.parse(pattern)
    done = set(guide.frames_on_disk()) >= set(plate.frames)
    if config.engine.overwrite or not done:
        key = config.key_frame if config.key_frame >= 0 else plate.frames[0]
        paths = {key: [config.mask]}
        paths.update({n: [p] for n, p in _parse_keyframes(config.keyframes)})
        write_guidance(config, pattern, paths)
    given = copy.deepcopy(config)
    given.propagate.backend = "given"
    given.mask = pattern
    given.guidance_output = ""
    given.input.mask_channel = "A"
    given.input.mask_resize = False
    return given


def _progress_bar(config: PipelineConfig, total: int) -> Any:
    if not (config.engine.progress and sys.stderr.isatty()):
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="frame", desc="vfxmatte", dynamic_ncols=True)


def run_pipeline(
    config: PipelineConfig,
    *,
    on_progress: Callable[[ProgressEvent], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> RunReport:
    """Run the whole job of ``config`` and return its :class:`RunReport`.

    Args:
        on_progress: called after every frame (hosts update their progress bar;
            an exception raised here stops the run, e.g. ComfyUI's interrupt).
        should_cancel: polled before every frame; ``True`` stops the run cleanly.

    Raises:
        VfxMatteError: bad input or config, or a failing frame with ``on_error=stop``.
    """
    start = time.perf_counter()
    if config.propagate.backend == "sam2":
        config = _propagate_first(config)
    run = _Run(config, on_progress, should_cancel)
    key = next(iter(run.key_masks))
    bar = _progress_bar(config, len(run.frames))
    try:
        with run.interrupt.installed():
            for i, numbers in enumerate(plan_passes(run.frames, key)):
                if not run.run_pass(numbers, bar, anchor_only_first=i > 0):
                    run.report.cancelled = True
                    break
    finally:
        if bar is not None:
            bar.close()
    run.report.seconds = time.perf_counter() - start
    run.report.timings = dict(run.stages.timer.seconds)
    run.report.written.sort()
    run.report.reused.sort()
    return run.report
