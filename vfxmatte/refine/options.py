"""Options of the sparse refiner (no torch import: the CLI and config read them cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

from vfxmatte.config import param, validate_fields

__all__ = ["SparseRefineConfig"]


@dataclass
class SparseRefineConfig:
    """Options of the sparse full-resolution refinement."""

    weights: str = param(
        "",
        "Checkpoint of the refinement network (kind 'refine', .safetensors or .pt); its "
        "architecture is read from the file. Empty: the shipped starter weights (trained on "
        "the starter matting network's output; they read its decoder features, so they need "
        "matte.backend=network).",
    )
    tau: float = param(
        0.1,
        "Refine the pixels whose predicted error (1 - confidence) exceeds this.",
        min=0.0,
        max=1.0,
    )
    dilate: int = param(0, "Grow the selected pixels by this many pixels.", min=0, max=32)
    impl: str = param(
        "torch",
        "torch: gather + matrix multiply, any thread count (default); spconv: spconv's "
        "SubMConv2d, the accelerator on CUDA (single-threaded on CPU).",
        choices=("torch", "spconv"),
    )
    temporal: bool = param(
        False,
        "Skip pixels whose plate did not change since the previous frame and keep the "
        "previous result there (frames in order).",
    )
    temporal_sum: float = param(
        0.05,
        "A pixel is unchanged when the 9x9 sum of the mean absolute RGB frame difference "
        "around it is below this...",
        min=0.0,
        max=81.0,
    )
    temporal_pixel: float = param(
        0.001, "...and its own difference is below this.", min=0.0, max=1.0
    )
    max_active: int = param(
        4_000_000,
        "Most pixels refined at once; above it a cascade of resolutions (1/4, 1/2, full) "
        "bounds memory.",
        min=1,
        max=1_000_000_000,
    )
    device: str = param("auto", "Compute device: auto, cpu, cuda, cuda:N or mps.")

    def __post_init__(self) -> None:
        validate_fields(self, "refine.sparse.")
