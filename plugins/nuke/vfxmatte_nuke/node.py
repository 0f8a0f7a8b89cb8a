"""Build the VfxMatte Group with Nuke's Python API (the "vfxmatte" menu's command)."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from vfxmatte_nuke import nuke_api
from vfxmatte_nuke.graph import CHILDREN, HELP, TILE_COLOR
from vfxmatte_nuke.knobs import KnobSpec, knob_list
from vfxmatte_nuke.schema import load_schema

__all__ = ["NODE_NAME", "build_children", "create_node"]

NODE_NAME = "VfxMatte"


def build_children(group: Any) -> dict[str, Any]:
    """Create the nodes of :data:`~vfxmatte_nuke.graph.CHILDREN` inside ``group``."""
    made: dict[str, Any] = {}
    with nuke_api.inside(group):
        for child in CHILDREN:
            knobs = dict(child.knobs)
            if child.node_class == "Input":
                knobs.pop("number", None)  # Nuke numbers Inputs in creation order
            node = nuke_api.create_node(
                child.node_class, name=child.name, xpos=child.xpos, ypos=child.ypos, **knobs
            )
            for knob, expression in child.expressions:
                nuke_api.set_expression(node, knob, expression)
            for index, source in enumerate(child.inputs):
                nuke_api.connect(node, index, made[source])
            made[child.name] = node
    return made


def create_node(
    schema: Mapping[str, Any] | None = None, knobs: Sequence[KnobSpec] | None = None
) -> Any:
    """A new VfxMatte Group after the selected node, with every knob and inner node."""
    if knobs is None:
        knobs = knob_list(schema if schema is not None else load_schema())
    upstream = nuke_api.selected_node()
    group = nuke_api.create_group_here(NODE_NAME)
    nuke_api.set_knob(group, "help", HELP)
    nuke_api.set_knob(group, "tile_color", TILE_COLOR)
    build_children(group)
    for spec in knobs:
        nuke_api.add_knob(group, spec)
    if upstream is not None and upstream is not group:
        nuke_api.connect(group, 0, upstream)  # the selected node feeds the plate input
    return group
