"""Panoptic matting: label maps in, a soft layer per segment out, and its EXR with Cryptomatte."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.io.sequence import FramePattern
from vfxmatte.panoptic.labels import (
    read_coco_segments_info,
    read_label_map,
    segments_from_label_map,
)
from vfxmatte.panoptic.matte import PanopticConfig, PanopticResult, matte_segments, preview
from vfxmatte.panoptic.run import write_panoptic

from . import host
from .common import LABELS, PANOPTIC, ConfigNode, colour_inputs, from_linear, image_colour
from .tensors import image_to_numpy, numpy_to_image, numpy_to_mask
from .widgets import Widget, build_config, config_widgets, input_fingerprint, widget_values

__all__ = ["LabelMap", "PanopticFrame", "PanopticMatte", "ReadLabelMap", "WritePanoptic"]

#: PanopticConfig options that only matter when writing the EXR.
_WRITE_OPTIONS = ("ranks", "layer_rgb")


@dataclass(frozen=True, repr=False)
class LabelMap:
    """A panoptic label map: ``ids`` ``H x W`` int64, optional ``{id: name}``."""

    ids: np.ndarray
    names: Mapping[int, str] | None
    source: str

    def __str__(self) -> str:
        return f"label map {self.source} ({self.ids.shape[1]}x{self.ids.shape[0]})"

    __repr__ = __str__


class ReadLabelMap(ConfigNode):
    """A panoptic label map (integer ids per pixel) for Panoptic Matte."""

    RETURN_TYPES = (LABELS,)
    RETURN_NAMES = ("labels",)
    FUNCTION = "read"
    CATEGORY = "vfxmatte/io"
    DESCRIPTION = (
        "Read a label map: 8/16-bit PNG ids, a COCO panoptic RGB PNG, or an EXR of integer "
        "values. An optional COCO panoptic JSON names the segments."
    )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {
            "path": (
                "STRING",
                {
                    "default": "vfxmatte_demo/gt/labels.1001.png",
                    "tooltip": "Label map file; relative paths are in ComfyUI's input folder.",
                },
            )
        }

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {
            "segments_info": (
                "STRING",
                {"default": "", "tooltip": "COCO panoptic JSON naming the segments (optional)."},
            )
        }

    @classmethod
    def IS_CHANGED(cls, path: str = "", segments_info: str = "", **values: Any) -> str:  # noqa: N802
        return input_fingerprint(lambda: cls._files(path, segments_info))

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        cls._files(values.get("path") or "", values.get("segments_info") or "")

    @staticmethod
    def _files(path: str, segments_info: str) -> list[str]:
        return [host.input_path(p) for p in (path, segments_info) if p.strip()]

    def read(self, path: str, segments_info: str = "") -> tuple[LabelMap]:
        source = host.input_path(path)
        ids = read_label_map(source)
        names = None
        if segments_info.strip():
            names = read_coco_segments_info(
                host.input_path(segments_info), os.path.basename(source)
            )
        return (LabelMap(ids, names, source),)


@dataclass(frozen=True, repr=False)
class PanopticFrame:
    """One frame's layers with the scene-linear plate they were pulled from."""

    result: PanopticResult
    linear: np.ndarray
    config: PanopticConfig

    def __str__(self) -> str:
        return f"panoptic layers ({', '.join(self.result.names)})"

    __repr__ = __str__


class PanopticMatte(ConfigNode):
    """IMAGE + label map -> a soft layer MASK per segment (a partition of unity) + preview."""

    CONFIG_CLASS = PanopticConfig
    RETURN_TYPES = ("MASK", "IMAGE", "IMAGE", "STRING", PANOPTIC)
    RETURN_NAMES = ("layers", "foregrounds", "preview", "names", "panoptic")
    FUNCTION = "matte"
    CATEGORY = "vfxmatte/panoptic"
    DESCRIPTION = (
        "Matte every segment of a panoptic label map with its own mask and compose the soft "
        "alphas into layers that sum to 1 at every pixel (one MASK per segment, in label-id "
        "order), each with its straight foreground colour. names lists the segments, one per "
        "line; preview shows the layers in their colours."
    )

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(PanopticConfig, exclude=_WRITE_OPTIONS)

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {"image": ("IMAGE", {}), "labels": (LABELS, {})}

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {
            "index": (
                "INT",
                {"default": 0, "min": 0, "max": 100000, "tooltip": "Batch index of the frame."},
            ),
            **colour_inputs(),
        }

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        image_colour(values.get("image_colourspace") or "sRGB", values.get("ocio") or "")

    def matte(
        self,
        image: Any,
        labels: LabelMap,
        index: int = 0,
        image_colourspace: str = "sRGB",
        ocio: str = "",
        **values: Any,
    ) -> tuple[Any, ...]:
        frames = image_to_numpy(image)
        if not 0 <= index < len(frames):
            raise InputError(f"index {index} is outside the IMAGE batch of {len(frames)}.")
        pixels = frames[index]
        if labels.ids.shape != pixels.shape[:2]:
            raise InputError(
                f"The label map '{labels.source}' is {labels.ids.shape[1]}x{labels.ids.shape[0]} "
                f"but the image is {pixels.shape[1]}x{pixels.shape[0]}."
            )
        config = build_config(PanopticConfig, widget_values(self.widgets(), values))
        segments = segments_from_label_map(
            labels.ids,
            info=labels.names,
            min_area=config.min_area,
            max_segments=config.max_segments,
            over_limit=config.over_limit,
        )
        colour = image_colour(image_colourspace, ocio)
        linear = colour.linear_plate(pixels)
        result = matte_segments(colour.display(pixels), linear, segments, config)
        host.check_interrupt()
        fgs = [from_linear(fg, colour) for fg in result.fgs]
        return (
            numpy_to_mask(result.layers),
            numpy_to_image(fgs),
            numpy_to_image(preview(result).astype(np.float32) / 255.0),
            "\n".join(result.names),
            PanopticFrame(result, linear, config),
        )


class WritePanoptic(ConfigNode):
    """Panoptic layers to one EXR: ``<segment>.A`` layers, Cryptomatte, and a preview PNG."""

    CONFIG_CLASS = PanopticConfig
    RETURN_TYPES = ("STRING",)
    RETURN_NAMES = ("path",)
    FUNCTION = "write"
    CATEGORY = "vfxmatte/panoptic"
    OUTPUT_NODE = True
    DESCRIPTION = (
        "Write a frame's panoptic layers as the CLI does: the scene-linear plate as R,G,B, one "
        "<segment>.A layer per segment (and premultiplied <segment>.R/G/B), Cryptomatte "
        "channels for Nuke, and a preview PNG under preview/."
    )

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(PanopticConfig, sections=_WRITE_OPTIONS)

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {
            "panoptic": (PANOPTIC, {}),
            "output": (
                "STRING",
                {
                    "default": "vfxmatte/panoptic.####.exr",
                    "tooltip": "Output EXR, a frame token (####) or one file name.",
                },
            ),
        }

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {
            "frame": (
                "INT",
                {"default": 1001, "min": 0, "max": 10**7, "tooltip": "Frame number for ####."},
            )
        }

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        if values.get("output"):
            host.output_path(values["output"])

    def write(
        self, panoptic: PanopticFrame, output: str, frame: int = 1001, **values: Any
    ) -> dict[str, Any]:
        options = widget_values(self.widgets(), values)
        config = build_config(
            PanopticConfig, {**_asdict(panoptic.config, exclude=_WRITE_OPTIONS), **options}
        )
        path = FramePattern.parse(host.output_path(output)).path(frame)
        write_panoptic(path, panoptic.result, panoptic.linear, config)
        return {"ui": {"text": [f"wrote {os.path.basename(path)}"]}, "result": (path,)}


def _asdict(config: PanopticConfig, exclude: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in vars(config).items() if k not in exclude}
