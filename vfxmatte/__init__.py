"""vfxmatte: production mattes for VFX plates.

Plate + coarse first-frame mask -> soft alpha, straight foreground and
premultiplied scene-linear RGBA, frame by frame. See ``README.md``.
"""

from __future__ import annotations

from vfxmatte.errors import (
    BackendUnavailableError,
    ConfigError,
    DeviceError,
    InputError,
    MissingFramesError,
    VfxMatteError,
    WeightsError,
)

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "DeviceError",
    "InputError",
    "MissingFramesError",
    "VfxMatteError",
    "WeightsError",
    "__version__",
]
