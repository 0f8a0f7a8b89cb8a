"""The plugin's errors: one sentence for the artist, shown in a dialog."""

from __future__ import annotations

__all__ = ["PluginError", "WorkerError"]


class PluginError(Exception):
    """Something the artist can fix: a missing input, an unsaved script, a bad knob."""


class WorkerError(PluginError):
    """The worker answered with an ``error`` message, or stopped.

    ``error`` is the worker's error type (``ConfigError``, ``InputError``,
    ``ProtocolError``, ...; ``WorkerStopped`` when the process ended).
    """

    def __init__(self, message: str, error: str = "WorkerError") -> None:
        super().__init__(message)
        self.error = error
