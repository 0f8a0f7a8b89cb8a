"""The ``none`` refine backend: keep the matte stage's alpha (upsampled to the image's size)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from vfxmatte.refine.base import check_refine_inputs, upsample

__all__ = ["NoRefine"]


class NoRefine:
    """Keeps the matte stage's alpha; upsamples it bilinearly when it is smaller than the image.

    Same call signature as every refiner (:class:`vfxmatte.refine.base.Refiner`).
    """

    def __init__(self, config: Any = None) -> None:
        self.config = config

    def __call__(
        self,
        image: np.ndarray,
        alpha: np.ndarray,
        confidence: np.ndarray | None = None,
        features: Any = None,
    ) -> np.ndarray:
        """``H x W`` float32 alpha in [0, 1] for an ``H x W x 3`` image (``features`` unused)."""
        image, alpha, _ = check_refine_inputs(image, alpha, confidence)
        height, width = image.shape[:2]
        if alpha.shape == (height, width):
            return alpha
        with torch.no_grad():
            return upsample(torch.from_numpy(alpha), height, width).numpy()

    def reset(self) -> None:
        """Nothing to forget."""
