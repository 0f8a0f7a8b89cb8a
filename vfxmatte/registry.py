"""Backends registered by name and imported only when used.

Listing or configuring backends never imports sam2, spconv or dask: an entry
names its implementation as ``"module:attribute"`` and the extra that installs
its optional dependency.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any

from vfxmatte.errors import BackendUnavailableError, ConfigError, closest_hint

__all__ = ["BackendEntry", "Registry"]


@dataclass(frozen=True)
class BackendEntry:
    """One backend of a stage."""

    name: str
    target: str
    help: str
    extra: str | None = None


class Registry:
    """The backends of one pipeline stage."""

    def __init__(self, stage: str, entries: list[BackendEntry]) -> None:
        self.stage = stage
        self._entries = {entry.name: entry for entry in entries}

    def names(self) -> tuple[str, ...]:
        return tuple(self._entries)

    def entry(self, name: str) -> BackendEntry:
        try:
            return self._entries[name]
        except KeyError:
            raise ConfigError(
                f"Unknown {self.stage} backend '{name}'; valid: {', '.join(self._entries)}."
                + closest_hint(name, self._entries)
            ) from None

    def load(self, name: str) -> Any:
        """Import and return the backend's class or factory.

        Raises:
            ConfigError: unknown name.
            BackendUnavailableError: its optional dependency is missing, naming the extra.
        """
        entry = self.entry(name)
        module_name, _, attribute = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            extra = f" pip install 'vfxmatte[{entry.extra}]'" if entry.extra else ""
            raise BackendUnavailableError(
                f"The {self.stage} backend '{name}' cannot be used: {exc}.{extra}"
            ) from exc
        return getattr(module, attribute)
