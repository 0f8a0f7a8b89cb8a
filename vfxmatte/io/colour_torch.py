"""The sRGB curve on torch tensors (training losses, the TorchScript export).

Same rule as :mod:`vfxmatte.io.colour` (and OCIO's built-in configs) outside [0, 1]:
:func:`srgb_decode` continues the linear segment below 0 and the power segment
above 1, exactly as :func:`~vfxmatte.io.colour.srgb_to_linear`. :func:`srgb_encode`
feeds networks, which take display values in [0, 1]: it equals
``clip(linear_to_srgb(x), 0, 1)``, so nothing below 0 is ever mirrored. Written with
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
    """sRGB-encoded -> linear; below 0 the linear segment, above 1 the power segment."""
    curve = torch.pow((torch.clamp(y, min=0.04045) + 0.055) / 1.055, 2.4)
    return torch.where(y <= 0.04045, y / 12.92, curve)
