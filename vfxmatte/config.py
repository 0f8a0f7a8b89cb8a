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

__all__ = [
    "ParamSpec",
    "apply_overrides",
    "config_from_dict",
    "config_to_dict",
    "load_config",
    "param",
    "param_specs",
    "validate_fields",
    "validate_value",
]


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


def _is_config(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def config_from_dict(config_cls: type, data: dict[str, Any] | None, *, where: str = "") -> Any:
    """Build ``config_cls`` from a (nested) mapping such as a parsed YAML file.

    Nested dataclass fields take nested mappings. Every value is validated with
    :func:`validate_value`.

    Raises:
        ConfigError: for an unknown key (with the closest valid name) or a bad value.
    """
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"Section '{where or 'top'}' must be a mapping, got {data!r}.")
    data = dict(data or {})
    fields = {f.name: f for f in dataclasses.fields(config_cls)}
    for key in data:
        if key not in fields:
            raise ConfigError(
                f"Unknown option '{where}{key}'; valid here: {', '.join(fields)}."
                + closest_hint(key, fields)
            )
    default = config_cls()
    kwargs: dict[str, Any] = {}
    specs = {s.name: s for s in param_specs(config_cls)}
    for name, value in data.items():
        current = getattr(default, name)
        if _is_config(current):
            kwargs[name] = config_from_dict(type(current), value, where=f"{where}{name}.")
        else:
            kwargs[name] = validate_value(specs[name], value, where=where)
    return config_cls(**kwargs)


def config_to_dict(config: Any) -> dict[str, Any]:
    """The (nested) mapping of a config, the inverse of :func:`config_from_dict`."""
    return dataclasses.asdict(config)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Apply ``--set a.b.c=value`` strings to a nested mapping (YAML-typed values).

    Raises:
        ConfigError: for an override without ``=``.
    """
    import yaml

    out = dict(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(
                f"--set expects KEY=VALUE (e.g. matte.backend=classical), got {item!r}."
            )
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.get(part)
            node[part] = dict(child) if isinstance(child, dict) else {}
            node = node[part]
        node[parts[-1]] = yaml.safe_load(raw) if raw.strip() else ""
    return out


def load_config(
    config_cls: type, path: str | None = None, overrides: Sequence[str] = ()
) -> Any:
    """Load ``config_cls`` from a YAML file (optional) plus ``--set`` overrides.

    Raises:
        ConfigError: unreadable YAML, unknown keys, bad values.
    """
    import yaml

    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, encoding="utf-8") as fh:
                data = yaml.safe_load(fh) or {}
        except OSError as exc:
            raise ConfigError(f"Cannot read the config file '{path}': {exc.strerror}.") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"The config file '{path}' is not valid YAML: {exc}.") from None
        if not isinstance(data, dict):
            raise ConfigError(f"The config file '{path}' must hold a mapping of options.")
    return config_from_dict(config_cls, apply_overrides(data, overrides))


def validate_fields(config: Any, where: str = "") -> None:
    """Validate and coerce every field of a config dataclass in place.

    Called from ``__post_init__`` so that a config built in Python is checked
    like one built from YAML or flags.
    """
    for spec in param_specs(type(config)):
        setattr(config, spec.name, validate_value(spec, getattr(config, spec.name), where=where))
