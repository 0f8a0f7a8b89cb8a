"""What every propagation backend provides to the engine."""

from __future__ import annotations

from typing import Protocol

import numpy as np

__all__ = ["Propagator"]


class Propagator(Protocol):
    """Carries keyframe masks through a shot, one frame at a time.

    The engine walks a shot in passes (forward from the first keyframe, then
    backward from it) and calls :meth:`reset` at each keyframe of a pass and
    :meth:`step` on every other frame, in pass order. Images are display-referred
    ``H x W x 3`` float32 in [0,1]; masks are ``H x W`` float32 in [0,1].
    """

    def reset(
        self, key_image: np.ndarray, key_mask: np.ndarray, *, index: int | None = None
    ) -> np.ndarray:
        """Start or re-anchor at a keyframe; returns its guidance."""
        ...

    def step(self, image: np.ndarray, *, index: int | None = None) -> np.ndarray:
        """The guidance of the next frame of the pass."""
        ...

    def correct(self, matte: np.ndarray) -> None:
        """Let the final matte of the frame just produced replace the propagated state."""
        ...
