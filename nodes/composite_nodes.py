"""Compositing helpers: premultiply a straight foreground, and put it over a background.

Both work in scene-linear light (``I = alpha F + (1 - alpha) B`` only holds there)
and return the IMAGE's own colourspace.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vfxmatte.engine.outputs import FrameResult, composite_preview
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.colour import from_display

from . import host
from .common import ConfigNode, colour_inputs, from_linear, image_colour
from .tensors import image_to_numpy, mask_to_numpy, numpy_to_image

__all__ = ["Composite", "Premultiply"]

BACKGROUNDS = ("checker", "colour", "image")


def _foreground_and_alpha(foreground: Any, alpha: Any) -> tuple[np.ndarray, np.ndarray]:
    fgs = image_to_numpy(foreground, what="foreground")
    alphas = mask_to_numpy(alpha, what="alpha")
    if len(alphas) not in (1, len(fgs)) or alphas.shape[1:] != fgs.shape[1:3]:
        raise InputError(
            f"The alpha is {len(alphas)} x {alphas.shape[2]}x{alphas.shape[1]} but the "
            f"foreground is {len(fgs)} x {fgs.shape[2]}x{fgs.shape[1]}; give one alpha per "
            "frame (or one for all) of the same size."
        )
    return fgs, np.clip(alphas, 0.0, 1.0)


class Premultiply(ConfigNode):
    """Straight foreground + alpha -> premultiplied colour, and a 4-channel straight RGBA."""

    RETURN_TYPES = ("IMAGE", "IMAGE")
    RETURN_NAMES = ("premultiplied", "rgba")
    FUNCTION = "premultiply"
    CATEGORY = "vfxmatte/composite"
    DESCRIPTION = (
        "premultiplied: alpha x foreground, computed in scene-linear light and returned in the "
        "image's colourspace (the foreground over black). rgba: the straight foreground with "
        "the alpha as a 4th channel, as PNG savers expect."
    )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {"foreground": ("IMAGE", {}), "alpha": ("MASK", {})}

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return colour_inputs()

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        image_colour(values.get("image_colourspace") or "sRGB", values.get("ocio") or "")

    def premultiply(
        self, foreground: Any, alpha: Any, image_colourspace: str = "sRGB", ocio: str = ""
    ) -> tuple[Any, Any]:
        fgs, alphas = _foreground_and_alpha(foreground, alpha)
        colour = image_colour(image_colourspace, ocio)
        premultiplied, rgba = [], []
        for i, fg in enumerate(fgs):
            a = alphas[min(i, len(alphas) - 1)][..., None]
            premultiplied.append(from_linear(colour.linear_plate(fg) * a, colour))
            rgba.append(np.concatenate([fg, a], axis=2))
        return numpy_to_image(premultiplied), numpy_to_image(rgba)


def _colour(text: str) -> np.ndarray:
    try:
        rgb = [float(v) for v in text.split(",")]
    except ValueError:
        rgb = []
    if len(rgb) != 3:
        raise ConfigError(f"The background colour must be three numbers 'r,g,b', got {text!r}.")
    return np.array(rgb, np.float32)


class Composite(ConfigNode):
    """Foreground over a background image, a checkerboard or a flat colour."""

    RETURN_TYPES = ("IMAGE",)
    RETURN_NAMES = ("image",)
    FUNCTION = "composite"
    CATEGORY = "vfxmatte/composite"
    DESCRIPTION = (
        "alpha F + (1 - alpha) B in scene-linear light. B is the background IMAGE, or the "
        "checkerboard / flat scene-linear colour of the engine's PNG previews."
    )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {"foreground": ("IMAGE", {}), "alpha": ("MASK", {})}

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {
            "background": ("IMAGE", {}),
            "mode": (
                list(BACKGROUNDS),
                {"default": "checker", "tooltip": "What the foreground goes over."},
            ),
            "colour": (
                "STRING",
                {"default": "0.1,0.1,0.1", "tooltip": "Scene-linear r,g,b of the flat colour."},
            ),
            **colour_inputs(),
        }

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        image_colour(values.get("image_colourspace") or "sRGB", values.get("ocio") or "")
        if values.get("colour"):
            _colour(values["colour"])

    def composite(
        self,
        foreground: Any,
        alpha: Any,
        background: Any = None,
        mode: str = "checker",
        colour: str = "0.1,0.1,0.1",
        image_colourspace: str = "sRGB",
        ocio: str = "",
    ) -> tuple[Any]:
        fgs, alphas = _foreground_and_alpha(foreground, alpha)
        space = image_colour(image_colourspace, ocio)
        if mode == "image":
            if background is None:
                raise InputError("Mode 'image' needs a background IMAGE connected.")
            backgrounds = image_to_numpy(background, what="background")
            if len(backgrounds) not in (1, len(fgs)) or backgrounds.shape[1:] != fgs.shape[1:]:
                raise InputError(
                    f"The background is {len(backgrounds)} x {backgrounds.shape[2]}x"
                    f"{backgrounds.shape[1]}; it must match the foreground's size."
                )
        elif mode in BACKGROUNDS:
            _colour(colour)
        else:
            raise ConfigError(f"Unknown mode '{mode}'; valid: {', '.join(BACKGROUNDS)}.")
        out = []
        progress = host.Progress(len(fgs))
        for i, fg in enumerate(fgs):
            a = alphas[min(i, len(alphas) - 1)]
            linear = space.linear_plate(fg)
            if mode == "image":
                bg = space.linear_plate(backgrounds[min(i, len(backgrounds) - 1)])
                comp = from_linear(linear * a[..., None] + bg * (1.0 - a[..., None]), space)
            else:
                result = FrameResult(i, a, linear, np.ones_like(a), {})
                srgb = composite_preview(result, mode, colour).astype(np.float32) / 255.0
                comp = from_linear(from_display(srgb, space.linear, ocio_config=space.ocio), space)
            out.append(comp)
            progress.step()
        return (numpy_to_image(out),)
