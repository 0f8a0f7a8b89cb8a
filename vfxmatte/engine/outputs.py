"""What the engine writes per frame: output kinds, their paths, channels and previews.

Kinds (channel names as DESIGN.md fixes them):

* ``rgba``: premultiplied scene-linear ``R,G,B,A`` (``R,G,B = alpha * F``), the default;
* ``alpha``: the soft matte alone, channel ``A``;
* ``fg``: the straight (unpremultiplied) foreground, ``R,G,B``;
* ``confidence``: the matte stage's per-pixel confidence, ``Y``;
* ``multilayer``: one EXR with ``R,G,B,A``, ``fg.R/G/B``, ``matte.A`` and ``confidence.Y``.

With several kinds, the first one is written to the output pattern itself and the
others beside it with ``_<kind>`` after the name (``shot.####.exr`` ->
``shot_alpha.####.exr``), unless the pattern has a ``{kind}`` placeholder.
Previews are 8-bit sRGB PNGs of the composite over a checkerboard or a colour.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfxmatte.config import param
from vfxmatte.errors import ConfigError, closest_hint
from vfxmatte.io.colour import linear_to_srgb
from vfxmatte.io.image import probe_image, write_image
from vfxmatte.io.sequence import FramePattern

__all__ = [
    "OUTPUT_KINDS",
    "FrameResult",
    "OutputConfig",
    "OutputSet",
    "composite_preview",
]

OUTPUT_KINDS = ("rgba", "alpha", "fg", "confidence", "multilayer")
CHANNELS = {
    "rgba": ("R", "G", "B", "A"),
    "alpha": ("A",),
    "fg": ("R", "G", "B"),
    "confidence": ("Y",),
    "multilayer": ("R", "G", "B", "A", "fg.R", "fg.G", "fg.B", "matte.A", "confidence.Y"),
}


@dataclass
class OutputConfig:
    """Which files the engine writes, and how."""

    kinds: str = param(
        "rgba",
        "Comma list of outputs: rgba (premultiplied linear RGBA), alpha, fg (straight "
        "foreground), confidence, multilayer (all in one EXR).",
    )
    dtype: str = param("half", "EXR pixel type.", choices=("half", "float"))
    compression: str = param(
        "zip", "EXR compression.", choices=("none", "zip", "zips", "piz", "dwaa", "dwab")
    )
    preview: str = param(
        "none", "Also write PNG previews of the composite.", choices=("none", "checker", "colour")
    )
    preview_colour: str = param("0.1,0.1,0.1", "Linear RGB of the preview background colour.")


@dataclass
class FrameResult:
    """The stages' results for one frame, all full resolution.

    ``alpha``/``confidence`` are ``H x W`` float32 in [0,1]; ``fg`` is the straight
    foreground ``H x W x 3`` float32, scene-linear (values above 1.0 kept).
    """

    number: int
    alpha: np.ndarray
    fg: np.ndarray
    confidence: np.ndarray
    metadata: Mapping[str, Any]


def parse_kinds(text: str) -> list[str]:
    kinds = [k.strip() for k in text.split(",") if k.strip()]
    if not kinds:
        raise ConfigError("No output kind given; use one or more of: " + ", ".join(OUTPUT_KINDS))
    for kind in kinds:
        if kind not in OUTPUT_KINDS:
            raise ConfigError(
                f"Unknown output kind '{kind}'; valid: {', '.join(OUTPUT_KINDS)}."
                + closest_hint(kind, OUTPUT_KINDS)
            )
    return list(dict.fromkeys(kinds))


def kind_pattern(base: str, kind: str, primary: str) -> str:
    """The file pattern of ``kind`` given the user's output pattern ``base``."""
    if "{kind}" in base:
        return base.replace("{kind}", kind)
    if kind == primary:
        return base
    folder, name = os.path.split(base)
    stem, dot, rest = name.partition(".")
    return os.path.join(folder, f"{stem}_{kind}{dot}{rest}")


def _pixels(kind: str, result: FrameResult) -> np.ndarray:
    a = result.alpha[..., None]
    if kind == "rgba":
        return np.concatenate([result.fg * a, a], axis=2)
    if kind == "alpha":
        return a
    if kind == "fg":
        return result.fg
    if kind == "confidence":
        return result.confidence[..., None]
    return np.concatenate([result.fg * a, a, result.fg, a, result.confidence[..., None]], axis=2)


def composite_preview(result: FrameResult, mode: str, colour: str = "0.1,0.1,0.1") -> np.ndarray:
    """``H x W x 3`` uint8 sRGB: the premultiplied result over a checkerboard or colour."""
    h, w = result.alpha.shape
    if mode == "checker":
        yy, xx = np.mgrid[0:h, 0:w]
        cell = max(8, min(h, w) // 24)
        light = ((yy // cell + xx // cell) % 2).astype(np.float32)
        background = (0.05 + 0.15 * light)[..., None].repeat(3, axis=2)
    else:
        try:
            rgb = [float(v) for v in colour.split(",")]
        except ValueError:
            rgb = []
        if len(rgb) != 3:
            raise ConfigError(f"preview_colour must be three numbers 'r,g,b', got {colour!r}.")
        background = np.broadcast_to(np.array(rgb, np.float32), (h, w, 3))
    a = result.alpha[..., None]
    comp = result.fg * a + background * (1.0 - a)
    return (np.clip(linear_to_srgb(comp), 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


class OutputSet:
    """The files written for each frame, for one output pattern and config."""

    def __init__(self, pattern: str, config: OutputConfig) -> None:
        if not pattern:
            raise ConfigError("No output path given; pass -o out/shot.####.exr.")
        base = FramePattern.parse(pattern)
        if base.is_single:
            raise ConfigError(
                f"The output '{pattern}' has no frame token; use e.g. out/shot.####.exr."
            )
        self.config = config
        self.kinds = parse_kinds(config.kinds)
        self.patterns = {
            kind: FramePattern.parse(kind_pattern(pattern, kind, self.kinds[0]))
            for kind in self.kinds
        }
        self.preview: FramePattern | None = None
        if config.preview != "none":
            folder, name = os.path.split(base.as_hashes())
            stem = name.rsplit(".", 1)[0]
            self.preview = FramePattern.parse(os.path.join(folder, "preview", stem + ".png"))

    def paths(self, number: int) -> list[str]:
        files = [p.path(number) for p in self.patterns.values()]
        return files + ([self.preview.path(number)] if self.preview else [])

    def is_complete(self, number: int, width: int, height: int) -> bool:
        """Whether every file of ``number`` exists, is readable and has the right size."""
        for kind, pattern in self.patterns.items():
            path = pattern.path(number)
            if not os.path.isfile(path):
                return False
            try:
                probe = probe_image(path)
            except Exception:  # noqa: BLE001 - anything unreadable is simply redone
                return False
            if (probe.width, probe.height) != (width, height) or set(probe.channels) != set(
                CHANNELS[kind]
            ):
                return False
        return self.preview is None or os.path.isfile(self.preview.path(number))

    def write(self, result: FrameResult) -> None:
        """Write every output of one frame (each file atomically)."""
        for kind, pattern in self.patterns.items():
            write_image(
                pattern.path(result.number),
                _pixels(kind, result),
                CHANNELS[kind],
                metadata=result.metadata,
                dtype=self.config.dtype,
                compression=self.config.compression,
            )
        if self.preview is not None:
            png = composite_preview(result, self.config.preview, self.config.preview_colour)
            write_image(
                self.preview.path(result.number),
                png.astype(np.float32) / 255.0,
                ("R", "G", "B"),
                dtype="uint8",
            )
