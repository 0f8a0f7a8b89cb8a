"""Plates and masks in; EXR sequences out.

A plate enters a graph as a :class:`~.common.PlateRef` handle (``VFXMATTE_PLATE``):
its path, frame numbers, size and colourspace, no pixels. The file-based nodes
(Matte Shot) stream it through the engine one frame at a time, so a graph works
on shots of any length and size. :class:`ReadFrames` turns a few frames into an
IMAGE batch for the in-memory nodes and previews, and refuses a batch larger
than ``max_frames``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from vfxmatte.engine.config import InputConfig, PipelineConfig
from vfxmatte.engine.outputs import OutputConfig
from vfxmatte.engine.stages import ColourContext
from vfxmatte.errors import InputError, MissingFramesError
from vfxmatte.io.colour import convert_colourspace, is_linear, resolve_colourspace
from vfxmatte.io.frame import Frame
from vfxmatte.io.image import write_image
from vfxmatte.io.mask import read_mask
from vfxmatte.io.plate import is_video, open_plate
from vfxmatte.io.sequence import FramePattern, compress_frames, parse_frame_range

from . import host
from .common import PLATE, ConfigNode, PlateRef, colour_inputs, image_colour
from .tensors import image_to_numpy, mask_to_numpy, numpy_to_image, numpy_to_mask
from .widgets import Widget, config_widgets, input_entry, input_fingerprint

__all__ = ["OpenPlate", "ReadFrames", "ReadMask", "WriteEXRSequence", "plate_files"]

DEMO_PLATE = "vfxmatte_demo/plate/plate.####.exr"


def plate_files(source: str) -> list[str]:
    """Every file of a plate on disk (for ``IS_CHANGED``): the video, or the sequence's frames."""
    if is_video(source):
        return [source]
    pattern = FramePattern.parse(source)
    if pattern.is_single:
        return [source]
    return [pattern.path(n) for n in pattern.frames_on_disk()]


def _open(values: Mapping[str, Any]) -> tuple[PlateRef, Any]:
    source = host.input_path(str(values.get("plate", "")))
    channels = values.get("channels", "RGB")
    plate = open_plate(
        source,
        values.get("frames") or None,
        channels=channels,
        nonfinite=values.get("nonfinite", "error"),
        first_frame=int(values.get("first_frame", 0)),
    )
    colourspace = values.get("colourspace", "auto")
    ocio = host.ocio_path(values.get("ocio", ""))
    if colourspace != "auto":
        resolve_colourspace(colourspace, ocio or None)
    info = plate.info
    ref = PlateRef(
        source,
        tuple(plate.frames),
        info.width,
        info.height,
        channels,
        colourspace,
        ocio,
        values.get("nonfinite", "error"),
        int(values.get("first_frame", 0)),
    )
    return ref, plate


class OpenPlate(ConfigNode):
    """A plate on disk as a handle: nothing is decoded until a node streams it."""

    RETURN_TYPES = (PLATE, "INT", "INT", "INT")
    RETURN_NAMES = ("plate", "frame_count", "width", "height")
    FUNCTION = "open"
    CATEGORY = "vfxmatte/io"
    DESCRIPTION = (
        "Open an image sequence (shot.####.exr, %04d, @@@@, $F4) or a video file. Relative "
        "paths are in ComfyUI's input folder. Outputs a handle, not pixels: Matte Shot streams "
        "the frames; Read Frames loads a few into an IMAGE."
    )

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(PipelineConfig, sections=("frames",)) + config_widgets(
            InputConfig, "input.", exclude=("mask_channel", "mask_resize")
        )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        (plate,) = config_widgets(
            PipelineConfig, sections=("plate",), defaults={"plate": DEMO_PLATE}
        )
        return {"plate": input_entry(plate)}

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        if values.get("plate"):
            _open(values)

    @classmethod
    def IS_CHANGED(cls, plate: str = "", **values: Any) -> str:  # noqa: N802 - ComfyUI's name
        return input_fingerprint(lambda: plate_files(host.input_path(plate)))

    def open(self, plate: str, **values: Any) -> tuple[PlateRef, int, int, int]:
        ref, _ = _open({"plate": plate, **values})
        return ref, len(ref.frames), ref.width, ref.height


def _rgb_and_alpha(frame: Frame) -> tuple[np.ndarray, np.ndarray]:
    """``H x W x 3`` colour and ``H x W`` alpha of a frame with any channels.

    Colour is ``R,G,B`` (else the first channel as grey); alpha is ``A`` (else 1).
    """
    names = list(frame.channels)
    pixels = frame.pixels
    if all(c in names for c in "RGB"):
        rgb = pixels[..., [names.index(c) for c in "RGB"]]
    else:
        rgb = np.repeat(pixels[..., :1], 3, axis=2)
    alpha = pixels[..., names.index("A")] if "A" in names else np.ones(pixels.shape[:2])
    return rgb.astype(np.float32), alpha.astype(np.float32)


class ReadFrames(ConfigNode):
    """Frames of a plate handle as an IMAGE batch (and their alpha as a MASK)."""

    RETURN_TYPES = ("IMAGE", "MASK")
    RETURN_NAMES = ("image", "alpha")
    FUNCTION = "read"
    CATEGORY = "vfxmatte/io"
    DESCRIPTION = (
        "Decode frames of a plate (or of a Matte Shot result) into an IMAGE batch for the "
        "in-memory nodes and previews, converted to the chosen colourspace. The alpha output "
        "is the A channel (1 where there is none), not Load Image's 1 - alpha."
    )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {"plate": (PLATE, {})}

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {
            "frames": (
                "STRING",
                {"default": "", "tooltip": "Frames to read, e.g. 1001-1010 (default: all)."},
            ),
            "max_frames": (
                "INT",
                {
                    "default": 100,
                    "min": 1,
                    "max": 100000,
                    "tooltip": "Refuse to hold more frames than this in one IMAGE; long shots "
                    "belong to the file-based nodes, which stream them.",
                },
            ),
            "colourspace": (
                "STRING",
                {
                    "default": "sRGB",
                    "tooltip": "Colourspace of the IMAGE: sRGB (display-referred, clipped to "
                    "[0,1]) or a scene-linear OCIO name (lin_rec709, ACEScg) to keep values "
                    "above 1.",
                },
            ),
        }

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        resolve_colourspace(values.get("colourspace") or "sRGB")

    def read(
        self, plate: PlateRef, frames: str = "", max_frames: int = 100, colourspace: str = "sRGB"
    ) -> tuple[Any, Any]:
        reader = plate.open()
        numbers = parse_frame_range(frames) if frames.strip() else list(reader.frames)
        missing = sorted(set(numbers) - set(reader.frames))
        if missing:
            raise MissingFramesError(
                f"Frames {compress_frames(missing)} are not in the plate '{plate.source}' "
                f"(frames {compress_frames(reader.frames)}).",
                missing,
            )
        if len(numbers) > max_frames:
            gigabytes = len(numbers) * plate.width * plate.height * 16 / 1e9
            raise InputError(
                f"Reading {len(numbers)} frames of {plate.width}x{plate.height} into one IMAGE "
                f"would hold about {gigabytes:.1f} GB (max_frames is {max_frames}). Pick fewer "
                "frames, raise max_frames, or use Matte Shot, which streams the shot."
            )
        target = colourspace or "sRGB"
        clip = not is_linear(resolve_colourspace(target, plate.ocio or None), plate.ocio or None)
        progress = host.Progress(len(numbers))
        images, alphas = [], []
        colour = None
        for number in numbers:
            frame = reader.read(number)
            if colour is None:
                colour = ColourContext.resolve(plate.colourspace, frame, plate.ocio or None)
            rgb, alpha = _rgb_and_alpha(frame)
            rgb = convert_colourspace(rgb, colour.plate, target, ocio_config=colour.ocio)
            images.append(np.clip(rgb, 0.0, 1.0) if clip else rgb)
            alphas.append(alpha)
            progress.step()
            host.check_interrupt()
        return numpy_to_image(images), numpy_to_mask(alphas)


class ReadMask(ConfigNode):
    """A mask file (PNG, EXR, TIFF...) as a MASK, 1 on the object."""

    RETURN_TYPES = ("MASK",)
    RETURN_NAMES = ("mask",)
    FUNCTION = "read"
    CATEGORY = "vfxmatte/io"
    DESCRIPTION = (
        "Read a keyframe mask or roto file as a MASK (white = object). The channel is picked "
        "as the CLI does: A when present and not constant, else the first channel."
    )

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(
            InputConfig, "input.", sections=("mask_channel",), rename={"mask_channel": "channel"}
        )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {
            "path": (
                "STRING",
                {
                    "default": "vfxmatte_demo/mask.png",
                    "tooltip": "Mask file; relative paths are in ComfyUI's input folder.",
                },
            )
        }

    @classmethod
    def IS_CHANGED(cls, path: str = "", **values: Any) -> str:  # noqa: N802 - ComfyUI's name
        return input_fingerprint(lambda: [host.input_path(path)])

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        if values.get("path"):
            host.input_path(values["path"])

    def read(self, path: str, channel: str = "auto") -> tuple[Any]:
        mask = read_mask(host.input_path(path), channel=channel, allow_empty=True)
        return (numpy_to_mask(mask),)


class WriteEXRSequence(ConfigNode):
    """An IMAGE batch (and optional alpha) to a scene-linear EXR sequence."""

    RETURN_TYPES = (PLATE,)
    RETURN_NAMES = ("sequence",)
    FUNCTION = "write"
    CATEGORY = "vfxmatte/io"
    OUTPUT_NODE = True
    DESCRIPTION = (
        "Write an IMAGE batch as EXR frames in a scene-linear OCIO colourspace (default "
        "lin_rec709), with the alpha MASK as A; RGB premultiplied by alpha unless switched "
        "off. Relative patterns are in ComfyUI's output folder. Files are written atomically."
    )

    @classmethod
    def widgets(cls) -> list[Widget]:
        return config_widgets(
            OutputConfig,
            "output_options.",
            sections=("dtype", "compression"),
        )

    @classmethod
    def required_inputs(cls) -> dict[str, Any]:
        return {
            "image": ("IMAGE", {}),
            "output": (
                "STRING",
                {
                    "default": "vfxmatte/frames.####.exr",
                    "tooltip": "Output pattern with a frame token (####).",
                },
            ),
        }

    @classmethod
    def optional_inputs(cls) -> dict[str, Any]:
        return {
            "alpha": ("MASK", {}),
            "first_frame": (
                "INT",
                {
                    "default": 1001,
                    "min": -(2**31) + 1,
                    "max": 2**31 - 1,
                    "tooltip": "Number of the first frame.",
                },
            ),
            **colour_inputs(),
            "colourspace": (
                "STRING",
                {"default": "lin_rec709", "tooltip": "Colourspace written (an OCIO name)."},
            ),
            "premultiply": (
                "BOOLEAN",
                {"default": True, "tooltip": "Write R,G,B = alpha * colour (with an alpha)."},
            ),
        }

    @classmethod
    def check_inputs(cls, values: Mapping[str, Any]) -> None:
        ocio = host.ocio_path(values.get("ocio") or "") or None
        for key in ("image_colourspace", "colourspace"):
            if values.get(key):
                resolve_colourspace(values[key], ocio)
        if values.get("output"):
            if FramePattern.parse(values["output"]).is_single:
                raise InputError(f"The output '{values['output']}' has no frame token (####).")
            host.output_path(values["output"])

    def write(
        self,
        image: Any,
        output: str,
        alpha: Any = None,
        first_frame: int = 1001,
        image_colourspace: str = "sRGB",
        ocio: str = "",
        colourspace: str = "lin_rec709",
        premultiply: bool = True,
        dtype: str = "half",
        compression: str = "zip",
    ) -> dict[str, Any]:
        self.check_inputs({"output": output, "colourspace": colourspace, "ocio": ocio})
        frames = image_to_numpy(image)
        alphas = None if alpha is None else mask_to_numpy(alpha, what="alpha")
        if alphas is not None and (
            len(alphas) not in (1, len(frames)) or alphas.shape[1:] != frames.shape[1:3]
        ):
            raise InputError(
                f"The alpha is {alphas.shape[0]} x {alphas.shape[2]}x{alphas.shape[1]} but the "
                f"image is {frames.shape[0]} x {frames.shape[2]}x{frames.shape[1]}; give one "
                "alpha per frame (or one for all) of the image size."
            )
        colour = image_colour(image_colourspace, ocio)
        target = resolve_colourspace(colourspace, colour.ocio)
        pattern = FramePattern.parse(host.output_path(output))
        channels = ["R", "G", "B"] if alphas is None else ["R", "G", "B", "A"]
        progress = host.Progress(len(frames))
        numbers = [first_frame + i for i in range(len(frames))]
        for i, number in enumerate(numbers):
            rgb = convert_colourspace(frames[i], colour.plate, target, ocio_config=colour.ocio)
            if alphas is not None:
                a = alphas[min(i, len(alphas) - 1)][..., None]
                rgb = np.concatenate([rgb * a if premultiply else rgb, a], axis=2)
            write_image(
                pattern.path(number),
                rgb,
                channels,
                metadata={"oiio:ColorSpace": target},
                dtype=dtype,
                compression=compression,
            )
            progress.step()
            host.check_interrupt()
        ref = PlateRef(
            pattern.source,
            tuple(numbers),
            frames.shape[2],
            frames.shape[1],
            ",".join(channels),
            target,
            colour.ocio or "",
        )
        return {
            "ui": {"text": [f"wrote {len(numbers)} frame(s) to {pattern.source}"]},
            "result": (ref,),
        }
