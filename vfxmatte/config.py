"""Parameters defined once: config dataclass fields that carry their own UI.

A stage's config is a ``@dataclass`` whose fields are made with :func:`param`.
Each field carries its default, help text, choices and numeric range; the CLI
flags, YAML keys, ComfyUI inputs and Nuke knobs are generated from them (see
:mod:`vfxmatte.cli`). Validation of a value against its field lives here too.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from vfxmatte.errors import ConfigError, closest_hint

__all__ = ["ParamSpec", "param", "param_specs", "validate_value"]


@dataclass(frozen=True)
class ParamSpec:
    """What a config field tells every front end about itself."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    min: float | None = None
    max: float | None = None


def param(
    default: Any,
    help: str,
    *,
    choices: Sequence[Any] | None = None,
    min: float | None = None,
    max: float | None = None,
) -> Any:
    """A dataclass field with its help, choices and range attached.

    >>> @dataclass
    ... class C:
    ...     radius: int = param(3, "Dilation radius in pixels.", min=0, max=64)
    """
    meta = {
        "help": help,
        "choices": tuple(choices) if choices is not None else None,
        "min": min,
        "max": max,
    }
    if isinstance(default, (list, dict, set)):
        return dataclasses.field(default_factory=lambda: type(default)(default), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


_TYPES = {"int": int, "float": float, "str": str, "bool": bool}


def _field_type(f: dataclasses.Field, default: Any) -> type:
    t = f.type if isinstance(f.type, type) else _TYPES.get(str(f.type).split("|")[0].strip())
    if t is None:
        t = type(default) if default is not None else str
    return t


def param_specs(config_cls: type) -> list[ParamSpec]:
    """The :class:`ParamSpec` of every field of a config dataclass, in order."""
    specs = []
    for f in dataclasses.fields(config_cls):
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = None
        specs.append(
            ParamSpec(
                name=f.name,
                type=_field_type(f, default),
                default=default,
                help=f.metadata.get("help", ""),
                choices=f.metadata.get("choices"),
                min=f.metadata.get("min"),
                max=f.metadata.get("max"),
            )
        )
    return specs


def validate_value(spec: ParamSpec, value: Any, *, where: str = "") -> Any:
    """Coerce ``value`` to the field's type and check choices and range.

    Raises:
        ConfigError: naming the option, the value found and what is allowed.
    """
    label = f"{where}{spec.name}"
    if value is None:
        return None
    try:
        if spec.type is bool and isinstance(value, str):
            low = value.strip().lower()
            if low not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(value)
            value = low in ("1", "true", "yes", "on")
        elif spec.type in (int, float, str, bool):
            if spec.type is int and isinstance(value, float) and not value.is_integer():
                raise ValueError(value)
            value = spec.type(value)
    except (TypeError, ValueError):
        raise ConfigError(
            f"Option '{label}' expects a {spec.type.__name__}, got {value!r}."
        ) from None
    if spec.choices is not None and value not in spec.choices:
        options = ", ".join(map(str, spec.choices))
        raise ConfigError(
            f"Option '{label}' got {value!r}; valid choices: {options}."
            + closest_hint(str(value), map(str, spec.choices))
        )
    if spec.min is not None and value < spec.min or spec.max is not None and value > spec.max:
        raise ConfigError(
            f"Option '{label}' got {value!r}; it must lie in [{spec.min}, {spec.max}]."
        )
    return value
