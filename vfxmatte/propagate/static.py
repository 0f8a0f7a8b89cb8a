"""The ``static`` propagation backend: the keyframe mask on every frame.

For locked-off shots and for objects that do not move; a later keyframe
replaces the mask from that frame on.
"""

from __future__ import annotations

import numpy as np

__all__ = ["StaticPropagator"]


class StaticPropagator:
    """Returns the last keyframe mask unchanged for every frame."""

    def __init__(self) -> None:
        self._mask: np.ndarray | None = None

    def reset(
        self, key_image: np.ndarray, key_mask: np.ndarray, *, index: int | None = None
    ) -> np.ndarray:
        self._mask = np.asarray(key_mask, dtype=np.float32)
        return self._mask

    def step(self, image: np.ndarray, *, index: int | None = None) -> np.ndarray:
        if self._mask is None:
            raise RuntimeError("StaticPropagator.step() called before reset().")
        return self._mask

    def correct(self, matte: np.ndarray) -> None:
        """The static mask ignores mattes: every frame gets the keyframe's guidance."""
