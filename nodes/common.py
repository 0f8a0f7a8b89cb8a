"""What every vfxmatte node shares: widgets from the config, validation, handles between nodes."""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from vfxmatte.config import validate_value
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.stages import ColourContext
from vfxmatte.errors import VfxMatteError
from vfxmatte.io.colour import convert_colourspace, is_linear
from vfxmatte.io.frame import Frame
from vfxmatte.io.plate import Plate, open_plate
from vfxmatte.io.sequence import compress_frames

from . import folders, host
from .widgets import (
    Widget,
    build_config,
    entry_spec,
    input_entry,
    widget_values,
)
from .wording import widget_words

__all__ = [
    "MODEL_INPUTS",
    "ArrayPlate",
    "ConfigNode",
    "LoadedModel",
    "PlateRef",
    "build_host_config",
    "colour_inputs",
    "device_keys",
    "from_linear",
    "image_colour",
    "model_overrides",
    "section_values",
]

#: Custom ComfyUI types passed between vfxmatte nodes.
PLATE = "VFXMATTE_PLATE"
SAM2 = "VFXMATTE_SAM2"
MATTE_MODEL = "VFXMATTE_MATTE_MODEL"
REFINE_MODEL = "VFXMATTE_REFINE_MODEL"
COLOUR_MODEL = "VFXMATTE_COLOUR_MODEL"
LABELS = "VFXMATTE_LABELS"
PANOPTIC = "VFXMATTE_PANOPTIC"

#: Optional model inputs of the stage nodes: input name -> ComfyUI type.
MODEL_INPUTS = {
    "sam2": SAM2,
    "matte_model": MATTE_MODEL,
    "refine_model": REFINE_MODEL,
    "colour_model": COLOUR_MODEL,
}


@dataclass(frozen=True)
class LoadedModel:
    """What a loader node outputs: the options that select a model, and its file.

    Attributes:
        kind: ``sam2``, ``matte``, ``refine`` or ``colour``.
        path: the resolved weights file, or None (SAM 2 with random weights).
        overrides: dotted :class:`PipelineConfig` keys -> values, applied by the
            stage nodes to their config (e.g. ``{"matte.backend": "network",
            "matte.network.weights": "/models/vfxmatte/matte/m.safetensors"}``).
    """

    kind: str
    path: str | None
    overrides: Mapping[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"vfxmatte {self.kind} model ({self.path or 'random weights'})"


@dataclass(frozen=True)
class PlateRef:
    """A plate on disk, passed between nodes instead of its pixels.

    Nothing but the first frame's header is read when the handle is made; the
    file-based nodes stream the frames through the engine.
    """

    source: str
    frames: tuple[int, ...]
    width: int
    height: int
    channels: str = "RGB"
    colourspace: str = "auto"
    ocio: str = ""
    nonfinite: str = "error"
    first_frame: int = 0

    def open(self, channels: str | None = None) -> Plate:
        """The plate reader (``channels`` overrides the handle's)."""
        return open_plate(
            self.source,
            list(self.frames),
            channels=channels or self.channels,
            nonfinite=self.nonfinite,
            first_frame=self.first_frame,
        )

    def overrides(self) -> dict[str, Any]:
        """The :class:`PipelineConfig` options this plate sets."""
        return {
            "plate": self.source,
            "frames": compress_frames(self.frames),
            "input.colourspace": self.colourspace,
            "input.ocio": self.ocio,
            "input.channels": self.channels,
            "input.nonfinite": self.nonfinite,
            "input.first_frame": self.first_frame,
        }

    def __str__(self) -> str:
        return f"{self.source} ({len(self.frames)} frames, {self.width}x{self.height})"


def model_overrides(models: Mapping[str, Any]) -> dict[str, Any]:
    """The options of the connected loaders (``None`` entries are unconnected inputs)."""
    out: dict[str, Any] = {}
    for model in models.values():
        if isinstance(model, LoadedModel):
            out.update(model.overrides)
    return out


class ArrayPlate(Plate):
    """An IMAGE batch as a :class:`~vfxmatte.io.plate.Plate`: frame ``i`` is batch item ``i``."""

    def __init__(self, frames: np.ndarray) -> None:
        self.source = "IMAGE input"
        self.frames = list(range(len(frames)))
        self._pixels = frames

    def read(self, number: int) -> Frame:
        self._check_number(number)
        return Frame(number, self._pixels[number], ("R", "G", "B"))


def colour_inputs() -> dict[str, Any]:
    """The widgets that say what colourspace an IMAGE holds."""
    return {
        "image_colourspace": (
            "STRING",
            {
                "default": "sRGB",
                "tooltip": "Colourspace of the IMAGE values: sRGB (ComfyUI's own images, in "
                "[0,1]), or a scene-linear OCIO name such as lin_rec709 or ACEScg (values "
                "above 1 kept).",
            },
        ),
        "ocio": (
            "STRING",
            {"default": "", "tooltip": "OCIO config file instead of the built-in one."},
        ),
    }


def image_colour(name: str = "sRGB", ocio: str = "") -> ColourContext:
    """The colour context of IMAGE values in colourspace ``name`` (``auto`` is sRGB).

    Raises:
        ConfigError: an unknown colourspace, listing the valid ones.
    """
    probe = Frame(0, np.zeros((1, 1, 3), np.float32), ("R", "G", "B"))
    return ColourContext.resolve(name or "sRGB", probe, host.ocio_path(ocio) or None)


def from_linear(pixels: np.ndarray, colour: ColourContext) -> np.ndarray:
    """Scene-linear colour (``colour.linear``) back to the IMAGE's colourspace.

    Display-referred results are clipped to [0, 1], ComfyUI's IMAGE range;
    linear ones keep values above 1.
    """
    if colour.plate == colour.linear:
        return pixels.astype(np.float32, copy=False)
    out = convert_colourspace(pixels, colour.linear, colour.plate, ocio_config=colour.ocio)
    if not is_linear(colour.plate, colour.ocio):
        out = np.clip(out, 0.0, 1.0)
    return out.astype(np.float32, copy=False)


def section_values(config: Any, key: str) -> dict[str, Any]:
    """``{dotted key: value}`` of every plain option of the section ``key`` of ``config``."""
    section = config
    for part in filter(None, key.split(".")):
        section = getattr(section, part)
    return {
        f"{key}.{f.name}": getattr(section, f.name)
        for f in dataclasses.fields(section)
        if not dataclasses.is_dataclass(getattr(section, f.name))
    }


def device_keys(config: Any, prefix: str = "") -> list[str]:
    """Dotted keys of every ``device`` option of a config instance."""
    keys = []
    for f in dataclasses.fields(config):
        value = getattr(config, f.name)
        if dataclasses.is_dataclass(value):
            keys += device_keys(value, f"{prefix}{f.name}.")
        elif f.name == "device":
            keys.append(prefix + f.name)
    return keys


def build_host_config(config_cls: type, flat: Mapping[str, Any]) -> Any:
    """``config_cls`` from dotted options, every ``auto`` device set to ComfyUI's device.

    Paths are resolved and, inside ComfyUI, confined to its folders (:mod:`.folders`).

    Raises:
        ConfigError: an unknown option or a bad value (the library's message).
        OutsideFoldersError: a path outside ComfyUI's folders, a scheduler not allowed.
    """
    flat = folders.confine_options(flat, host.model_folders)
    device = host.host_device()
    if device is not None:
        for key in device_keys(config_cls()):
            if flat.get(key, "auto") == "auto":
                flat[key] = device
    return build_config(config_cls, flat)


def _checked(method: Callable[..., Any]) -> Callable[..., Any]:
    """``method`` (a node's FUNCTION) that runs :meth:`ConfigNode.check` first.

    A refused value stops the node with one library error, before it reads or writes;
    every library error is reworded for ComfyUI (widgets, not flags).
    """

    @functools.wraps(method)
    def run(self: ConfigNode, *args: Any, **values: Any) -> Any:
        cls = type(self)
        own = {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES()["optional"]}
        widgets = {
            k: v for k, v in values.items() if k in own and entry_spec(k, own[k]) is not None
        }
        try:
            cls.check_or_raise(**widgets)
            return method(self, *args, **values)
        except VfxMatteError as exc:
            reworded = widget_words(str(exc), cls.widget_names())
            if reworded == str(exc):
                raise
            raise _same_kind(exc, reworded) from exc

    run._vfxmatte_checked = True  # type: ignore[attr-defined]
    return run


def _same_kind(exc: VfxMatteError, message: str) -> VfxMatteError:
    """An error of ``exc``'s class with another message (its own class when it can be built)."""
    try:
        return type(exc)(message)
    except TypeError:
        return VfxMatteError(message)


class ConfigNode:
    """Base of the nodes whose widgets are config fields.

    Subclasses give :meth:`widgets` (generated from the config), and the slot
    inputs and extra widgets of :meth:`required_inputs` / :meth:`optional_inputs`.
    Config widgets are optional inputs: a workflow saved before an option existed
    still runs, with the option's default.
    """

    CONFIG_CLASS: type = PipelineConfig
    #: Combos whose list is a suggestion (model files): any value goes to check_inputs.
    OPEN_CHOICES: tuple[str, ...] = ()

    @classmethod
    def widgets(cls) -> list[Widget]:
        return []

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {}

    @classmethod
    def INPUT_TYPES(cls) -> dict[str, dict[str, Any]]:  # noqa: N802 - ComfyUI's name
        optional = {w.name: input_entry(w) for w in cls.widgets()}
        optional.update(cls.optional_inputs())
        return {"required": cls.required_inputs(), "optional": optional}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Check the widgets when the node runs, before it reads or writes anything."""
        super().__init_subclass__(**kwargs)
        name = getattr(cls, "FUNCTION", None)
        method = cls.__dict__.get(name) if name else None
        if callable(method) and not getattr(method, "_vfxmatte_checked", False):
            setattr(cls, name, _checked(method))

    @classmethod
    def VALIDATE_INPUTS(cls, **values: Any) -> bool:  # noqa: N802 - ComfyUI's name
        """Always ``True``: the checks run when the node runs (:meth:`check`), once.

        With ``**values`` here ComfyUI leaves every check of the widget values to the
        node (so the library's message, with the closest valid choice, is the one
        shown, and model-file combos accept any file of their folder). ComfyUI 0.8
        repeats a failure of this method once per input of the node (about 90 copies
        on Matte Shot), so it does not fail here: the node's function runs
        :meth:`check` first and stops with one message, before it reads or writes.
        """
        return True

    @classmethod
    def widget_names(cls) -> list[tuple[str, str]]:
        """``(dotted key, widget name)`` of the config widgets (for :mod:`.wording`)."""
        return [(w.key, w.name) for w in cls.widgets()]

    @classmethod
    def check(cls, **values: Any) -> bool | str:
        """``True`` or the library's error text (in widget words) for these widget values."""
        try:
            cls.check_or_raise(**values)
        except VfxMatteError as exc:
            return widget_words(str(exc), cls.widget_names())
        return True

    @classmethod
    def check_or_raise(cls, **values: Any) -> None:
        """Raise the library's error for these widget values, if any.

        Runs the library's own checks (choices, ranges, cross-option checks) and
        refuses paths outside ComfyUI's folders (:mod:`.folders`).
        """
        flat = widget_values(cls.widgets(), values)
        if cls.CONFIG_CLASS is not None:
            build_config(cls.CONFIG_CLASS, flat)
        folders.confine_options(flat, host.model_folders)
        own = {**cls.required_inputs(), **cls.optional_inputs()}
        for name, entry in own.items():
            spec = entry_spec(name, entry)
            if spec is not None and values.get(name) is not None:
                if name in cls.OPEN_CHOICES:
                    spec = dataclasses.replace(spec, choices=None)
                validate_value(spec, values[name])
        cls.check_inputs(values)

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        """Checks beyond the config fields (files, patterns); raise a VfxMatteError."""
