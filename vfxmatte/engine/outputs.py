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

Scene-linear kinds (``rgba``, ``fg``, ``multilayer``) are refused in 8-bit file types
(PNG, JPEG...): they would be clipped to [0,1], quantised and look dark (linear
values shown as display values). ``alpha`` and ``confidence`` may be 8-bit, with a
warning that they are rounded to 256 levels. Beyond the half range (65504) the
foreground is clamped with a warning (``--dtype float`` keeps it).

With :class:`~vfxmatte.engine.digest.FrameSettings`, every file (previews too) carries
the frame's settings digest, and a frame is complete only when its files carry
this run's (:meth:`OutputSet.is_complete`, :meth:`OutputSet.stale`).
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from vfxmatte.config import param
from vfxmatte.engine.digest import (
    DIGEST_ATTR,
    SETTINGS_ATTR,
    FrameSettings,
    differences,
    holds_digest,
    read_header,
)
from vfxmatte.errors import ConfigError, SettingsMismatchError, closest_hint
from vfxmatte.io.colour import linear_to_srgb
from vfxmatte.io.image import clamp_to_half, write_image
from vfxmatte.io.sequence import FramePattern, compress_frames

log = logging.getLogger(__name__)

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
#: Kinds holding scene-linear colour (values above 1.0): never in an 8-bit file type.
LINEAR_KINDS = ("rgba", "fg", "multilayer")
#: File types OpenImageIO writes with 8 bits per channel whatever the pixel type asked.
EIGHT_BIT_EXTENSIONS = (".png", ".jpg", ".jpeg", ".jpe", ".bmp", ".gif", ".webp", ".tga")


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


def output_patterns(pattern: str, kinds: str) -> dict[str, FramePattern]:
    """Kind -> the file pattern it is written to (see the module docstring).

    Raises:
        ConfigError: no pattern, no frame token, or an unknown kind.
    """
    if not pattern:
        raise ConfigError("No output path given; pass -o out/shot.####.exr.")
    if FramePattern.parse(pattern).is_single:
        raise ConfigError(f"The output '{pattern}' has no frame token; use e.g. out/shot.####.exr.")
    names = parse_kinds(kinds)
    return {kind: FramePattern.parse(kind_pattern(pattern, kind, names[0])) for kind in names}


def preview_pattern(pattern: str) -> FramePattern:
    """``out/shot.####.exr`` -> ``out/preview/shot.####.png``."""
    folder, name = os.path.split(FramePattern.parse(pattern).as_hashes())
    return FramePattern.parse(os.path.join(folder, "preview", name.rsplit(".", 1)[0] + ".png"))


def check_file_types(patterns: Mapping[str, FramePattern]) -> None:
    """Refuse scene-linear kinds in 8-bit file types; warn that an 8-bit matte is rounded.

    Raises:
        ConfigError: an ``rgba``/``fg``/``multilayer`` output in PNG, JPEG...
    """
    for kind, pattern in patterns.items():
        extension = os.path.splitext("frame" + pattern.tail)[1].lower()
        if extension not in EIGHT_BIT_EXTENSIONS:
            continue
        if kind in LINEAR_KINDS:
            raise ConfigError(
                f"The {kind} output '{pattern.source}' is a {extension} file, which holds 8-bit "
                f"display values, but {kind} is scene-linear colour (values above 1.0 kept): "
                "it would be clipped, banded and look dark. Write it as .exr (or .tif); for "
                "8-bit pictures use --preview checker (sRGB PNGs) or --outputs alpha."
            )
        log.warning(
            "The %s output '%s' is 8-bit: the values are rounded to 256 levels; write .exr "
            "to keep them exact.",
            kind,
            pattern.source,
        )


def _premultiplied(result: FrameResult) -> np.ndarray:
    """``R,G,B,A`` with ``R,G,B = alpha * fg``, written into one array (no concatenation
    of temporaries: the same values, one pass fewer over a full-resolution frame)."""
    h, w = result.alpha.shape
    out = np.empty((h, w, 4), np.result_type(result.fg.dtype, result.alpha.dtype))
    np.multiply(result.fg, result.alpha[..., None], out=out[..., :3])
    out[..., 3] = result.alpha
    return out


def _pixels(kind: str, result: FrameResult) -> np.ndarray:
    a = result.alpha[..., None]
    if kind == "rgba":
        return _premultiplied(result)
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


def stale_error(pattern: str, stale: Mapping[int, str]) -> SettingsMismatchError:
    """The sentence for frames of ``pattern`` made with other settings (frame -> what)."""
    first = next(iter(stale.values()))
    return SettingsMismatchError(
        f"{len(stale)} frame(s) of '{pattern}' on disk were made with other settings "
        f"({compress_frames(stale)}: {first}); they are kept and this run stopped before "
        "any work. Redo them with these settings with --overwrite (engine.overwrite: every "
        "frame is redone), delete those frames' files, or write to another output.",
        sorted(stale),
    )


class OutputSet:
    """The files written for each frame, for one output pattern and config.

    ``settings``: the run's :class:`~vfxmatte.engine.digest.FrameSettings`; every file
    written then carries its frame's digest and only files carrying it are complete.
    """

    def __init__(
        self, pattern: str, config: OutputConfig, settings: FrameSettings | None = None
    ) -> None:
        self.config = config
        self.settings = settings
        self.patterns = output_patterns(pattern, config.kinds)
        self.kinds = list(self.patterns)
        check_file_types(self.patterns)
        self.preview = preview_pattern(pattern) if config.preview != "none" else None

    def paths(self, number: int) -> list[str]:
        files = [p.path(number) for p in self.patterns.values()]
        return files + ([self.preview.path(number)] if self.preview else [])

    def _headers(self, number: int) -> tuple[dict[str, str], dict[str, str]]:
        """The header attributes of frame ``number``'s outputs and of its preview."""
        if self.settings is None:
            return {}, {}
        preview = {"preview": self.config.preview}
        if self.config.preview == "colour":
            preview["colour"] = self.config.preview_colour
        return self.settings.header(number), self.settings.header(number, preview)

    def _files(self, number: int) -> Iterable[tuple[str, tuple[str, ...] | None, bool]]:
        """``(path, channels or None for the preview, is preview)`` of frame ``number``."""
        for kind, pattern in self.patterns.items():
            yield pattern.path(number), CHANNELS[kind], False
        if self.preview is not None:
            yield self.preview.path(number), None, True

    def is_complete(self, number: int, width: int, height: int) -> bool:
        """Whether every file of ``number`` exists, is readable, has the right size and
        channels, and (with settings) carries this run's settings digest."""
        headers = self._headers(number)
        for path, channels, is_preview in self._files(number):
            if not os.path.isfile(path):
                return False
            header = read_header(path)
            if header is None:
                return False
            if channels is not None and (
                (header.width, header.height) != (width, height)
                or set(header.channels) != set(channels)
            ):
                return False
            wanted = headers[is_preview].get(DIGEST_ATTR)
            if wanted and holds_digest(path) and header.attributes.get(DIGEST_ATTR) != wanted:
                return False
        return True

    def stale(self, frames: Iterable[int]) -> dict[int, str]:
        """Frames with a file on disk made with other settings: frame -> what differs.

        Files that cannot hold a digest (TIFF, DPX) are not judged.
        """
        found: dict[int, str] = {}
        if self.settings is None:
            return found
        for number in frames:
            if not self.settings.inputs_present(number):
                continue  # the run stops on the missing input, with its own sentence
            headers = None
            for path, _, is_preview in self._files(number):
                if not holds_digest(path) or not os.path.isfile(path):
                    continue
                headers = headers or self._headers(number)
                header = read_header(path)
                theirs = header.attributes if header is not None else {}
                if theirs.get(DIGEST_ATTR) != headers[is_preview][DIGEST_ATTR]:
                    ours = headers[is_preview][SETTINGS_ATTR]
                    found[number] = differences(ours, theirs.get(SETTINGS_ATTR))
                    break
        return found

    def refuse_stale(self, frames: Iterable[int]) -> None:
        """Raise when frames on disk were made with other settings (:meth:`stale`).

        Raises:
            SettingsMismatchError: listing the frames and what differs.
        """
        stale = self.stale(frames)
        if stale:
            raise stale_error(next(iter(self.patterns.values())).source, stale)

    def write(self, result: FrameResult) -> None:
        """Write every output of one frame (each file atomically)."""
        header, preview_header = self._headers(result.number)
        metadata = {**result.metadata, **header}
        if self.config.dtype == "half":
            result = dataclasses.replace(
                result, fg=clamp_to_half(result.fg, f"Frame {result.number} foreground")
            )
        for kind, pattern in self.patterns.items():
            write_image(
                pattern.path(result.number),
                _pixels(kind, result),
                CHANNELS[kind],
                metadata=metadata,
                dtype=self.config.dtype,
                compression=self.config.compression,
            )
        if self.preview is not None:
            png = composite_preview(result, self.config.preview, self.config.preview_colour)
            write_image(
                self.preview.path(result.number),
                png.astype(np.float32) / 255.0,
                ("R", "G", "B"),
                metadata=preview_header,
                dtype="uint8",
            )
