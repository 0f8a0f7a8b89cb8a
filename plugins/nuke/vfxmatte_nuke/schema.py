"""The option schema the knobs are made from: a JSON copy shipped with the plugin.

``schema.json`` beside this file is what ``vfxmatte worker --schema`` prints (see
:mod:`vfxmatte.worker.schema`). Shipping it means that creating a node needs no
worker process and works in any Nuke; the worker's ``hello`` answer carries the
digest of its own schema, and the Process button warns when the two differ
(options added since keep their defaults until the node is recreated).
Regenerate it with::

    vfxmatte worker --write-schema plugins/nuke/vfxmatte_nuke/schema.json
"""

from __future__ import annotations

import json
import os
from typing import Any

from vfxmatte_nuke.errors import PluginError

__all__ = ["SCHEMA_FILE", "SCHEMA_VERSION", "load_schema"]

SCHEMA_FILE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "schema.json")
#: The JSON layout this plugin reads.
SCHEMA_VERSION = 1
_PARAM_FIELDS = ("key", "section", "name", "type", "default", "help", "choices", "min", "max")
_TYPES = ("str", "int", "float", "bool")


def _check(schema: Any, path: str) -> dict[str, Any]:
    if not isinstance(schema, dict) or schema.get("schema") != SCHEMA_VERSION:
        raise PluginError(
            f"'{path}' is not a vfxmatte option schema of layout {SCHEMA_VERSION}; regenerate it "
            "with: vfxmatte worker --write-schema " + path
        )
    for param in schema.get("params", []):
        missing = [f for f in _PARAM_FIELDS if f not in param]
        if missing or param["type"] not in _TYPES:
            raise PluginError(
                f"'{path}': option {param.get('key', '?')!r} is malformed "
                f"(missing {', '.join(missing) or 'nothing'}, type {param.get('type')!r})."
            )
    return schema


def load_schema(path: str | None = None) -> dict[str, Any]:
    """Read and check a schema file (default: the shipped ``schema.json``).

    Raises:
        PluginError: missing, unreadable or malformed file.
    """
    path = path or SCHEMA_FILE
    try:
        with open(path, encoding="utf-8") as fh:
            schema = json.load(fh)
    except OSError as exc:
        raise PluginError(f"Cannot read the option schema '{path}': {exc.strerror}.") from None
    except ValueError as exc:
        raise PluginError(f"The option schema '{path}' is not valid JSON: {exc}.") from None
    return _check(schema, path)
