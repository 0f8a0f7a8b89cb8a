"""The library's messages in a ComfyUI user's words: widgets, not command-line flags.

The library explains a problem with the CLI's spelling of the option that fixes it
(``Pass --mask-resize``, ``widen --frames``, ``use --executor processes``). In ComfyUI
those are widgets; :func:`widget_words` rewrites each flag into the widget of the
node at hand (``'input_mask_resize'``), or names the node that has it (the plate's
``frames`` are on *Open Plate*). Dotted keys (``propagate.flow.feed=mask``) stay: every
widget's tooltip names its key.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["widget_words"]

#: Options a node takes from its plate handle (Open Plate's widgets) instead.
_PLATE_WIDGETS = {
    "plate": "plate",
    "frames": "frames",
    "input.colourspace": "colourspace",
    "input.ocio": "ocio",
    "input.channels": "channels",
    "input.nonfinite": "nonfinite",
    "input.first_frame": "first_frame",
}
_FLAG = re.compile(r"(?<![\w-])--([a-z][a-z0-9]*(?:[.-][a-z0-9]+)*)")
_PASS = re.compile(r"\b([Pp])ass '([a-z0-9_]+)'")
_USE = re.compile(r"\b([Uu]se|[Ss]et) '([a-z0-9_]+)' (?!to\b)([A-Za-z0-9_.:/-]+)")


def _aliases() -> dict[str, str]:
    """CLI short flag (without ``--``) -> dotted key."""
    try:
        from vfxmatte.cli.matte import ALIASES
    except ImportError:  # pragma: no cover - the CLI is part of the library
        return {}
    return {flag[2:]: key for key, flag in ALIASES.items() if flag.startswith("--")}


def widget_words(text: str, widgets: Iterable[tuple[str, str]] = ()) -> str:
    """``text`` with every CLI flag replaced by the ComfyUI widget that sets it.

    Args:
        text: a library message.
        widgets: ``(dotted key, widget name)`` of the node that reports it.
    """
    names = dict(widgets)
    by_name = set(names.values())
    aliases = _aliases()

    def replace(match: re.Match[str]) -> str:
        flag = match.group(1)
        key = aliases.get(flag, flag.replace("-", "_"))
        if key in names:
            return f"'{names[key]}'"
        if key in _PLATE_WIDGETS:
            return f"'{_PLATE_WIDGETS[key]}' (on the Open Plate node)"
        name = key.replace(".", "_")
        if name in by_name or "." in key or key in aliases.values():
            return f"'{name}'"
        return match.group(0)  # not an option (e.g. a command of another program)

    out = _FLAG.sub(replace, text)
    out = _PASS.sub(lambda m: f"{'T' if m.group(1) == 'P' else 't'}urn on '{m.group(2)}'", out)
    return _USE.sub(
        lambda m: f"{'S' if m.group(1)[0].isupper() else 's'}et '{m.group(2)}' to {m.group(3)}", out
    )
