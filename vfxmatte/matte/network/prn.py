"""Progressive refinement (MGMatting §3.1): self-guided fusion of the side outputs.

At each level the previous level's alpha decides where the new level may speak:
``g = 1`` where the previous alpha is strictly between 0 and 1 (``1/255 < a <
1 - 1/255``), dilated by an ellipse (15 at OS8->OS4 and 7 at OS4->OS1 at test
time), and ``alpha_l = alpha'_l * g + alpha_{l-1} * (1 - g)``.

Everything here is plain tensor arithmetic (convolution for the dilation), so it
runs on any device, in half precision, and inside TorchScript.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "dilate",
    "ellipse_kernel",
    "pad_to_stride",
    "progressive_fuse",
    "uncertain_mask",
]

LOW = 1.0 / 255.0


def ellipse_kernel(size: int) -> torch.Tensor:
    """``1 x 1 x size x size`` float kernel of OpenCV's elliptic structuring element."""
    element = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(size), int(size)))
    return torch.from_numpy(element.astype(np.float32))[None, None]


def uncertain_mask(alpha: torch.Tensor) -> torch.Tensor:
    """1 where ``1/255 < alpha < 1 - 1/255``, else 0 (same dtype as ``alpha``)."""
    low = 1.0 / 255.0  # LOW, spelled out: TorchScript does not read module globals
    return ((alpha > low) & (alpha < 1.0 - low)).to(alpha.dtype)


def dilate(mask: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Binary dilation of ``N x 1 x H x W`` ``mask`` by ``kernel`` (pixels outside count as 0)."""
    size = kernel.shape[-1]
    hits = F.conv2d(mask, kernel.to(mask.dtype), padding=size // 2)
    return (hits > 0.5).to(mask.dtype)


def progressive_fuse(
    os8: torch.Tensor,
    os4: torch.Tensor,
    os1: torch.Tensor,
    kernel_os4: torch.Tensor,
    kernel_os1: torch.Tensor,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Fuse side alphas (all at the same resolution) coarse to fine.

    Returns:
        ``(alpha, g_os4, g_os1)``: the fused alpha and the self-guidance masks.
    """
    g4 = dilate(uncertain_mask(os8), kernel_os4)
    alpha = os4 * g4 + os8 * (1.0 - g4)
    g1 = dilate(uncertain_mask(alpha), kernel_os1)
    alpha = os1 * g1 + alpha * (1.0 - g1)
    return alpha, g4, g1


def pad_to_stride(
    x: torch.Tensor, stride: int = 32, margin: int = 32
) -> tuple[torch.Tensor, tuple[int, int, int, int]]:
    """Reflect-pad ``N x C x H x W`` by ``margin`` and then up to a multiple of ``stride``.

    Returns the padded tensor and ``(top, left, height, width)`` of the original
    inside it. Reflection needs the image to be larger than the margin; smaller
    images fall back to replicate padding.
    """
    h, w = int(x.shape[-2]), int(x.shape[-1])
    target_h = stride * ((h + 2 * margin + stride - 1) // stride)
    target_w = stride * ((w + 2 * margin + stride - 1) // stride)
    pad = (margin, target_w - w - margin, margin, target_h - h - margin)
    mode = "reflect" if min(h, w) > max(pad) else "replicate"
    return F.pad(x, pad, mode=mode), (margin, margin, h, w)
