"""ComfyUI widgets generated from vfxmatte's config dataclasses (parameters defined once).

Every option a node shows is a :func:`vfxmatte.config.param` field: its default,
range, choices and help become the widget's default, min/max, combo list and
tooltip. A widget's name is the option's dotted key relative to the node's root
with dots written as underscores (``matte.classical.band_fraction`` ->
``matte_classical_band_fraction``); the tooltip names the YAML/CLI key. Values
go back through :func:`vfxmatte.config.config_from_dict`, so a node validates
exactly as the CLI and YAML do, with the same error text.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from vfxmatte.config import ParamSpec, config_from_dict, param_specs, validate_value
from vfxmatte.errors import VfxMatteError

__all__ = [
    "Widget",
    "build_config",
    "config_class_at",
    "config_widgets",
    "entry_spec",
    "file_fingerprint",
    "has_option",
    "input_entry",
    "input_fingerprint",
    "nested",
    "validate_widgets",
    "widget_values",
]

_INT_LIMIT = 2**31 - 1
_FLOAT_LIMIT = 1e9


@dataclass(frozen=True)
class Widget:
    """One node input made from a config field."""

    name: str  # the ComfyUI input name
    key: str  # the full dotted config key, e.g. "matte.classical.band_fraction"
    spec: ParamSpec


def _is_section(spec: ParamSpec) -> bool:
    return dataclasses.is_dataclass(spec.default) and not isinstance(spec.default, type)


def config_class_at(config_cls: type, key: str) -> type | None:
    """The dataclass of the section ``key`` (``"matte.network"``), or None if there is none."""
    current: type = config_cls
    for part in filter(None, key.split(".")):
        spec = next((s for s in param_specs(current) if s.name == part), None)
        if spec is None or not _is_section(spec):
            return None
        current = type(spec.default)
    return current


def has_option(config_cls: type, key: str) -> bool:
    """Whether ``key`` (``"matte.network.weights"``) is an option or section of ``config_cls``."""
    section, _, name = key.rpartition(".")
    parent = config_class_at(config_cls, section)
    return parent is not None and any(s.name == name for s in param_specs(parent))


def _matches(key: str, patterns: Iterable[str]) -> bool:
    return any(key == p or key.startswith(p + ".") for p in patterns)


def config_widgets(
    config_cls: type,
    prefix: str = "",
    *,
    sections: Sequence[str] | None = None,
    exclude: Iterable[str] = (),
    rename: Mapping[str, str] | None = None,
    choices: Mapping[str, Sequence[Any]] | None = None,
    defaults: Mapping[str, Any] | None = None,
) -> list[Widget]:
    """The widgets of every field of ``config_cls`` (nested sections flattened), in order.

    Args:
        config_cls: the dataclass at ``prefix`` (``PipelineConfig`` with ``""``,
            ``Sam2PropagateConfig`` with ``"propagate.sam2."``).
        sections: relative keys to keep (with everything under them); None keeps all.
        exclude: relative keys to leave out (with everything under them).
        rename: relative key -> input name, where the generated one would mislead.
        choices: relative key -> a narrower list of choices.
        defaults: relative key -> another default (e.g. a host-specific one).
    """
    rename, choices, defaults = rename or {}, choices or {}, defaults or {}
    exclude = tuple(exclude)
    widgets: list[Widget] = []

    def walk(cls: type, relative: str) -> None:
        for spec in param_specs(cls):
            key = relative + spec.name
            if _matches(key, exclude):
                continue
            if _is_section(spec):
                walk(type(spec.default), key + ".")
                continue
            if sections is not None and not _matches(key, sections):
                continue
            if key in choices:
                spec = dataclasses.replace(spec, choices=tuple(choices[key]))
            if key in defaults:
                spec = dataclasses.replace(spec, default=defaults[key])
            name = rename.get(key, key.replace(".", "_"))
            widgets.append(Widget(name, prefix + key, spec))

    walk(config_cls, "")
    names = [w.name for w in widgets]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise RuntimeError(f"Widget names made from {config_cls.__name__} clash: {duplicated}.")
    return widgets


def _float_step(default: float) -> float:
    if not default:
        return 0.001
    return min(0.1, 10.0 ** (math.floor(math.log10(abs(default))) - 1))


def input_entry(widget: Widget) -> tuple[Any, ...]:
    """The ComfyUI ``INPUT_TYPES`` entry of a widget: ``(TYPE, {options})``.

    Choices become a combo (``([choices], {options})``); floats are not rounded by
    the front end (``round: False``), so small values such as 1e-5 survive.
    """
    spec = widget.spec
    tooltip = f"{spec.help} (YAML/CLI: {widget.key})"
    options: dict[str, Any] = {"default": spec.default, "tooltip": tooltip}
    if spec.choices is not None:
        choices = [str(c) for c in spec.choices]
        options["default"] = str(spec.default)
        return (choices, options)
    if spec.type is bool:
        return ("BOOLEAN", options)
    if spec.type is int:
        low = int(spec.min) if spec.min is not None else -_INT_LIMIT
        high = int(spec.max) if spec.max is not None else _INT_LIMIT
        options.update(min=low, max=high, step=1)
        return ("INT", options)
    if spec.type is float:
        low = float(spec.min) if spec.min is not None else -_FLOAT_LIMIT
        high = float(spec.max) if spec.max is not None else _FLOAT_LIMIT
        options.update(min=low, max=high, step=_float_step(float(spec.default)), round=False)
        return ("FLOAT", options)
    options["multiline"] = False
    return ("STRING", options)


def entry_spec(name: str, entry: tuple[Any, ...]) -> ParamSpec | None:
    """A :class:`ParamSpec` for a hand-written widget entry (None for an input slot).

    Lets :func:`vfxmatte.config.validate_value` check the node's own widgets the
    way it checks config options (ComfyUI leaves all checks to ``VALIDATE_INPUTS``).
    """
    kind, options = entry[0], entry[1] if len(entry) > 1 else {}
    if isinstance(kind, list):
        return ParamSpec(name, str, options.get("default"), "", choices=tuple(kind))
    types = {"INT": int, "FLOAT": float, "STRING": str, "BOOLEAN": bool}
    if kind not in types:
        return None
    return ParamSpec(
        name,
        types[kind],
        options.get("default"),
        "",
        min=options.get("min"),
        max=options.get("max"),
    )


def widget_values(widgets: Iterable[Widget], values: Mapping[str, Any]) -> dict[str, Any]:
    """``{dotted key: value}`` for every widget with a value in ``values`` (None skipped).

    Values are checked and coerced by :func:`vfxmatte.config.validate_value`.

    Raises:
        ConfigError: a bad value, with the library's message.
    """
    out: dict[str, Any] = {}
    for widget in widgets:
        value = values.get(widget.name)
        if value is not None:
            out[widget.key] = validate_value(
                widget.spec, value, where=widget.key[: -len(widget.spec.name)]
            )
    return out


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """``{"a.b.c": v}`` -> ``{"a": {"b": {"c": v}}}``."""
    out: dict[str, Any] = {}
    for key, value in flat.items():
        node = out
        *parents, last = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = value
    return out


def build_config(config_cls: type, flat: Mapping[str, Any]) -> Any:
    """``config_cls`` with the dotted options in ``flat`` applied and validated.

    Raises:
        ConfigError: an unknown key (with the closest valid one) or a bad value.
    """
    return config_from_dict(config_cls, nested(flat))


def validate_widgets(
    widgets: Iterable[Widget], values: Mapping[str, Any], config_cls: type | None = None
) -> bool | str:
    """``True``, or the library's error text for the widget values given (for ``VALIDATE_INPUTS``).

    With ``config_cls``, the values are also built into a config, which runs the
    checks that involve several options (e.g. SAM 2's image size a multiple of 32).
    """
    try:
        flat = widget_values(widgets, values)
        if config_cls is not None:
            build_config(config_cls, flat)
    except VfxMatteError as exc:
        return str(exc)
    return True


def file_fingerprint(paths: Iterable[str]) -> str:
    """A hash of the names, sizes and modification times of files (for ``IS_CHANGED``).

    Missing files count too, so creating one changes the hash. Contents are not
    read: a shot of 4K EXRs is fingerprinted in milliseconds.
    """
    digest = hashlib.sha256()
    for path in paths:
        try:
            stat = os.stat(path)
            digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{path}\0missing\n".encode())
    return digest.hexdigest()


def input_fingerprint(files: Callable[[], Iterable[str]]) -> str:
    """:func:`file_fingerprint` of the files ``files()`` lists, for ``IS_CHANGED``.

    A path the node refuses (outside ComfyUI's folders, a bad pattern) is not
    looked at: its error text is the fingerprint, and ``VALIDATE_INPUTS`` reports it.
    """
    try:
        return file_fingerprint(files())
    except VfxMatteError as exc:
        return f"refused: {exc}"
