"""The nodes inside the VfxMatte Group, described once for Python and script text.

::

    plate (Input 0) ──────────┐
                              ├─ show (Switch: which = parent.show_result) ── Output1
    result (Read of the matte)┘
    mask (Input 1)  (read by the Process button only)

The Read's file and frame range are expressions on the Group's own knobs
(``result_file``, ``result_first``, ``result_last``), so Process only sets knobs:
that works the same for a Group and for a gizmo (whose inner nodes are reloaded
from the ``.gizmo`` file when a script opens).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "CHILDREN",
    "HELP",
    "MASK_INPUT",
    "PLATE_INPUT",
    "RESULT_READ",
    "TILE_COLOR",
    "ChildNode",
]

HELP = (
    "VfxMatte: plate + keyframe mask -> soft alpha, straight foreground and premultiplied "
    "scene-linear RGBA. Runs vfxmatte in a separate worker process (see the README, section Nuke)."
)
TILE_COLOR = 0x3D7AB8FF
PLATE_INPUT = "plate"
MASK_INPUT = "mask"
RESULT_READ = "result"


@dataclass(frozen=True)
class ChildNode:
    """One node inside the Group: class, name, knob values, expressions, inputs by name."""

    node_class: str
    name: str
    knobs: tuple[tuple[str, Any], ...] = ()
    expressions: tuple[tuple[str, str], ...] = ()
    inputs: tuple[str, ...] = ()
    xpos: int = 0
    ypos: int = 0


#: In creation order: Input nodes are numbered in this order (plate 0, mask 1).
CHILDREN = (
    ChildNode("Input", PLATE_INPUT, knobs=(("number", 0),), xpos=0, ypos=0),
    ChildNode("Input", MASK_INPUT, knobs=(("number", 1),), xpos=330, ypos=0),
    ChildNode(
        "Read",
        RESULT_READ,
        knobs=(
            ("file", "[value parent.result_file]"),
            ("raw", True),
            ("on_error", "black"),
        ),
        expressions=(
            ("first", "parent.result_first"),
            ("last", "parent.result_last"),
            ("origfirst", "parent.result_first"),
            ("origlast", "parent.result_last"),
        ),
        xpos=165,
        ypos=0,
    ),
    ChildNode(
        "Switch",
        "show",
        expressions=(("which", "parent.show_result"),),
        inputs=(PLATE_INPUT, RESULT_READ),
        xpos=0,
        ypos=150,
    ),
    ChildNode("Output", "Output1", inputs=("show",), xpos=0, ypos=260),
)
