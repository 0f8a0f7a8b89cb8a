"""Command-line flags generated from config dataclasses (parameters defined once)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any

from vfxmatte.config import ParamSpec, param_specs, validate_value

__all__ = ["add_config_arguments", "config_from_args", "flag_name"]


def flag_name(prefix: str, name: str) -> str:
    """``("flow.", "work_long_side")`` -> ``"--flow.work-long-side"``."""
    return f"--{prefix}{name.replace('_', '-')}"


def _dest(prefix: str, name: str) -> str:
    return f"{prefix}{name}".replace(".", "__")


def _help(spec: ParamSpec) -> str:
    extra = [f"default: {spec.default}"]
    if spec.min is not None or spec.max is not None:
        extra.append(f"range: [{spec.min}, {spec.max}]")
    return f"{spec.help} ({'; '.join(extra)})"


def add_config_arguments(
    parser: argparse.ArgumentParser | Any,
    config_cls: type,
    prefix: str = "",
    aliases: dict[str, str] | None = None,
) -> None:
    """Add one flag per field of ``config_cls`` (nested dataclasses get ``a.b.`` prefixes).

    ``aliases`` maps a dotted field name (``"engine.on_error"``) to extra option
    strings (``"--on-error"``; several separated by spaces). Defaults are left
    ``None`` so that :func:`config_from_args` can tell which flags the user gave
    and layer them over a YAML config.
    """
    aliases = aliases or {}
    group = parser.add_argument_group(prefix.rstrip(".") or config_cls.__name__)
    defaults = config_cls()
    for spec in param_specs(config_cls):
        current = getattr(defaults, spec.name)
        if dataclasses.is_dataclass(current):
            add_config_arguments(parser, type(current), f"{prefix}{spec.name}.", aliases)
            continue
        kwargs: dict[str, Any] = {"dest": _dest(prefix, spec.name), "default": None}
        if spec.type is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = spec.type if spec.type in (int, float, str) else str
            kwargs["metavar"] = spec.type.__name__.upper() if not spec.choices else None
            if spec.choices:
                kwargs["choices"] = spec.choices
        extra = aliases.get(f"{prefix}{spec.name}", "").split()
        group.add_argument(flag_name(prefix, spec.name), *extra, help=_help(spec), **kwargs)


def config_from_args(
    config_cls: type, args: argparse.Namespace, prefix: str = "", base: Any = None
) -> Any:
    """``base`` (or defaults) with every flag the user gave applied and validated."""
    config = base if base is not None else config_cls()
    changes: dict[str, Any] = {}
    for spec in param_specs(config_cls):
        current = getattr(config, spec.name)
        if dataclasses.is_dataclass(current):
            changes[spec.name] = config_from_args(
                type(current), args, f"{prefix}{spec.name}.", current
            )
            continue
        value = getattr(args, _dest(prefix, spec.name), None)
        if value is not None:
            changes[spec.name] = validate_value(spec, value, where=prefix)
    return dataclasses.replace(config, **changes)
