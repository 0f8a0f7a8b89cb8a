"""Self-training on weak instance masks (Mask-guided Matting in the Wild §4.2).

An EMA teacher sees a *weakly* augmented view (geometric only) of an image and
its instance mask; the student sees the *strongly* augmented view of the same
crop -- pixel-level linear perturbations only (noise, contrast; no blur, which
would change the matte) -- with the mask dilated or eroded by a kernel of
``beta`` (20%) of the instance box's short side. The student is pulled towards
the teacher with ``L1(student, teacher)``, added to the composited-data loss.

Arrays are numpy ``H x W x C`` float32 (display-referred images in [0,1]).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

from vfxmatte.train.coco import WeakMask
from vfxmatte.train.composition import crop_padded
from vfxmatte.train.guidance import morph

__all__ = ["WeakView", "ema_update", "strong_perturb", "weak_view"]


@torch.no_grad()
def ema_update(teacher: nn.Module, student: nn.Module, decay: float) -> None:
    """``teacher = decay * teacher + (1 - decay) * student`` for parameters; buffers copied."""
    for t, s in zip(teacher.parameters(), student.parameters(), strict=True):
        t.mul_(decay).add_(s.detach(), alpha=1.0 - decay)
    for t, s in zip(teacher.buffers(), student.buffers(), strict=True):
        t.copy_(s)


@dataclass
class WeakView:
    """A weakly augmented crop: image, the instance mask, and the student's inputs."""

    image: np.ndarray
    mask: np.ndarray
    strong_image: np.ndarray
    strong_guidance: np.ndarray


def strong_perturb(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Pixel-level linear perturbations: contrast/brightness and additive noise (no blur)."""
    mean = image.mean(axis=(0, 1), keepdims=True)
    contrast = np.float32(rng.uniform(0.7, 1.3))
    brightness = np.float32(rng.uniform(-0.08, 0.08))
    out = (image - mean) * contrast + mean + brightness
    out = out + rng.normal(0.0, rng.uniform(0.0, 0.04), image.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0).astype(np.float32)


def weak_view(sample: WeakMask, size: int, beta: float, rng: np.random.Generator) -> WeakView:
    """Crop a square around the instance box (random margin and flip), resized to ``size``.

    The student's guidance is the mask dilated or eroded (at random) by a kernel of
    ``beta`` times the box's short side, measured in the crop's pixels.
    """
    x, y, w, h = sample.box
    side = max(w, h) * rng.uniform(1.2, 2.0)
    cx = x + w / 2 + rng.uniform(-0.1, 0.1) * w
    cy = y + h / 2 + rng.uniform(-0.1, 0.1) * h
    top, left, span = int(round(cy - side / 2)), int(round(cx - side / 2)), max(2, int(round(side)))
    image = crop_padded(sample.image, top, left, span, "reflect")
    mask = crop_padded(sample.mask.astype(np.float32), top, left, span)
    image = cv2.resize(
        image, (size, size), interpolation=cv2.INTER_AREA if span > size else cv2.INTER_LINEAR
    )
    mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_LINEAR)
    mask = (mask > 0.5).astype(np.float32)
    if rng.random() < 0.5:
        image, mask = image[:, ::-1].copy(), mask[:, ::-1].copy()
    kernel = max(1, int(round(beta * min(w, h) * size / span)))
    guidance = morph(mask, "dilate" if rng.random() < 0.5 else "erode", kernel)
    return WeakView(image, mask, strong_perturb(image, rng), guidance)
