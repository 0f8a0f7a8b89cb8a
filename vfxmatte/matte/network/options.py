"""Options of the ``network`` matte backend (no torch import: the CLI reads them cheaply)."""

from __future__ import annotations

from dataclasses import dataclass

from vfxmatte.config import param, validate_fields

__all__ = ["SCHEDULES", "NetworkMatteConfig"]

SCHEDULES = ("cosine", "linear")


@dataclass
class NetworkMatteConfig:
    """Options of the learned matting backend."""

    weights: str = param(
        "",
        "Matting network checkpoint (.safetensors of kind 'matte': trained with "
        "'vfxmatte train', or converted with 'vfxmatte weights convert-mgmatting'); empty: "
        "the shipped starter weights (weights/matte_small.safetensors).",
    )
    working_size: int = param(
        1024, "Long side of the working resolution (frames larger than this are scaled down).",
        min=64, max=8192,
    )  # fmt: skip
    iterations: int = param(
        1,
        "Confidence-guided decoding steps T (Mask2Alpha); 0 or 1: one plain pass (the "
        "default: with the shipped weights T=3 gives the same matte at 2-3x the time).",
        min=0, max=50,
    )  # fmt: skip
    schedule: str = param(
        "cosine", "Share of pixels committed per decoding step.", choices=SCHEDULES
    )
    device: str = param("auto", "Compute device: auto, cpu, cuda, cuda:N or mps.")
    half: bool = param(False, "Half precision (CUDA only; ignored on CPU).")

    def __post_init__(self) -> None:
        validate_fields(self, "matte.network.")
