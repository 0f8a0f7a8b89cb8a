"""The per-frame stages on IMAGE batches: Matte (all of them), Refine, Decontaminate.

Matte runs :class:`vfxmatte.engine.stages.Stages` on every frame, as the engine
does: matte -> refine -> decontaminate, with the colour conversion at the stage
boundary (display-referred for the matte, scene-linear for the colour). Refine
and Decontaminate run one stage each, for graph builders. Connected loaders
set the backends (see :mod:`.models`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from vfxmatte.decontaminate import DECONTAMINATE_BACKENDS
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.stages import Stages
from vfxmatte.errors import InputError
from vfxmatte.io.frame import Frame
from vfxmatte.refine import REFINE_BACKENDS

from . import host
from .common import (
    COLOUR_MODEL,
    MATTE_MODEL,
    REFINE_MODEL,
    ConfigNode,
    build_host_config,
    colour_inputs,
    from_linear,
    image_colour,
    model_overrides,
)
from .propagate_nodes import mask_inputs
from .tensors import fit_mask, image_to_numpy, mask_to_numpy, numpy_to_image, numpy_to_mask
from .widgets import Widget, config_widgets, widget_values

__all__ = ["Decontaminate", "Matte", "Refine", "bind_backend"]


def _per_frame(masks: np.ndarray, count: int, what: str) -> np.ndarray:
    """A mask batch for ``count`` frames: one per frame, or one for all."""
    if len(masks) not in (1, count):
        raise InputError(
            f"The {what} has {len(masks)} mask(s) for {count} frame(s); give one per frame or "
            "one for all."
        )
    return masks


def _check_size(masks: np.ndarray, frames: np.ndarray, what: str) -> None:
    if masks.shape[1:] != frames.shape[1:3]:
        raise InputError(
            f"The {what} is {masks.shape[2]}x{masks.shape[1]} but the images are "
            f"{frames.shape[2]}x{frames.shape[1]}."
        )


def bind_backend(registry: Any, name: str, section: Any) -> Callable[..., Any]:
    """The stage backend ``name`` ready to call, as the engine binds it.

    A class is built once with its options (the stage section's field named like
    the backend, e.g. ``refine.sparse``); a function gets them as ``config``.

    Raises:
        ConfigError / BackendUnavailableError: unknown backend, or a missing dependency.
    """
    impl = registry.load(name)
    options = getattr(section, name, None)
    if isinstance(impl, type):
        return impl(options)
    return functools.partial(impl, config=options)


class _StageNode(ConfigNode):
    """Shared inputs of the in-memory stage nodes."""

    SECTIONS: tuple[str, ...] = ()
    MODELS: dict[str, str] = {}

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(PipelineConfig, sections=cls.SECTIONS)

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {**colour_inputs(), **{name: (kind, {}) for name, kind in cls.MODELS.items()}}

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        image_colour(values.get("image_colourspace") or "sRGB", values.get("ocio") or "")

    def config(self, values: Mapping[str, Any]) -> PipelineConfig:
        """The node's config: its widgets, then the connected models' options."""
        models = {name: values.get(name) for name in self.MODELS}
        flat = {**widget_values(self.widgets(), values), **model_overrides(models)}
        return build_host_config(PipelineConfig, flat)


class Matte(_StageNode):
    """IMAGE + guidance MASK -> alpha, straight foreground and confidence, frame by frame."""

    RETURN_TYPES = ("MASK", "IMAGE", "MASK")
    RETURN_NAMES = ("alpha", "foreground", "confidence")
    FUNCTION = "matte"
    CATEGORY = "vfxmatte/matte"
    DESCRIPTION = (
        "Pull a soft matte from each image and its guidance mask (one per frame or one for "
        "all), refine it and estimate the straight (unpremultiplied) foreground colour, as the "
        "engine does per frame. The foreground is returned in the image's colourspace."
    )
    SECTIONS = ("matte", "refine", "decontaminate")
    MODELS = {
        "matte_model": MATTE_MODEL,
        "refine_model": REFINE_MODEL,
        "colour_model": COLOUR_MODEL,
    }

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {"images": ("IMAGE", {}), "guidance": ("MASK", {})}

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {**mask_inputs(), **super().optional_inputs()}

    def matte(
        self,
        images: Any,
        guidance: Any,
        mask_mode: str = "auto",
        mask_resize: bool = False,
        image_colourspace: str = "sRGB",
        ocio: str = "",
        **values: Any,
    ) -> tuple[Any, Any, Any]:
        host.warm_up_kernels()
        frames = image_to_numpy(images, what="images")
        guides = _per_frame(mask_to_numpy(guidance, what="guidance"), len(frames), "guidance")
        shape = frames.shape[1:3]
        fitted = [
            fit_mask(g, shape, mode=mask_mode, resize=mask_resize, what="guidance") for g in guides
        ]
        colour = image_colour(image_colourspace, ocio)
        stages = Stages(self.config(values), colour)
        alphas, fgs, confidences = [], [], []
        progress = host.Progress(len(frames))
        for i, pixels in enumerate(frames):
            display = colour.display(pixels)
            frame = Frame(i, pixels, ("R", "G", "B"))
            result = stages.process(frame, fitted[min(i, len(fitted) - 1)], display)
            alphas.append(result.alpha)
            fgs.append(from_linear(result.fg, colour))
            confidences.append(result.confidence)
            progress.step()
            host.check_interrupt()
        return numpy_to_mask(alphas), numpy_to_image(fgs), numpy_to_mask(confidences)


class Refine(_StageNode):
    """Sparse full-resolution refinement of a matte where its confidence is low."""

    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("alpha",)
    FUNCTION = "refine"
    CATEGORY = "vfxmatte/refine"
    DESCRIPTION = (
        "Refine an alpha at the image's full resolution where its confidence is low (sparse "
        "refinement); connect a refiner from 'Load Refine Model'. Alpha and confidence may be "
        "at a smaller working resolution. The 'none' backend only upsamples the alpha."
    )
    SECTIONS = ("refine",)
    MODELS = {"refine_model": REFINE_MODEL}

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {"images": ("IMAGE", {}), "alpha": ("MASK", {}), "confidence": ("MASK", {})}

    def refine(
        self,
        images: Any,
        alpha: Any,
        confidence: Any,
        image_colourspace: str = "sRGB",
        ocio: str = "",
        **values: Any,
    ) -> tuple[Any]:
        host.warm_up_kernels()
        frames = image_to_numpy(images, what="images")
        alphas = _per_frame(mask_to_numpy(alpha, what="alpha"), len(frames), "alpha")
        confidences = mask_to_numpy(confidence, what="confidence")
        confidences = _per_frame(confidences, len(frames), "confidence")
        config = self.config(values)
        refiner = bind_backend(REFINE_BACKENDS, config.refine.backend, config.refine)
        colour = image_colour(image_colourspace, ocio)
        out = []
        progress = host.Progress(len(frames))
        for i, pixels in enumerate(frames):
            a = alphas[min(i, len(alphas) - 1)]
            c = confidences[min(i, len(confidences) - 1)]
            out.append(refiner(colour.display(pixels), a, c))
            progress.step()
            host.check_interrupt()
        return (numpy_to_mask(out),)


class Decontaminate(_StageNode):
    """Straight foreground colour without background spill, from an image and its alpha."""

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("foreground",)
    FUNCTION = "decontaminate"
    CATEGORY = "vfxmatte/decontaminate"
    DESCRIPTION = (
        "Estimate the straight foreground colour F so that image = alpha F + (1 - alpha) B, "
        "without the background's spill at the edges. Computed in scene-linear colour; "
        "returned in the image's colourspace."
    )
    SECTIONS = ("decontaminate",)
    MODELS = {"colour_model": COLOUR_MODEL}

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {"images": ("IMAGE", {}), "alpha": ("MASK", {})}

    def decontaminate(
        self,
        images: Any,
        alpha: Any,
        image_colourspace: str = "sRGB",
        ocio: str = "",
        **values: Any,
    ) -> tuple[Any]:
        frames = image_to_numpy(images, what="images")
        alphas = _per_frame(mask_to_numpy(alpha, what="alpha"), len(frames), "alpha")
        _check_size(alphas, frames, "alpha")
        config = self.config(values)
        estimate = bind_backend(
            DECONTAMINATE_BACKENDS, config.decontaminate.backend, config.decontaminate
        )
        colour = image_colour(image_colourspace, ocio)
        fgs = []
        progress = host.Progress(len(frames))
        for i, pixels in enumerate(frames):
            linear = colour.linear_plate(pixels)
            fg = estimate(linear, np.clip(alphas[min(i, len(alphas) - 1)], 0.0, 1.0))
            fgs.append(from_linear(fg, colour))
            progress.step()
            host.check_interrupt()
        return (numpy_to_image(fgs),)
