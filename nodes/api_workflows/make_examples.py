"""Write the example workflows, in ComfyUI's API and UI formats, from the node definitions.

    python nodes/api_workflows/make_examples.py

API format (``POST /prompt``): ``nodes/api_workflows/<name>_api.json``. UI format (what
the front end opens): ``nodes/example_workflows/<name>.json``, the folder ComfyUI lists
under Templates; it holds UI-format files only, each with a thumbnail ``<name>.jpg``
(``python tests/hosts/comfyui_real.py --thumbnails`` renders them from the real run).

Each workflow is declared once below: its nodes, the widget values that differ
from the defaults, and its links. Every other widget gets the default its node
declares, so the files list every input, as ComfyUI's own "Save (API)" does.
The tests (``tests/nodes``) check that the files are up to date; run this again
after a config option is added or changed.

The paths are relative to ComfyUI's input and output folders. To try the
examples, write the synthetic demo shot there first::

    vfxmatte synth ComfyUI/input/vfxmatte_demo --objects 2
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

__all__ = ["EXAMPLES", "WIDGET_TYPES", "api_workflow", "load_pack", "main", "ui_workflow"]

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE.parent / "example_workflows"
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")

# id, node id, title, widget values, links {input: (source id, output slot)}, position
EXAMPLES: dict[str, list[tuple[int, str, str, dict[str, Any], dict[str, tuple[int, int]], tuple]]]
EXAMPLES = {
    # (a) first-frame mask -> video matte -> EXR sequence
    "matte_shot": [
        (1, "VfxMatte.OpenPlate", "Plate", {"plate": "vfxmatte_demo/plate/plate.####.exr"}, {},
         (40, 80)),
        (2, "VfxMatte.ReadMask", "First-frame mask", {"path": "vfxmatte_demo/mask.png"}, {},
         (40, 420)),
        (3, "VfxMatte.MatteShot", "Matte the shot to EXR",
         {"output": "vfxmatte_demo_matte/shot.####.exr",
          "output_options_kinds": "rgba,alpha,fg", "output_options_preview": "checker"},
         {"plate": (1, 0), "key_mask": (2, 0)}, (460, 80)),
    ],
    # (b) panoptic layers from a label map
    "panoptic_layers": [
        (1, "VfxMatte.OpenPlate", "Plate", {"plate": "vfxmatte_demo/plate/plate.####.exr",
                                            "frames": "1001"}, {}, (40, 80)),
        (2, "VfxMatte.ReadFrames", "Frame 1001, scene-linear", {"colourspace": "lin_rec709"},
         {"plate": (1, 0)}, (420, 80)),
        (3, "VfxMatte.ReadLabelMap", "Label map", {"path": "vfxmatte_demo/gt/labels.1001.png"},
         {}, (420, 320)),
        (4, "VfxMatte.PanopticMatte", "Soft layer per segment",
         {"image_colourspace": "lin_rec709"}, {"image": (2, 0), "labels": (3, 0)}, (800, 80)),
        (5, "VfxMatte.WritePanoptic", "Layers + Cryptomatte EXR",
         {"output": "vfxmatte_demo_panoptic/panoptic.####.exr", "frame": 1001},
         {"panoptic": (4, 4)}, (1200, 80)),
    ],
}  # fmt: skip


def load_pack(folder: Path = HERE.parent) -> ModuleType:
    """Import the node pack as ComfyUI does: the folder as a package under a path-made name."""
    name = str(folder).replace(".", "_x_")
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot import the node pack at {folder}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def is_widget(entry: tuple) -> bool:
    """Whether an ``INPUT_TYPES`` entry is a widget (else an input slot)."""
    kind = entry[0]
    return isinstance(kind, list) or kind in WIDGET_TYPES


def _inputs(cls: type) -> list[tuple[str, tuple]]:
    types = cls.INPUT_TYPES()
    return [*types.get("required", {}).items(), *types.get("optional", {}).items()]


def _widgets(cls: type, values: dict[str, Any]) -> dict[str, Any]:
    widgets = {name: entry for name, entry in _inputs(cls) if is_widget(entry)}
    unknown = sorted(set(values) - set(widgets))
    if unknown:
        raise KeyError(f"{cls.__name__} has no widget(s) {unknown}.")
    return {name: values.get(name, entry[1].get("default")) for name, entry in widgets.items()}


def api_workflow(pack: ModuleType, nodes: list) -> dict[str, Any]:
    """The workflow in API format (``POST /prompt``'s ``prompt``)."""
    out = {}
    for node_id, class_type, title, values, links, _ in nodes:
        cls = pack.NODE_CLASS_MAPPINGS[class_type]
        widgets = _widgets(cls, values)
        inputs: dict[str, Any] = {}
        for name, _entry in _inputs(cls):
            if name in widgets:
                inputs[name] = widgets[name]
            elif name in links:
                source, slot = links[name]
                inputs[name] = [str(source), slot]
        out[str(node_id)] = {"class_type": class_type, "inputs": inputs, "_meta": {"title": title}}
    return out


def ui_workflow(pack: ModuleType, nodes: list) -> dict[str, Any]:
    """The workflow in the UI (LiteGraph) format that ComfyUI's front end saves and loads."""
    classes = {node[0]: pack.NODE_CLASS_MAPPINGS[node[1]] for node in nodes}
    links = []  # [link id, source id, source slot, target id, target slot, type]
    for target, _, _, _, inputs, _ in nodes:
        slots = [n for n, e in _inputs(classes[target]) if not is_widget(e)]
        for name, (source, slot) in inputs.items():
            kind = classes[source].RETURN_TYPES[slot]
            links.append([len(links) + 1, source, slot, target, slots.index(name), kind])
    ui_nodes = []
    for order, (node_id, class_type, title, values, _, pos) in enumerate(nodes):
        cls = pack.NODE_CLASS_MAPPINGS[class_type]
        slots = [(n, e[0]) for n, e in _inputs(cls) if not is_widget(e)]
        widgets = _widgets(cls, values)
        ui_nodes.append(
            {
                "id": node_id,
                "type": class_type,
                "title": title,
                "pos": list(pos),
                "size": [360, 60 + 26 * (len(widgets) + len(slots))],
                "flags": {},
                "order": order,
                "mode": 0,
                "inputs": [
                    {
                        "name": name,
                        "type": kind,
                        "link": next((k[0] for k in links if k[3] == node_id and k[4] == i), None),
                    }
                    for i, (name, kind) in enumerate(slots)
                ],
                "outputs": [
                    {
                        "name": name,
                        "type": kind,
                        "links": [k[0] for k in links if k[1] == node_id and k[2] == i],
                        "slot_index": i,
                    }
                    for i, (name, kind) in enumerate(
                        zip(cls.RETURN_NAMES, cls.RETURN_TYPES, strict=True)
                    )
                ],
                "properties": {"Node name for S&R": class_type},
                "widgets_values": list(widgets.values()),
            }
        )
    return {
        "last_node_id": max(n[0] for n in nodes),
        "last_link_id": len(links),
        "nodes": ui_nodes,
        "links": links,
        "groups": [],
        "config": {},
        "extra": {},
        "version": 0.4,
    }


def render(workflow: dict[str, Any]) -> str:
    """The file text of a workflow."""
    return json.dumps(workflow, indent=2) + "\n"


def main() -> None:
    pack = load_pack()
    for name, nodes in EXAMPLES.items():
        (HERE / f"{name}_api.json").write_text(render(api_workflow(pack, nodes)), encoding="utf-8")
        ui = TEMPLATES / f"{name}.json"
        ui.write_text(render(ui_workflow(pack, nodes)), encoding="utf-8")
        print(f"wrote {name}_api.json and {ui.relative_to(HERE.parent)}")


if __name__ == "__main__":
    main()
