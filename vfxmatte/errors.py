"""The error hierarchy of vfxmatte.

Every error a user can cause derives from :class:`VfxMatteError` and carries one
sentence that says what was expected, what was found and what to do. Hosts (CLI,
ComfyUI, Nuke) catch :class:`VfxMatteError` and show its message without a
traceback.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = [
    "BackendUnavailableError",
    "ConfigError",
    "DeviceError",
    "DiskFullError",
    "InputError",
    "InputOverwriteError",
    "MissingFramesError",
    "OutputError",
    "OutputLocationError",
    "OutputLockedError",
    "SettingsMismatchError",
    "VfxMatteError",
    "WeightsError",
    "closest_hint",
]


class VfxMatteError(Exception):
    """Base class of every error vfxmatte raises on purpose."""


class ConfigError(VfxMatteError, ValueError):
    """An option, a config key or a value is unknown or out of range."""


class InputError(VfxMatteError, ValueError):
    """An input file, frame, mask or array is missing, unreadable or malformed."""


class MissingFramesError(InputError):
    """Frames of a sequence are missing on disk.

    ``frames`` lists the missing frame numbers in order.
    """

    def __init__(self, message: str, frames: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.frames = list(frames)


class BackendUnavailableError(VfxMatteError, ImportError):
    """A backend needs an optional dependency that is not installed."""


class WeightsError(VfxMatteError):
    """A checkpoint is missing, unreadable or does not fit the model."""


class DeviceError(VfxMatteError):
    """A requested compute device is not available."""


class OutputError(VfxMatteError):
    """An output cannot be written as asked; raised before the frame that needed it."""


class InputOverwriteError(OutputError):
    """A path the run would write is one of its inputs (or another output of the run)."""


class OutputLocationError(OutputError, OSError):
    """The output folder or file cannot be written (a file in the way, read-only, ...)."""


class DiskFullError(OutputLocationError):
    """The device holding an output has no space left."""


class OutputLockedError(OutputError):
    """Another run is writing the same frames of the same output."""


class SettingsMismatchError(OutputError):
    """Frames on disk were made with other settings than this run's.

    ``frames`` lists them in order.
    """

    def __init__(self, message: str, frames: Iterable[int] = ()) -> None:
        super().__init__(message)
        self.frames = list(frames)


def closest_hint(name: str, valid: Iterable[str]) -> str:
    """Return ``" Did you mean 'x'?"`` for the closest valid name, or ``""``."""
    match = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.5)
    return f" Did you mean '{match[0]}'?" if match else ""
