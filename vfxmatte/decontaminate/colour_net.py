"""The foreground colour network (MGMatting §3.2): image + alpha -> straight foreground.

A separate small U-Net: it sees the display-referred image and the alpha and
predicts the foreground colour ``F`` in [0,1]. MGMatting trains it with random
alpha blending (composites of a foreground over a background with an unrelated
alpha), so it learns colour, not matting, and is supervised over the whole image.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vfxmatte.config import param, validate_fields
from vfxmatte.errors import ConfigError

__all__ = ["ColourArchConfig", "ColourNet", "colour_arch_config", "colour_exposure"]


def colour_exposure(linear: torch.Tensor) -> torch.Tensor:
    """The one scaling rule for scene-linear input: ``s = max(1, max of what the net sees)``.

    The network sees ``srgb(linear / s)`` and its prediction is brought back as
    ``srgb^-1(F) * s``. Dividing by the maximum (not a percentile) keeps every
    pixel of the crop in [0, 1], so no highlight is clipped before the network and
    none comes back dimmed (a percentile clipped the soft band of bright edges:
    foreground 1.20 where the plate was 1.28-1.53). Used by the
    ``decontaminate.backend=network`` path and by the TorchScript export alike.

    Args:
        linear: scene-linear RGB of any shape.

    Returns:
        0-d tensor of ``linear``'s dtype, at least 1.
    """
    return torch.clamp(linear.amax(), min=1.0)


@dataclass
class ColourArchConfig:
    """Architecture of the colour network (saved inside every checkpoint)."""

    widths: tuple[int, int, int, int] = param(
        (16, 32, 64, 96), "Channels at strides 1, 2, 4 and 8."
    )

    def __post_init__(self) -> None:
        self.widths = tuple(int(v) for v in self.widths)
        validate_fields(self, "colour_arch.")
        if len(self.widths) != 4 or min(self.widths) < 1:
            raise ConfigError("colour_arch.widths: four channel counts >= 1")

    @property
    def stride(self) -> int:
        return 8


def colour_arch_config(value: dict[str, Any] | ColourArchConfig | None) -> ColourArchConfig:
    if value is None:
        return ColourArchConfig()
    if isinstance(value, ColourArchConfig):
        return value
    known = {f.name for f in dataclasses.fields(ColourArchConfig)}
    unknown = sorted(set(value) - known)
    if unknown:
        raise ConfigError(f"unknown colour-network options in checkpoint: {', '.join(unknown)}")
    return ColourArchConfig(**value)


def _block(cin: int, cout: int, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2),
        nn.Conv2d(cout, cout, 3, padding=1, bias=False),
        nn.BatchNorm2d(cout),
        nn.LeakyReLU(0.2),
    )


class ColourNet(nn.Module):
    """``forward(image, alpha)``: ``N x 3 x H x W`` and ``N x 1 x H x W`` in [0,1] -> F.

    ``H`` and ``W`` must be multiples of 8 (pad with
    :func:`vfxmatte.matte.network.prn.pad_to_stride`).
    """

    def __init__(self, arch: ColourArchConfig | dict[str, Any] | None = None) -> None:
        super().__init__()
        self.arch = colour_arch_config(arch)
        w = self.arch.widths
        self.enc0 = _block(4, w[0])
        self.enc1 = _block(w[0], w[1], 2)
        self.enc2 = _block(w[1], w[2], 2)
        self.enc3 = _block(w[2], w[3], 2)
        self.dec2 = _block(w[3] + w[2], w[2])
        self.dec1 = _block(w[2] + w[1], w[1])
        self.dec0 = _block(w[1] + w[0], w[0])
        self.out = nn.Conv2d(w[0] + 4, 3, 3, padding=1)

    def forward(self, image: torch.Tensor, alpha: torch.Tensor) -> torch.Tensor:
        x = torch.cat((image * 2.0 - 1.0, alpha * 2.0 - 1.0), dim=1)
        e0 = self.enc0(x)
        e1 = self.enc1(e0)
        e2 = self.enc2(e1)
        e3 = self.enc3(e2)
        d = self.dec2(torch.cat((F.interpolate(e3, size=e2.shape[-2:], mode="bilinear"), e2), 1))
        d = self.dec1(torch.cat((F.interpolate(d, size=e1.shape[-2:], mode="bilinear"), e1), 1))
        d = self.dec0(torch.cat((F.interpolate(d, size=e0.shape[-2:], mode="bilinear"), e0), 1))
        # a residual on the image: where the pixel is pure foreground the answer is the image
        return torch.clamp(image + torch.tanh(self.out(torch.cat((d, x), 1))), 0.0, 1.0)
