"""The in-memory frame that readers yield and writers take."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = ["Frame"]


@dataclass
class Frame:
    """One decoded frame of a plate.

    Attributes:
        number: the frame number (the sequence's frame number, or the 0-based
            index of a video frame plus the reader's ``first_frame``).
        pixels: ``H x W x C`` float32 array, scene-linear for EXR/DPX plates and
            as stored (display-referred, in [0,1]) for 8/16-bit and video files.
        channels: the ``C`` channel names, e.g. ``("R", "G", "B")``.
        metadata: attributes carried to the outputs (``framesPerSecond``,
            ``smpte:TimeCode``, ``PixelAspectRatio``, ``oiio:ColorSpace`` ...).
        path: the file the frame came from, when it came from one.
    """

    number: int
    pixels: np.ndarray
    channels: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)
    path: str | None = None

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])
