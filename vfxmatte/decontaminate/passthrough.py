"""The ``none`` decontamination backend: the plate colour as the foreground."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["foreground_passthrough"]


def foreground_passthrough(image: np.ndarray, alpha: np.ndarray, config: Any = None) -> np.ndarray:
    """``H x W x 3`` float32: ``image`` where ``alpha > 0``, else 0.

    Edge pixels keep the background colour mixed in (no decontamination); useful
    to compare with, and when a later tool unmixes colour itself.
    """
    return np.where(alpha[..., None] > 0, image, 0).astype(np.float32)
