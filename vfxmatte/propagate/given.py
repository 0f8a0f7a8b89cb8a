"""The ``given`` propagation backend: a mask per frame supplied by the user.

For roto from Nuke or masks made elsewhere: the guidance of frame ``n`` is read
from the mask pattern at ``n``. Nothing is propagated.
"""

from __future__ import annotations

import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.io.mask import read_mask
from vfxmatte.io.sequence import FramePattern, compress_frames

__all__ = ["GivenPropagator"]


class GivenPropagator:
    """Reads the guidance of each frame from a mask sequence."""

    def __init__(
        self,
        pattern: str,
        frames: list[int],
        *,
        channel: str = "auto",
        resize: bool = False,
        nonfinite: str = "error",
    ) -> None:
        self.pattern = FramePattern.parse(pattern)
        missing = sorted(set(frames) - set(self.pattern.frames_on_disk()))
        if missing:
            raise InputError(
                f"The mask sequence '{pattern}' lacks frame(s) {compress_frames(missing)}; "
                "propagate.backend=given needs a mask for every plate frame."
            )
        self.channel = channel
        self.resize = resize
        self.nonfinite = nonfinite

    def _read(self, image: np.ndarray, index: int | None) -> np.ndarray:
        if index is None:
            raise RuntimeError("GivenPropagator needs the frame number of every frame.")
        return read_mask(
            self.pattern.path(index),
            shape=image.shape[:2],
            channel=self.channel,
            resize=self.resize,
            number=index,
            allow_empty=True,
            nonfinite=self.nonfinite,
        )

    def reset(
        self, key_image: np.ndarray, key_mask: np.ndarray, *, index: int | None = None
    ) -> np.ndarray:
        return self._read(key_image, index)

    def step(self, image: np.ndarray, *, index: int | None = None) -> np.ndarray:
        return self._read(image, index)

    def correct(self, matte: np.ndarray) -> None:
        """Given masks are never replaced by mattes."""
