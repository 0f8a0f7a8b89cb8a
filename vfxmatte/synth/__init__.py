"""Synthetic shots with exact ground truth, for demos, tests and benchmarks."""

from __future__ import annotations

from vfxmatte.synth.shot import (
    FPS,
    ShotPaths,
    ShotSpec,
    SynthFrame,
    layer_names,
    make_shot,
    preview_png,
    render_frame,
    smpte_timecode,
    write_shot,
)

__all__ = [
    "FPS",
    "ShotPaths",
    "ShotSpec",
    "SynthFrame",
    "layer_names",
    "make_shot",
    "preview_png",
    "render_frame",
    "smpte_timecode",
    "write_shot",
]
