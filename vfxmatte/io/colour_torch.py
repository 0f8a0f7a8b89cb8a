"""The sRGB curve on torch tensors (training losses, the TorchScript export).

Same numbers as :func:`vfxmatte.io.colour.linear_to_srgb` on [0, 1]; written with
plain tensor ops so TorchScript compiles it and it follows the input's device and
dtype (half precision included).
"""

# No ``from __future__ import annotations``: TorchScript compiles these functions.
import torch

__all__ = ["srgb_decode", "srgb_encode"]


def srgb_encode(x: torch.Tensor) -> torch.Tensor:
    """Linear -> sRGB-encoded, clipped to [0, 1] (IEC 61966-2-1)."""
    x = torch.clamp(x, 0.0, 1.0)
    curve = 1.055 * torch.pow(torch.clamp(x, min=0.0031308), 1.0 / 2.4) - 0.055
    return torch.where(x <= 0.0031308, 12.92 * x, curve)


def srgb_decode(y: torch.Tensor) -> torch.Tensor:
    """sRGB-encoded [0, 1] -> linear."""
    curve = torch.pow((torch.clamp(y, min=0.04045) + 0.055) / 1.055, 2.4)
    return torch.where(y <= 0.04045, y / 12.92, curve)
