"""The configuration schema as JSON: every option of :class:`PipelineConfig` with its UI.

Hosts that must not import vfxmatte (Nuke runs its own Python and libtorch) build
their controls from this data instead of from the dataclasses. It is what the
worker's ``schema`` request returns and what ``vfxmatte worker --schema`` prints;
the Nuke plugin ships a copy (``plugins/nuke/vfxmatte_nuke/schema.json``).

Shape::

    {"schema": 1, "vfxmatte": "0.1.0", "digest": "3f2a...",
     "sections": [{"key": "", "title": "PipelineConfig", "help": "..."},
                  {"key": "matte.classical", "title": "classical", "help": "..."}, ...],
     "params": [{"key": "matte.classical.band_fraction", "section": "matte.classical",
                 "name": "band_fraction", "type": "float", "default": 0.02,
                 "help": "...", "choices": null, "min": 0.0, "max": 1.0, "path": false}, ...]}

``digest`` depends on the sections and params only (not on the version string), so a
host can tell whether its copy still describes the worker it talks to.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

from vfxmatte import __version__
from vfxmatte.config import param_specs

__all__ = ["PATH_KEYS", "SCHEMA_VERSION", "config_schema", "is_path_key", "schema_digest"]

#: Version of the JSON layout above (not of the options it lists).
SCHEMA_VERSION = 1

#: Options that name a file or a file pattern (a file browser in a UI).
PATH_KEYS = frozenset({"plate", "mask", "output", "guidance", "guidance_output"})
#: ... and so do string options whose name ends like this.
_PATH_SUFFIXES = ("_path", "_file", "_dir", "checkpoint", "weights", "ocio")
_TYPE_NAMES = {str: "str", int: "int", float: "float", bool: "bool"}


def is_path_key(key: str) -> bool:
    """Whether the string option ``key`` (dotted) names a file, a folder or a pattern."""
    return key in PATH_KEYS or key.rsplit(".", 1)[-1].endswith(_PATH_SUFFIXES)


def _title(cls: type) -> str:
    doc = (cls.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else ""


def _walk(cls: type, prefix: str, sections: list[dict[str, Any]], params: list[dict[str, Any]]):
    defaults = cls()
    for spec in param_specs(cls):
        key = prefix + spec.name
        current = getattr(defaults, spec.name)
        if dataclasses.is_dataclass(current):
            sections.append({"key": key, "title": spec.name, "help": _title(type(current))})
            _walk(type(current), key + ".", sections, params)
            continue
        if spec.type not in _TYPE_NAMES:
            raise TypeError(
                f"Option '{key}' has type {spec.type!r}; the schema knows str, int, float, bool."
            )
        params.append(
            {
                "key": key,
                "section": prefix.rstrip("."),
                "name": spec.name,
                "type": _TYPE_NAMES[spec.type],
                "default": spec.default,
                "help": spec.help,
                "choices": list(spec.choices) if spec.choices is not None else None,
                "min": spec.min,
                "max": spec.max,
                "path": spec.type is str and is_path_key(key),
            }
        )


def schema_digest(body: dict[str, Any]) -> str:
    """A short hash of a schema's ``sections`` and ``params``."""
    canonical = {"sections": body["sections"], "params": body["params"]}
    text = json.dumps(canonical, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def config_schema(config_cls: type | None = None) -> dict[str, Any]:
    """The JSON-ready schema of ``config_cls`` (default :class:`PipelineConfig`)."""
    if config_cls is None:
        from vfxmatte.engine.config import PipelineConfig

        config_cls = PipelineConfig
    sections: list[dict[str, Any]] = [
        {"key": "", "title": config_cls.__name__, "help": _title(config_cls)}
    ]
    params: list[dict[str, Any]] = []
    _walk(config_cls, "", sections, params)
    body = {"sections": sections, "params": params}
    return {
        "schema": SCHEMA_VERSION,
        "vfxmatte": __version__,
        "digest": schema_digest(body),
        **body,
    }
