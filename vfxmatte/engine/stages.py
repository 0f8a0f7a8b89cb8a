"""The per-frame stages, built once from the config and applied to one frame at a time.

:class:`Stages` is what a worker holds: the matte, refine and decontaminate
backends plus the colour conversion at the stage boundary. :meth:`Stages.process`
is a pure function of one frame and its guidance, so the local loop and a
distributed executor give the same numbers.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfxmatte.decontaminate import DECONTAMINATE_BACKENDS
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.outputs import FrameResult
from vfxmatte.engine.timing import StageTimer
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.colour import convert_colourspace, is_linear, resolve_colourspace, to_display
from vfxmatte.io.frame import Frame
from vfxmatte.io.plate import Plate, open_plate
from vfxmatte.matte import MATTE_BACKENDS
from vfxmatte.propagate import PROPAGATE_BACKENDS
from vfxmatte.refine import REFINE_BACKENDS

__all__ = [
    "MIN_PLATE_SIDE",
    "ColourContext",
    "Stages",
    "check_plate",
    "check_plate_size",
    "make_propagator",
    "open_shot_plate",
    "refine_alpha",
]

LINEAR_EXTENSIONS = (".exr", ".hdr", ".pfm", ".sxr")
WORKING_LINEAR = "lin_rec709"


#: Smallest plate side, in pixels, of the propagation backends that have one. DIS
#: optical flow (OpenCV) refuses images under 12 px; every other propagation backend
#: (static, given, sam2) and every matte, refine and decontaminate backend runs from 1x1.
MIN_PLATE_SIDE = {"flow": 12, "snapcut": 12}


def open_shot_plate(config: PipelineConfig, frames: Sequence[int] | None = None) -> Plate:
    """The plate of ``config`` read with its input options.

    ``frames``: the frame numbers to open (default: ``config.frames``, else all).

    Raises:
        InputError: as :func:`~vfxmatte.io.plate.open_plate`, and a plate smaller than
            the propagation backend takes (:data:`MIN_PLATE_SIDE`).
    """
    plate = open_plate(
        config.plate,
        list(frames) if frames is not None else (config.frames or None),
        channels=config.input.channels,
        nonfinite=config.input.nonfinite,
        first_frame=config.input.first_frame,
    )
    check_plate(config, plate)
    return plate


def check_plate(config: PipelineConfig, plate: Plate) -> None:
    """Refuse a plate the stages cannot take, from the first frame's header only
    (``plate.info``): fewer than 3 colour channels, or a size under
    :data:`MIN_PLATE_SIDE` of ``config``'s propagation backend.
    """
    info = plate.info
    if len(info.channels) < 3:
        raise InputError(
            f"The plate '{config.plate}' is read as {len(info.channels)} channel(s) "
            f"({', '.join(info.channels)}); vfxmatte mattes colour plates: name three "
            "channels with --channels (e.g. --channels Y,Y,Y for a grey plate)."
        )
    check_plate_size(config.plate, info.width, info.height, config.propagate.backend)


_INSTEAD = (
    "--propagate.backend static (the keyframe mask on every frame), given or sam2, which "
    "take any size"
)


def check_plate_size(
    plate: str, width: int, height: int, backend: str, instead: str = _INSTEAD
) -> None:
    """Refuse a ``width x height`` plate under :data:`MIN_PLATE_SIDE` of ``backend``;
    ``instead`` names the options that work (the CLI's spelling)."""
    need = MIN_PLATE_SIDE.get(backend)
    if need is not None and min(width, height) < need:
        name = f"The plate '{plate}'" if plate else "The plate"  # a host's images have no path
        raise InputError(
            f"{name} is {width}x{height} pixels; propagate.backend={backend} needs at least "
            f"{need}x{need}. Use {instead}, or a larger plate."
        )


@dataclass(frozen=True)
class ColourContext:
    """The plate's colourspace and the linear space the outputs are written in."""

    plate: str
    linear: str
    ocio: str | None

    @classmethod
    def for_plate(cls, config: PipelineConfig, first: Frame) -> ColourContext:
        return cls.resolve(config.input.colourspace, first, config.input.ocio or None)

    @classmethod
    def resolve(cls, name: str, first: Frame, ocio: str | None = None) -> ColourContext:
        """``name`` may be ``auto``: the file's colourspace tag, else a guess from its type."""
        if name == "auto":
            tagged = first.metadata.get("oiio:ColorSpace")
            extension = os.path.splitext(first.path or "")[1].lower()
            name = WORKING_LINEAR if extension in LINEAR_EXTENSIONS else "sRGB"
            if isinstance(tagged, str) and tagged:
                try:
                    name = resolve_colourspace(tagged, ocio)
                except ConfigError:
                    pass  # an unknown tag: keep the guess from the file type
        plate = resolve_colourspace(name, ocio)
        linear = plate if is_linear(plate, ocio) else resolve_colourspace(WORKING_LINEAR, ocio)
        return cls(plate, linear, ocio)

    def display(self, pixels: np.ndarray) -> np.ndarray:
        """Plate -> display-referred sRGB in [0,1], what models and solvers see."""
        return to_display(pixels, self.plate, clip=True, ocio_config=self.ocio)

    def linear_plate(self, pixels: np.ndarray) -> np.ndarray:
        """Plate -> scene-linear (values above 1.0 kept), the colour written out."""
        if self.plate == self.linear:
            return pixels
        return convert_colourspace(pixels, self.plate, self.linear, ocio_config=self.ocio)


def _bind(registry: Any, name: str, section: Any) -> Callable[..., Any]:
    """The backend ``name`` ready to call: a class is built once, a function gets its config.

    ``section`` is the stage's config section; the backend's own options are its
    field named like the backend (``matte.classical``, ``matte.network``...).
    """
    impl = registry.load(name)
    options = getattr(section, name, None)
    if isinstance(impl, type):
        return impl(options)
    return functools.partial(impl, config=options)


def refine_alpha(
    refine: Callable[..., np.ndarray],
    display: np.ndarray,
    alpha: np.ndarray,
    confidence: np.ndarray,
    features: Any = None,
) -> np.ndarray:
    """``refine``'s alpha; the matting network's decoder ``features`` go only to a
    refiner that reads them (a ``feature_channels`` attribute above 0)."""
    wanted = features if getattr(refine, "feature_channels", 0) else None
    return refine(display, alpha, confidence, features=wanted)


class Stages:
    """Matte -> refine -> decontaminate for one frame, built once per run.

    Backends that load weights are built here, once. Call :meth:`reset_sequence` where
    frames stop being consecutive (a new pass or chunk): the refiner's temporal
    reuse compares each frame with the previous one.
    """

    def __init__(self, config: PipelineConfig, colour: ColourContext) -> None:
        self.config = config
        self.colour = colour
        self._matte = _bind(MATTE_BACKENDS, config.matte.backend, config.matte)
        self._refine = (
            None
            if config.refine.backend == "none"
            else _bind(REFINE_BACKENDS, config.refine.backend, config.refine)
        )
        reads = int(getattr(self._refine, "feature_channels", 0))
        if reads and not hasattr(self._matte, "matte"):
            raise ConfigError(
                f"The refinement network reads {reads} decoder feature channels, "
                f"which matte.backend={config.matte.backend} does not produce; use "
                "matte.backend=network or a refinement network without features."
            )
        self._decontaminate = _bind(
            DECONTAMINATE_BACKENDS, config.decontaminate.backend, config.decontaminate
        )
        self.timer = StageTimer()

    def process(self, frame: Frame, guidance: np.ndarray, display: np.ndarray) -> FrameResult:
        """Alpha, straight foreground and confidence of one frame.

        Args:
            frame: the plate frame (pixels in the plate's colourspace).
            guidance: ``H x W`` float32 in [0,1].
            display: ``frame`` converted by :meth:`ColourContext.display`.
        """
        features = None
        with self.timer.stage("matte"):
            if hasattr(self._matte, "matte"):  # learned backends also give decoder features
                result = self._matte.matte(display, guidance)
                alpha, confidence, features = result.alpha, result.confidence, result.features
            else:
                alpha, confidence = self._matte(display, guidance)
        if self._refine is not None:
            with self.timer.stage("refine"):
                alpha = refine_alpha(self._refine, display, alpha, confidence, features)
        with self.timer.stage("decontaminate"):
            linear = self.colour.linear_plate(frame.pixels[..., :3])
            fg = self._decontaminate(linear, alpha)
        metadata = dict(frame.metadata)
        metadata["oiio:ColorSpace"] = self.colour.linear
        return FrameResult(frame.number, alpha, fg, confidence, metadata)

    def reset_sequence(self) -> None:
        """Forget per-sequence state (the refiner's previous frame): frames stop being
        consecutive (a new pass or chunk)."""
        if self._refine is not None and hasattr(self._refine, "reset"):
            self._refine.reset()
        if hasattr(self._matte, "reset"):  # the classical matte's temporal prior
            self._matte.reset()


def make_propagator(
    config: PipelineConfig,
    frames: list[int],
    keys: Mapping[int, np.ndarray] | None = None,
    read: Callable[[int], np.ndarray] | None = None,
) -> Any:
    """A fresh propagator of the configured backend (one per pass).

    ``keys`` (frame number -> keyframe mask) and ``read`` (frame number ->
    display-referred frame) let ``snapcut`` run back from the next keyframe and
    blend (``propagate.snapcut.blend_keys``); ``read`` must be safe to call
    while the driver's own reader runs.
    """
    backend = config.propagate.backend
    cls = PROPAGATE_BACKENDS.load(backend)
    if backend == "snapcut" and keys is not None and read is not None:
        from vfxmatte.propagate.snapcut import KeyLookAhead

        return cls(config.propagate.snapcut, KeyLookAhead(frames, keys, read))
    if backend in ("flow", "snapcut"):
        return cls(getattr(config.propagate, backend))
    if backend == "given":
        return cls(
            config.mask,
            frames,
            channel=config.input.mask_channel,
            resize=config.input.mask_resize,
            nonfinite=config.input.nonfinite,
        )
    return cls()
