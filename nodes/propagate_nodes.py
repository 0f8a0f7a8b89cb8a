"""Propagate Mask: keyframe masks of several objects through an IMAGE batch."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.guidance import propagate_objects
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.sequence import parse_frame_range

from . import host
from .common import (
    SAM2,
    ArrayPlate,
    ConfigNode,
    build_host_config,
    colour_inputs,
    image_colour,
    model_overrides,
)
from .tensors import MASK_MODES, fit_mask, image_to_numpy, mask_to_numpy, numpy_to_mask
from .widgets import Widget, config_widgets, widget_values

__all__ = ["PropagateMask", "collect_keyframes", "mask_inputs"]


def mask_inputs() -> dict[str, Any]:
    """The widgets that say how a MASK input is read (see :func:`.tensors.fit_mask`)."""
    return {
        "mask_mode": (
            list(MASK_MODES),
            {
                "default": "auto",
                "tooltip": "as is: the MASK is 1 on the object. invert: it is Load Image's "
                "1 - alpha of a cut-out. auto: invert only a mask that covers the whole frame "
                "border (and more than half the frame).",
            },
        ),
        "mask_resize": (
            "BOOLEAN",
            {"default": False, "tooltip": "Resize masks whose size differs from the frames'."},
        ),
    }


def collect_keyframes(
    masks: np.ndarray,
    shape: tuple[int, int],
    key: int,
    *,
    extra: np.ndarray | None = None,
    extra_keys: str = "",
    mode: str = "auto",
    resize: bool = False,
) -> dict[int, dict[int, np.ndarray]]:
    """``{frame: {object id: mask}}`` from the MASK inputs of a propagate node.

    Args:
        masks: ``K x H x W``, one mask per object (ids 1..K) on frame ``key``.
        extra: more keyframes, ``len(extra_keys) * K`` masks, frame after frame,
            objects in the same order on each (an empty mask: object out of view).
        extra_keys: the frames of ``extra``, e.g. ``"10,20"``.

    Raises:
        InputError: a count that does not fit, or a mask that does not fit the frames.
    """
    count = len(masks)
    keys: dict[int, dict[int, np.ndarray]] = {
        key: {
            obj + 1: fit_mask(m, shape, mode=mode, resize=resize, what=f"mask of object {obj + 1}")
            for obj, m in enumerate(masks)
        }
    }
    numbers = parse_frame_range(extra_keys) if extra_keys.strip() else []
    extra = np.zeros((0, *shape), np.float32) if extra is None else extra
    if len(extra) != len(numbers) * count:
        raise InputError(
            f"keyframe_masks holds {len(extra)} mask(s) but keyframe_indices names {len(numbers)} "
            f"frame(s) for {count} object(s): give {len(numbers) * count} masks, frame after "
            "frame, the objects in the same order as 'masks'."
        )
    for i, number in enumerate(numbers):
        keys.setdefault(number, {})
        for obj in range(count):
            what = f"keyframe mask of object {obj + 1} on frame {number}"
            keys[number][obj + 1] = fit_mask(
                extra[i * count + obj], shape, mode=mode, resize=resize, what=what
            )
    return keys


class PropagateMask(ConfigNode):
    """Keyframe masks of several objects -> one MASK batch per object (flow, snapcut or SAM 2)."""

    RETURN_TYPES = ("MASK", "MASK")
    RETURN_NAMES = ("object_masks", "union")
    OUTPUT_IS_LIST = (True, False)
    FUNCTION = "propagate"
    CATEGORY = "vfxmatte/propagate"
    DESCRIPTION = (
        "Carry the objects' masks on one frame of an IMAGE batch (masks: one per object) "
        "through every frame, forward and backward; more keyframes re-anchor it. "
        "object_masks is a list with one MASK batch per object (nodes after it run once per "
        "object); union is their maximum. Connecting a SAM 2 model selects the sam2 backend."
    )

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(
            PipelineConfig,
            sections=("propagate",),
            exclude=("propagate.sam2",),
            choices={"propagate.backend": ("flow", "snapcut", "sam2")},
        )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {"images": ("IMAGE", {}), "masks": ("MASK", {})}

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {
            "key_index": (
                "INT",
                {"default": 0, "min": 0, "max": 100000, "tooltip": "Batch index of 'masks'."},
            ),
            "keyframe_masks": ("MASK", {}),
            "keyframe_indices": (
                "STRING",
                {
                    "default": "",
                    "tooltip": "Batch indices of keyframe_masks, e.g. 10,20 (one mask per "
                    "object and index, index after index).",
                },
            ),
            **mask_inputs(),
            **colour_inputs(),
            "sam2": (SAM2, {}),
        }

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        if values.get("keyframe_indices"):
            parse_frame_range(values["keyframe_indices"])
        image_colour(values.get("image_colourspace") or "sRGB", values.get("ocio") or "")

    def propagate(
        self,
        images: Any,
        masks: Any,
        key_index: int = 0,
        keyframe_masks: Any = None,
        keyframe_indices: str = "",
        mask_mode: str = "auto",
        mask_resize: bool = False,
        image_colourspace: str = "sRGB",
        ocio: str = "",
        sam2: Any = None,
        **values: Any,
    ) -> tuple[list[Any], Any]:
        frames = image_to_numpy(images, what="images")
        count, height, width = len(frames), frames.shape[1], frames.shape[2]
        if not 0 <= key_index < count:
            raise ConfigError(f"key_index {key_index} is outside the batch of {count} frame(s).")
        objects = mask_to_numpy(masks, what="masks")
        extra = None if keyframe_masks is None else mask_to_numpy(keyframe_masks)
        keys = collect_keyframes(
            objects,
            (height, width),
            key_index,
            extra=extra,
            extra_keys=keyframe_indices,
            mode=mask_mode,
            resize=mask_resize,
        )
        for number in keys:
            if not 0 <= number < count:
                raise ConfigError(f"Keyframe index {number} is outside the batch of {count}.")
        flat = {**widget_values(self.widgets(), values), **model_overrides({"sam2": sam2})}
        config = build_host_config(PipelineConfig, flat)
        colour = image_colour(image_colourspace, ocio)
        out = np.zeros((len(objects), count, height, width), np.float32)
        progress = host.Progress(count)
        for number, found in propagate_objects(config, ArrayPlate(frames), colour, keys):
            for obj, mask in found.items():
                out[obj - 1, number] = mask
            progress.step()
            host.check_interrupt()
        return [numpy_to_mask(m) for m in out], numpy_to_mask(out.max(axis=0))
