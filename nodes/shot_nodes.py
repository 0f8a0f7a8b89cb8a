"""Matte Shot: the whole engine on a plate handle, streaming frames from files to files.

This is ``vfxmatte matte`` as a node: :func:`vfxmatte.engine.pipeline.run_pipeline`
reads one frame at a time, writes every output atomically and resumes (frames
already complete on disk are reused), so a 4K shot of any length never becomes
one tensor. ComfyUI's progress bar advances per frame and Cancel stops the run
within one frame (see :func:`.host.engine_callbacks`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.outputs import CHANNELS, OutputSet
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.errors import InputError, VfxMatteError
from vfxmatte.io.image import write_image
from vfxmatte.io.sequence import FramePattern, parse_frame_range
from vfxmatte.io.write_guard import PathSet, check_writes
from vfxmatte.propagate.drift import DriftReport

from . import folders, host
from .common import MODEL_INPUTS, PLATE, ConfigNode, PlateRef, build_host_config, model_overrides
from .propagate_nodes import mask_inputs
from .tensors import fit_mask, mask_to_numpy
from .widgets import Widget, config_widgets, input_entry, input_fingerprint, widget_values

__all__ = ["MatteShot"]

#: PipelineConfig options that the plate handle, the SAM 2 loader or ComfyUI set instead.
_NOT_WIDGETS = (
    "plate",
    "frames",
    "output",
    "input.colourspace",
    "input.ocio",
    "input.channels",
    "input.nonfinite",
    "input.first_frame",
    "propagate.sam2",
    "engine.progress",
)


def drift_text(drift: DriftReport) -> str:
    """The drift output: the summary line, then ``frame:confidence`` for every frame."""
    if not drift.samples:
        return ""
    frames = " ".join(f"{n}:{c:.2f}" for n, c in drift.confidence().items())
    return f"{drift.summary()}\n{frames}"


def _save_mask(folder: str, stem: str, number: int, mask: np.ndarray, plate: PlateRef) -> str:
    """Write a MASK input as a float EXR the engine reads; returns its path.

    The mask is in every channel (R, G, B and A), so the mask channel widget, which is
    meant for mask files, reads it whatever it names. Never over a plate frame (the
    engine then checks its outputs against this file). Removed after the run."""
    path = os.path.join(folder, "keyframes", f"{stem}_key.{number:04d}.exr")
    writes, reads = PathSet(), PathSet()
    writes.add(path, f"key mask of frame {number}")
    reads.add_on_disk(plate.source, "plate", plate.frames)
    check_writes(writes, reads)
    write_image(path, np.repeat(mask[..., None], 4, axis=-1), list("RGBA"), dtype="float")
    return path


def _remove_saved(saved: Mapping[str, str]) -> None:
    """Delete the saved MASK inputs, and their folder when nothing else is in it."""
    for path in saved:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
    for folder in {os.path.dirname(p) for p in saved}:
        try:
            os.rmdir(folder)
        except OSError:  # not empty: files of the user's, left alone
            pass


def _user_words(text: str, saved: Mapping[str, str]) -> str:
    """``text`` with each saved MASK file named as the user knows it (``key_mask``)."""
    for path, name in saved.items():
        text = text.replace(path, name).replace(os.path.basename(path), name)
    return text


class MatteShot(ConfigNode):
    """Plate + keyframe mask -> mattes of every frame written as EXR (the ``matte`` command)."""

    RETURN_TYPES = (PLATE, "STRING", "STRING")
    RETURN_NAMES = ("result", "summary", "drift")
    OUTPUT_TOOLTIPS = (
        "The written mattes as a plate.",
        "What the run did.",
        "Propagation drift (snapcut backend): which frames look unreliable and where to add "
        "a keyframe, then every frame's confidence (frame:confidence, 0-1); empty for "
        "backends that do not measure it.",
    )
    FUNCTION = "run"
    CATEGORY = "vfxmatte/matte"
    OUTPUT_NODE = True
    DESCRIPTION = (
        "Propagate the keyframe mask through the plate, matte, refine and decontaminate every "
        "frame and write premultiplied scene-linear EXRs (and the other output kinds), "
        "streaming one frame at a time. Frames already written are reused; Cancel stops within "
        "a frame. The key mask comes from the MASK input or the mask path."
    )

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(PipelineConfig, exclude=_NOT_WIDGETS)

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        (output,) = config_widgets(
            PipelineConfig, sections=("output",), defaults={"output": "vfxmatte/shot.####.exr"}
        )
        return {"plate": (PLATE, {}), "output": input_entry(output)}

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {
            "key_mask": ("MASK", {}),
            "keyframe_masks": ("MASK", {}),
            "keyframe_mask_frames": (
                "STRING",
                {"default": "", "tooltip": "Frame numbers of keyframe_masks, e.g. 1050,1100."},
            ),
            **mask_inputs(),
            **{name: (kind, {}) for name, kind in MODEL_INPUTS.items()},
        }

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        config = build_host_config(PipelineConfig, widget_values(cls.widgets(), values))
        if values.get("output"):
            OutputSet(host.output_path(values["output"]), config.output_options)
        folders.keyframe_paths(values.get("keyframes") or "")
        if values.get("keyframe_mask_frames"):
            parse_frame_range(values["keyframe_mask_frames"])

    @classmethod
    def IS_CHANGED(cls, mask: str = "", keyframes: str = "", **values: Any) -> str:  # noqa: N802
        def files() -> list[str]:
            found = [host.input_path(mask)] if mask else []
            return found + [path for _, path in folders.keyframe_paths(keyframes)]

        return input_fingerprint(files)

    def run(self, plate: PlateRef, output: str, **values: Any) -> dict[str, Any]:
        self._saved: dict[str, str] = {}  # saved MASK input file -> the input's name
        try:
            return self._run(plate, output, values)
        except VfxMatteError as exc:
            reworded = _user_words(str(exc), self._saved)
            if reworded == str(exc):
                raise
            try:
                error = type(exc)(reworded)
            except TypeError:
                error = VfxMatteError(reworded)
            raise error from exc
        finally:
            _remove_saved(self._saved)

    def _run(self, plate: PlateRef, output: str, values: Mapping[str, Any]) -> dict[str, Any]:
        config = self.config(plate, output, values)
        host.warm_up_kernels()  # pymatting's first-run compile, said on the node
        first_pass = (
            config.propagate.backend == "sam2"
            and config.engine.executor == "local"
            and not config.guidance
            and config.engine.phase != "propagate"
        )
        on_progress, should_cancel = host.engine_callbacks(
            len(plate.frames), passes=2 if first_pass else 1
        )
        report = run_pipeline(config, on_progress=on_progress, should_cancel=should_cancel)
        summary = report.summary()
        for number, message in sorted(report.failed.items()):
            summary += f"\nframe {number} failed: {message}"
        summary = _user_words(summary, self._saved)
        kind, pattern = next(iter(report.outputs.items()))
        channels = CHANNELS["rgba"] if kind == "multilayer" else CHANNELS[kind]
        result = PlateRef(
            pattern,
            tuple(sorted(report.written + report.reused)),
            plate.width,
            plate.height,
            ",".join(channels),
        )
        drift = drift_text(report.drift)
        text = [summary, report.drift.summary()] if drift else [summary]
        return {"ui": {"text": text}, "result": (result, summary, drift)}

    def config(self, plate: PlateRef, output: str, values: Mapping[str, Any]) -> PipelineConfig:
        """The run's config: widgets, plate, resolved paths, MASK inputs saved as files, models."""
        flat = widget_values(self.widgets(), values)
        flat.update(plate.overrides())
        flat["output"] = output
        flat["engine.progress"] = False
        flat = folders.confine_options(flat, host.model_folders)  # resolved and checked
        keyframes = folders.keyframe_paths(flat.get("keyframes", ""))
        keyframes += self._saved_masks(plate, flat, values)
        flat["keyframes"] = ";".join(f"{n}={p}" for n, p in keyframes)
        models = {name: values.get(name) for name in MODEL_INPUTS}
        flat.update(model_overrides(models))
        return build_host_config(PipelineConfig, flat)

    def _saved_masks(
        self, plate: PlateRef, flat: dict[str, Any], values: Mapping[str, Any]
    ) -> list[tuple[int, str]]:
        """Write the MASK inputs beside the outputs; set ``mask``, return the extra keyframes."""
        folder, name = os.path.split(FramePattern.parse(flat["output"]).as_hashes())
        stem = name.split(".", 1)[0]
        fit = functools.partial(
            fit_mask,
            shape=(plate.height, plate.width),
            mode=values.get("mask_mode", "auto"),
            resize=bool(values.get("mask_resize", False)),
        )
        if values.get("key_mask") is not None:
            masks = mask_to_numpy(values["key_mask"], what="key_mask")
            if len(masks) != 1:
                raise InputError(f"key_mask holds {len(masks)} masks; give one (the key frame's).")
            key = flat.get("key_frame", -1)
            number = key if key >= 0 else plate.frames[0]
            flat["mask"] = _save_mask(folder, stem, number, fit(masks[0], what="key_mask"), plate)
            self.__dict__.setdefault("_saved", {})[flat["mask"]] = "key_mask (the MASK input)"
        if not flat.get("mask"):
            raise InputError(
                "Matte Shot needs the key frame's mask: connect a MASK to key_mask, or give the "
                "mask file's path in 'mask'."
            )
        if values.get("keyframe_masks") is None:
            return []
        masks = mask_to_numpy(values["keyframe_masks"], what="keyframe_masks")
        numbers = parse_frame_range(values.get("keyframe_mask_frames") or "")
        if len(masks) != len(numbers):
            raise InputError(
                f"keyframe_masks holds {len(masks)} mask(s) but keyframe_mask_frames names "
                f"{len(numbers)} frame(s); give one frame number per mask."
            )
        out, saved = [], self.__dict__.setdefault("_saved", {})
        for n, m in zip(numbers, masks, strict=True):
            path = _save_mask(folder, stem, n, fit(m, what=f"keyframe mask of frame {n}"), plate)
            saved[path] = f"keyframe_masks (the MASK input, frame {n})"
            out.append((n, path))
        return out
