"""The VfxMatte node's knobs, made from the option schema (parameters defined once).

:func:`knob_list` turns the schema (see :mod:`vfxmatte_nuke.schema`) into a list
of :class:`KnobSpec`: a tab per pipeline stage, a closed group per backend's
options, and the plugin's own knobs (Process, Farm, status, worker Python) on the
first tab. The Python-built Group (:mod:`vfxmatte_nuke.node`) and the ``.nk`` /
gizmo text (:mod:`vfxmatte_nuke.script`) are both made from this one list, and
:func:`config_from_values` turns the knobs' values back into the nested option
mapping the worker takes.

Knob types: choices -> Enumeration_Knob, bool -> Boolean_Knob, int -> Int_Knob,
float -> Double_Knob, paths -> File_Knob, other text -> String_Knob.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from vfxmatte_nuke.errors import PluginError

__all__ = [
    "EXCLUDED",
    "KNOB_TYPE_IDS",
    "KnobSpec",
    "config_from_values",
    "knob_list",
    "knob_name",
    "value_knobs",
]

#: Nuke's type number of each knob kind (as in ``addUserKnob {ID name ...}``).
KNOB_TYPE_IDS = {
    "string": 1,
    "file": 2,
    "int": 3,
    "enum": 4,
    "bool": 6,
    "double": 7,
    "tab": 20,
    "group": 20,
    "end_group": 20,
    "button": 22,
    "text": 26,
}
#: Options the node sets itself (from its inputs) or that mean nothing inside Nuke.
EXCLUDED = frozenset({"plate", "mask", "keyframes", "engine.progress"})
#: Labels that say more in Nuke than the option's name.
LABELS = {
    "engine.overwrite": "force full render",
    "output_options": "outputs",
    "output_options.kinds": "output kinds",
    "output": "output file",
}
#: Knob defaults that differ from the option's: the node reads one multi-layer EXR.
NUKE_DEFAULTS = {"output_options.kinds": "multilayer"}
#: Knobs every Nuke node (or a Group) has already; an option must not take their names
#: (nor those of the plugin's own knobs: :func:`knob_list` refuses repeated names).
RESERVED = frozenset(
    "name label help note_font note_font_size note_font_color tile_color gl_color selected "
    "xpos ypos icon indicators disable dope_sheet hide_input cached bookmark postage_stamp "
    "postage_stamp_frame lifetimeStart lifetimeEnd useLifetime lock_connections mapsize "
    "window onCreate onDestroy knobChanged updateUI autolabel panel User Node inputs".split()
)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_BUTTON = "import vfxmatte_nuke.process; vfxmatte_nuke.process.{}()"


@dataclass(frozen=True)
class KnobSpec:
    """One knob: its kind (a key of :data:`KNOB_TYPE_IDS`), name, label and value.

    ``key`` is the dotted option the knob sets ("" for the plugin's own knobs);
    ``script`` is the Python a button runs; ``newline`` starts a new panel row.
    """

    kind: str
    name: str
    label: str = ""
    key: str = ""
    tooltip: str = ""
    default: Any = None
    choices: tuple = ()
    min: float | None = None
    max: float | None = None
    script: str = ""
    newline: bool = True
    hidden: bool = False

    @property
    def has_value(self) -> bool:
        return self.kind in ("string", "file", "int", "enum", "bool", "double")


def knob_name(key: str) -> str:
    """``"matte.classical.band_fraction"`` -> ``"matte_classical_band_fraction"``."""
    return key.replace(".", "_")


def _plain(text: str) -> str:
    return text.replace("``", "'")


def _tooltip(param: Mapping[str, Any]) -> str:
    facts = [f"option {param['key']}", f"default {param['default']!r}"]
    if param["min"] is not None or param["max"] is not None:
        facts.append(f"range {param['min']} to {param['max']}")
    return f"{_plain(param['help'])}\n\n(vfxmatte {'; '.join(facts)})"


def _param_knob(param: Mapping[str, Any]) -> KnobSpec:
    key = param["key"]
    default = NUKE_DEFAULTS.get(key, param["default"])
    common = {
        "name": knob_name(key),
        "label": LABELS.get(key, param["name"].replace("_", " ")),
        "key": key,
        "tooltip": _tooltip(param),
    }
    kind = param["type"]
    if param["choices"]:
        choices = tuple(str(c) for c in param["choices"])
        return KnobSpec("enum", default=str(default), choices=choices, **common)
    if kind == "bool":
        return KnobSpec("bool", default=bool(default), **common)
    if kind in ("int", "float"):
        return KnobSpec(
            "int" if kind == "int" else "double",
            default=default,
            min=param["min"],
            max=param["max"],
            **common,
        )
    return KnobSpec("file" if param.get("path") else "string", default=str(default), **common)


def _main_knobs(schema: Mapping[str, Any]) -> list[KnobSpec]:
    """The plugin's own knobs at the top of the first tab."""
    return [
        KnobSpec(
            "button",
            "process",
            "Process",
            script=_BUTTON.format("on_process"),
            tooltip="Render the inputs the worker cannot read, run the shot in the worker with "
            "progress and cancel, and show the result. Frames already on disk are kept "
            "(resume) unless 'force full render' (engine tab) is on.",
        ),
        KnobSpec(
            "button",
            "farm",
            "Farm...",
            script=_BUTTON.format("on_farm"),
            newline=False,
            tooltip="Render the inputs, write the job's options beside the output and print "
            "the render-farm jobs (vfxmatte farm-split, run in the worker's Python): a "
            "propagation job, then chunks of 'chunk size' frames (engine tab).",
        ),
        KnobSpec(
            "bool",
            "farm_json",
            "JSON job",
            default=False,
            newline=False,
            tooltip="Farm prints a JSON job description (for a submission script) instead of "
            "shell commands.",
        ),
        KnobSpec("text", "status", "", default="Not processed yet."),
        KnobSpec(
            "bool",
            "show_result",
            "show result",
            default=False,
            tooltip="Output the matte (premultiplied RGBA with the fg, matte and confidence "
            "layers) instead of the plate. Process turns it on.",
        ),
        KnobSpec(
            "file",
            "result_file",
            "result",
            default="",
            newline=False,
            tooltip="The multi-layer EXR sequence the node reads; Process sets it.",
        ),
        KnobSpec("int", "result_first", "first", default=1, hidden=True),
        KnobSpec("int", "result_last", "last", default=1, hidden=True),
        KnobSpec(
            "string",
            "vfxmatte_schema",
            "schema",
            default=str(schema.get("digest", "")),
            hidden=True,
            tooltip="Digest of the option schema the knobs were made from.",
        ),
        KnobSpec("text", "div_options", ""),
    ]


_AFTER = {
    "key_frame": [
        KnobSpec(
            "button",
            "key_frame_here",
            "current frame",
            script=_BUTTON.format("on_key_frame_here"),
            newline=False,
            tooltip="Set the key frame to the current frame.",
        ),
        KnobSpec(
            "string",
            "mask_frames",
            "mask frames",
            default="",
            tooltip="More frames at which the 'mask' input is a keyframe that re-anchors "
            "propagation, e.g. '1050 1100' (the mask input is rendered there). Empty: the key "
            "frame only.",
        ),
    ],
}

_WORKER_KNOB = KnobSpec(
    "file",
    "worker_python",
    "worker python",
    default="",
    tooltip="The Python executable of the environment where vfxmatte is installed (never "
    "Nuke's own). Empty: Preferences > vfxmatte, then the VFXMATTE_PYTHON environment variable. "
    "This knob is saved in the script: one that is not your preference, VFXMATTE_PYTHON or in "
    "your allowed worker pythons is run only after you said yes.",
)


def _section_knobs(
    schema: Mapping[str, Any], section: str, depth: int, excluded: frozenset
) -> list[KnobSpec]:
    knobs: list[KnobSpec] = []
    for param in schema["params"]:
        if param["section"] == section and param["key"] not in excluded:
            knobs.append(_param_knob(param))
            knobs.extend(_AFTER.get(param["key"], []))
    for sub in schema["sections"]:
        key = sub["key"]
        if not key or key.rpartition(".")[0] != section or key in excluded:
            continue
        body = _section_knobs(schema, key, depth + 1, excluded)
        if not body:
            continue
        label = LABELS.get(key, sub["title"])
        if depth == 0:
            knobs.append(KnobSpec("tab", "tab_" + knob_name(key), label, tooltip=sub["help"]))
            knobs.extend(body)
        else:
            name = "grp_" + knob_name(key)
            knobs.append(KnobSpec("group", name, label, tooltip=_plain(sub["help"])))
            knobs.extend(body)
            knobs.append(KnobSpec("end_group", name + "_end"))
    return knobs


def _check_names(knobs: Sequence[KnobSpec]) -> None:
    seen: set = set()
    for spec in knobs:
        if not _NAME.match(spec.name):
            raise PluginError(f"Knob name {spec.name!r} is not a valid Nuke knob name.")
        if spec.name in seen:
            raise PluginError(f"Two knobs are called {spec.name!r}.")
        if spec.key and spec.name in RESERVED:
            raise PluginError(f"Option {spec.key!r} would take the built-in knob {spec.name!r}.")
        seen.add(spec.name)


def knob_list(schema: Mapping[str, Any], excluded: frozenset = EXCLUDED) -> list[KnobSpec]:
    """Every knob of the VfxMatte node, in panel order.

    Raises:
        PluginError: an option whose knob name is invalid, repeated or reserved.
    """
    main = _section_knobs(schema, "", 0, excluded)
    first_tab = next((i for i, k in enumerate(main) if k.kind == "tab"), len(main))
    knobs = [KnobSpec("tab", "vfxmatte", "VfxMatte"), *_main_knobs(schema)]
    knobs += [*main[:first_tab], _WORKER_KNOB, *main[first_tab:]]
    _check_names(knobs)
    return knobs


def value_knobs(knobs: Sequence[KnobSpec]) -> list[KnobSpec]:
    """The knobs that hold a value (not tabs, groups, buttons or text)."""
    return [k for k in knobs if k.has_value]


def _coerce(param: Mapping[str, Any], value: Any) -> Any:
    kind = param["type"]
    if param["choices"]:
        for choice in param["choices"]:
            if str(choice) == str(value):
                return choice
        raise PluginError(
            f"Knob '{knob_name(param['key'])}' holds {value!r}; valid: "
            + ", ".join(map(str, param["choices"]))
        )
    if kind == "bool":
        return bool(value)
    if kind == "int":
        if isinstance(value, float) and not value.is_integer():
            raise PluginError(f"Knob '{knob_name(param['key'])}' needs a whole number.")
        return int(value)
    if kind == "float":
        return float(value)
    return str(value).strip()


def config_from_values(values: Mapping[str, Any], schema: Mapping[str, Any]) -> dict[str, Any]:
    """The nested option mapping of the knob values that differ from the defaults.

    ``values`` maps knob names to values (knobs the node lacks are simply absent).
    Only changed options are sent, so a worker with more options than the node
    keeps its own defaults for them.

    Raises:
        PluginError: a value that is not one of its option's choices or types.
    """
    config: dict[str, Any] = {}
    for param in schema["params"]:
        name = knob_name(param["key"])
        if name not in values or param["key"] in EXCLUDED:
            continue
        value = _coerce(param, values[name])
        if value == param["default"]:
            continue
        node = config
        *parents, leaf = param["key"].split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return config
