"""The VfxMatte node as Nuke script text (a paste-able Group or a ``.gizmo`` file).

Made from the same :func:`~vfxmatte_nuke.knobs.knob_list` as the Python-built
Group. Studios that distribute gizmos can write ``VfxMatte.gizmo`` into a
``NUKE_PATH`` folder::

    PYTHONPATH=plugins/nuke python -m vfxmatte_nuke.script --gizmo ~/.nuke/VfxMatte.gizmo

(the buttons still call the plugin, so ``plugins/nuke`` must be on ``NUKE_PATH``
too), and the Group text can be pasted into a node graph as it is.
"""

from __future__ import annotations

import re
from typing import Any, Sequence

from vfxmatte_nuke.graph import CHILDREN, HELP, TILE_COLOR
from vfxmatte_nuke.knobs import KNOB_TYPE_IDS, KnobSpec, knob_list

__all__ = ["group_script", "knob_line", "tcl_word", "value_line", "write_gizmo"]

NUKE_VERSION = "13.0 v1"
_BARE = re.compile(r"^[A-Za-z0-9_.,:/+\-]+$")
_ESCAPES = {
    "\\": "\\\\",
    '"': '\\"',
    "[": "\\[",
    "$": "\\$",
    "{": "\\{",
    "}": "\\}",
    "\n": "\\n",
    "\t": "\\t",
}


def tcl_word(text: Any) -> str:
    """``text`` as one word of Nuke's TCL-like script syntax (quoted when needed).

    Inside double quotes a backslash escapes ``\\ " [ $ { }`` so that nothing is
    substituted or counted as a brace (``]`` alone is literal, as Nuke writes it).
    """
    text = str(text)
    if _BARE.match(text):
        return text
    return '"' + "".join(_ESCAPES.get(c, c) for c in text) + '"'


def _number(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return format(float(value), ".12g")


def knob_line(spec: KnobSpec) -> str:
    """The ``addUserKnob {...}`` line of one knob."""
    parts = [str(KNOB_TYPE_IDS[spec.kind]), tcl_word(spec.name)]
    if spec.kind != "end_group":
        parts += ["l", tcl_word(spec.label)]
    if spec.tooltip:
        parts += ["t", tcl_word(spec.tooltip)]
    if spec.kind not in ("tab", "group", "end_group"):
        parts.append("+STARTLINE" if spec.newline else "-STARTLINE")
    if spec.hidden:
        parts.append("+INVISIBLE")
    if spec.kind == "enum":
        parts += ["M", "{" + " ".join(tcl_word(c) for c in spec.choices) + "}"]
    if spec.kind in ("int", "double") and spec.min is not None and spec.max is not None:
        parts += ["R", _number(spec.min), _number(spec.max)]
    if spec.kind == "button":
        parts += ["T", tcl_word(spec.script)]
    if spec.kind == "text":
        parts += ["T", tcl_word(spec.default or "")]
    if spec.kind == "group":
        parts += ["n", "1"]
    if spec.kind == "end_group":
        parts += ["n", "-1"]
    return "addUserKnob {" + " ".join(parts) + "}"


def value_line(spec: KnobSpec) -> str | None:
    """``name value`` setting a knob's value after its declaration (None: no value)."""
    if spec.kind == "group":
        return f"{spec.name} 0"  # closed
    if not spec.has_value or spec.default is None:
        return None
    if spec.kind in ("bool", "int", "double"):
        return f"{spec.name} {_number(spec.default)}"
    return f"{spec.name} {tcl_word(spec.default)}"


def _children() -> list[str]:
    """The Group's inner nodes; the stack feeds inputs (its top is input 0)."""
    lines: list[str] = []
    for child in CHILDREN:
        lines += [f"push $N{source}" for source in reversed(child.inputs)]
        lines += [f"{child.node_class} {{", f" inputs {len(child.inputs)}"]
        for knob, value in child.knobs:
            word = _number(value) if isinstance(value, (bool, int, float)) else tcl_word(value)
            lines.append(f" {knob} {word}")
        lines += [f" {knob} {{{{{expr}}}}}" for knob, expr in child.expressions]
        lines += [f" name {child.name}", f" xpos {child.xpos}", f" ypos {child.ypos}", "}"]
        lines.append(f"set N{child.name} [stack 0]")
    return lines


def group_script(
    knobs: Sequence[KnobSpec] | None = None, name: str = "VfxMatte1", *, gizmo: bool = False
) -> str:
    """The node as script text: a paste-able Group, or with ``gizmo`` a ``.gizmo`` file.

    ``knobs`` defaults to :func:`~vfxmatte_nuke.knobs.knob_list` of the shipped schema.
    """
    if knobs is None:
        from vfxmatte_nuke.schema import load_schema

        knobs = knob_list(load_schema())
    lines = [f"version {NUKE_VERSION}"]
    if not gizmo:
        lines = ["set cut_paste_input [stack 0]", *lines, "push 0", "push $cut_paste_input"]
    lines += [
        "Gizmo {" if gizmo else "Group {",
        " inputs 2",
        f" name {tcl_word(name)}",
        f" help {tcl_word(HELP)}",
        f" tile_color 0x{TILE_COLOR:08x}",
    ]
    for spec in knobs:
        lines.append(" " + knob_line(spec))
        value = value_line(spec)
        if value is not None:
            lines.append(" " + value)
    lines.append("}")
    lines += [" " + line for line in _children()]
    lines.append("end_group")
    return "\n".join(lines) + "\n"


def write_gizmo(path: str, knobs: Sequence[KnobSpec] | None = None) -> None:
    """Write ``VfxMatte.gizmo`` text to ``path``."""
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(group_script(knobs, "VfxMatte", gizmo=True))


def _main(argv: Sequence[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write the VfxMatte node as Nuke script text.")
    parser.add_argument("--gizmo", metavar="PATH", help="write a .gizmo file to PATH")
    args = parser.parse_args(argv)
    if args.gizmo:
        write_gizmo(args.gizmo)
    else:
        print(group_script(), end="")
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(_main())
