"""Every call into Nuke's ``nuke`` module, and nothing else.

The rest of the plugin is plain Python that runs (and is tested) without Nuke:
it calls these small functions. ``nuke`` is imported when a function needs it,
so importing the plugin outside Nuke works. Compatible with Nuke 13+ (Python 3.7+).
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

__all__ = [
    "add_knob",
    "add_menu_command",
    "add_preference_knobs",
    "ask",
    "connect",
    "create_group_here",
    "create_node",
    "current_frame",
    "delete_node",
    "execute",
    "find_child",
    "frame_range",
    "input_node",
    "inside",
    "is_gui",
    "knob_value",
    "knob_values",
    "log",
    "node_class",
    "node_name",
    "preference",
    "progress_task",
    "read_path",
    "reload_read",
    "root_value",
    "script_path",
    "selected_node",
    "set_expression",
    "set_knob",
    "show_message",
    "this_node",
]


def _nuke() -> Any:
    import nuke  # only inside Nuke (or a test's stand-in)

    return nuke


# -- nodes --------------------------------------------------------------------------------


def this_node() -> Any:
    """The node whose button was pressed."""
    return _nuke().thisNode()


def create_node(node_class: str, **knobs: Any) -> Any:
    """A node of ``node_class`` in the current context (no auto-connection), knobs set."""
    return getattr(_nuke().nodes, node_class)(**knobs)


def create_group_here(name: str) -> Any:
    """A Group created the way the node menu creates nodes: after the selected node."""
    group = _nuke().createNode("Group", inpanel=False)
    group.setName(name)
    return group


def selected_node() -> Any:
    """The selected node, or None."""
    try:
        return _nuke().selectedNode()
    except ValueError:  # nothing selected
        return None


def delete_node(node: Any) -> None:
    _nuke().delete(node)


@contextlib.contextmanager
def inside(group: Any) -> Iterator[Any]:
    """Create and look up nodes inside ``group`` for the duration of the block."""
    group.begin()
    try:
        yield group
    finally:
        group.end()


def find_child(group: Any, name: str) -> Any:
    """The node called ``name`` inside ``group``, or None."""
    with inside(group):
        return _nuke().toNode(name)


def connect(node: Any, index: int, source: Any) -> None:
    node.setInput(index, source)


def input_node(node: Any, index: int) -> Any:
    """What is connected to input ``index`` of ``node`` (None when nothing)."""
    return node.input(index)


def node_class(node: Any) -> str:
    return str(node.Class())


def node_name(node: Any) -> str:
    return str(node.name())


def frame_range(node: Any) -> tuple[int, int]:
    """The first and last frame ``node`` produces."""
    return int(node.firstFrame()), int(node.lastFrame())


def read_path(node: Any) -> str:
    """The file pattern of a Read node, its TCL expressions evaluated (``####`` kept)."""
    return str(_nuke().filename(node))


# -- knobs --------------------------------------------------------------------------------


def knob_value(node: Any, name: str, default: Any = None) -> Any:
    """``node[name].value()``, or ``default`` when the node has no such knob."""
    knob = node.knobs().get(name)
    return default if knob is None else knob.value()


def knob_values(node: Any, names: list[str]) -> dict[str, Any]:
    """The values of those of ``names`` the node has (file knobs evaluated)."""
    knobs = node.knobs()
    values = {}
    for name in names:
        knob = knobs.get(name)
        if knob is None:
            continue
        if knob.Class() == "File_Knob" and hasattr(knob, "getEvaluatedValue"):
            values[name] = knob.getEvaluatedValue()
        else:
            values[name] = knob.value()
    return values


def set_knob(node: Any, name: str, value: Any) -> None:
    node[name].setValue(value)


def set_expression(node: Any, name: str, expression: str) -> None:
    node[name].setExpression(expression)


def reload_read(node: Any) -> None:
    """Make a Read node read its files again (they changed on disk)."""
    node["reload"].execute()


def _make_knob(spec: Any) -> Any:
    nuke = _nuke()
    kind = spec.kind
    if kind == "tab":
        return nuke.Tab_Knob(spec.name, spec.label)
    if kind == "group":
        return nuke.Tab_Knob(spec.name, spec.label, nuke.TABBEGINCLOSEDGROUP)
    if kind == "end_group":
        return nuke.Tab_Knob(spec.name, "", nuke.TABENDGROUP)
    if kind == "enum":
        knob = nuke.Enumeration_Knob(spec.name, spec.label, list(spec.choices))
    elif kind == "bool":
        knob = nuke.Boolean_Knob(spec.name, spec.label)
    elif kind == "int":
        knob = nuke.Int_Knob(spec.name, spec.label)
    elif kind == "double":
        knob = nuke.Double_Knob(spec.name, spec.label)
    elif kind == "file":
        knob = nuke.File_Knob(spec.name, spec.label)
    elif kind == "string":
        knob = nuke.String_Knob(spec.name, spec.label)
    elif kind == "button":
        return nuke.PyScript_Knob(spec.name, spec.label, spec.script)
    elif kind == "text":
        return nuke.Text_Knob(spec.name, spec.label, str(spec.default or ""))
    else:
        raise ValueError(f"Unknown knob kind {kind!r}")
    if spec.min is not None and spec.max is not None:
        knob.setRange(spec.min, spec.max)
    if spec.default is not None:
        knob.setValue(spec.default)
    return knob


def add_knob(node: Any, spec: Any) -> Any:
    """Add the knob described by a :class:`~vfxmatte_nuke.knobs.KnobSpec` to ``node``."""
    nuke = _nuke()
    knob = _make_knob(spec)
    if spec.tooltip:
        knob.setTooltip(spec.tooltip)
    if spec.kind not in ("tab", "group", "end_group"):
        if spec.newline:
            knob.setFlag(nuke.STARTLINE)
        else:
            knob.clearFlag(nuke.STARTLINE)
    if spec.hidden:
        knob.setFlag(nuke.INVISIBLE)
    node.addKnob(knob)
    return knob


# -- rendering and progress ---------------------------------------------------------------


def execute(node: Any, first: int, last: int, step: int = 1) -> None:
    """Render ``node`` (a Write) over ``first..last``; raises RuntimeError when cancelled."""
    _nuke().execute(node, first, last, step)


class _Task:
    """``nuke.ProgressTask`` behind three methods."""

    def __init__(self, title: str) -> None:
        self._task = _nuke().ProgressTask(title)

    def set_progress(self, percent: int) -> None:
        self._task.setProgress(max(0, min(100, int(percent))))

    def set_message(self, text: str) -> None:
        self._task.setMessage(text)

    def cancelled(self) -> bool:
        return bool(self._task.isCancelled())

    def close(self) -> None:
        self._task = None  # Nuke closes the dialog when the task is deleted


@contextlib.contextmanager
def progress_task(title: str) -> Iterator[_Task]:
    """A progress dialog with a cancel button, closed at the end of the block."""
    task = _Task(title)
    try:
        yield task
    finally:
        task.close()


# -- the session --------------------------------------------------------------------------


def is_gui() -> bool:
    return bool(_nuke().GUI)


def show_message(text: str) -> None:
    """A dialog in the GUI; the terminal otherwise."""
    nuke = _nuke()
    if nuke.GUI:
        nuke.message(text)
    else:
        nuke.tprint(text)


def ask(question: str) -> bool:
    """A Yes/No dialog (``nuke.ask``); True for Yes. Only call it in the GUI."""
    return bool(_nuke().ask(question))


def log(text: str) -> None:
    """A line in the Script Editor's output (or the terminal)."""
    _nuke().tprint(text)


def current_frame() -> int:
    return int(_nuke().frame())


def script_path() -> str:
    """The saved script's path, or "" for an unsaved script."""
    name = str(_nuke().root().name())
    return "" if name in ("", "Root") else name


def root_value(name: str, default: Any = "") -> Any:
    """A knob of the Root (project settings), or ``default`` when it has none."""
    return knob_value(_nuke().root(), name, default)


def preference(name: str, default: Any = "") -> Any:
    """A knob of Nuke's Preferences node, or ``default``."""
    prefs = _nuke().toNode("preferences")
    return default if prefs is None else knob_value(prefs, name, default)


def add_preference_knobs(specs: list[Any]) -> None:
    """Add knobs to the Preferences node (once; Nuke saves their values with its prefs)."""
    prefs = _nuke().toNode("preferences")
    if prefs is None:
        return
    for spec in specs:
        if spec.name not in prefs.knobs():
            add_knob(prefs, spec)


def add_menu_command(menu_path: str, label: str, command: str, icon: str = "") -> None:
    """``nuke.menu("Nodes").addMenu(menu_path).addCommand(label, command)``."""
    top, _, rest = menu_path.partition("/")
    menu = _nuke().menu(top).addMenu(rest) if rest else _nuke().menu(top)
    menu.addCommand(label, command, icon=icon)
