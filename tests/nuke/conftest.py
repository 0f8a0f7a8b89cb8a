"""Fixtures of the Nuke plugin tests: a stand-in ``nuke`` module, a shot, a worker.

The stand-in records every call the plugin makes and checks knob names against
the knobs each node class has in Nuke, so a misspelt knob fails here. Its
``execute`` renders a Write by asking the node upstream of the Group input for
pixels (``FakeNode.render``) and writing them with vfxmatte's EXR writer.
"""

from __future__ import annotations

import sys
import types
from pathlib import Path

import numpy as np
import pytest

from vfxmatte.io.image import read_image, write_image
from vfxmatte.synth import ShotSpec, write_shot

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins" / "nuke"
if str(PLUGIN_DIR) not in sys.path:
    sys.path.insert(0, str(PLUGIN_DIR))

COMMON = {"name", "label", "help", "tile_color", "disable", "xpos", "ypos", "selected"}
CLASS_KNOBS = {
    "Root": {"workingSpaceLUT", "colorManagement", "OCIO_config", "customOCIOConfigPath"},
    "Group": {"inputs"},
    "Input": {"number"},
    "Output": set(),
    "Switch": {"which"},
    "Read": {
        "file",
        "first",
        "last",
        "origfirst",
        "origlast",
        "raw",
        "colorspace",
        "on_error",
        "frame",
        "reload",
    },
    "Write": {"file", "file_type", "channels", "datatype", "compression", "raw"},
    "Grade": set(),
    "Roto": set(),
    "Preferences": set(),
}
FLAGS = {
    "STARTLINE": 0x1000,
    "INVISIBLE": 0x400,
    "TABBEGINGROUP": 1,
    "TABENDGROUP": -1,
    "TABBEGINCLOSEDGROUP": 2,
}


class FakeKnob:
    def __init__(self, kind, name, label=None, value=None, **extra):
        self.kind, self._name, self.label, self._value = kind, name, label, value
        self.flags: set[int] = set()
        self.tooltip = ""
        self.range = None
        self.expression = None
        self.executed = 0
        self.extra = extra

    def Class(self):
        return self.kind

    def name(self):
        return self._name

    def value(self):
        return self._value

    def setValue(self, value):
        self._value = value

    def getEvaluatedValue(self):
        return self._value

    def setTooltip(self, text):
        self.tooltip = text

    def setFlag(self, flag):
        self.flags.add(flag)

    def clearFlag(self, flag):
        self.flags.discard(flag)

    def setRange(self, lo, hi):
        self.range = (lo, hi)

    def setExpression(self, expression):
        self.expression = expression

    def execute(self):
        self.executed += 1


def _knob_factory(kind, default=None, value_index=None):
    def make(name, label=None, *args):
        value = (
            args[value_index] if value_index is not None and len(args) > value_index else default
        )
        knob = FakeKnob(kind, name, label, value)
        if kind == "Enumeration_Knob":
            knob.extra["items"] = list(args[0])
            knob._value = knob.extra["items"][0] if knob.extra["items"] else ""
        if kind == "Tab_Knob":
            knob.extra["group"] = args[0] if args else 0
        return knob

    return make


class FakeNode:
    def __init__(self, fake, node_class, parent, **knobs):
        self.fake, self.node_class, self.parent = fake, node_class, parent
        self._knobs = {}
        for name in COMMON | CLASS_KNOBS[node_class]:
            kind = (
                "PyScript_Knob" if name == "reload" else ("File_Knob" if name == "file" else "Knob")
            )
            self._knobs[name] = FakeKnob(
                kind, name, value="" if name in ("file", "frame") else None
            )
        self._knobs["name"]._value = knobs.pop("name", None) or self._free_name(parent)
        if "colorspace" in self._knobs:
            self._knobs["colorspace"]._value = "default"
        if "raw" in self._knobs:
            self._knobs["raw"]._value = False
        for name, value in knobs.items():
            self[name].setValue(value)
        self.inputs: dict[int, FakeNode] = {}
        self.children: list[FakeNode] = []
        self.range = (1, 1)
        self.render = None  # number -> H x W x C pixels, for the stand-in's execute

    def _free_name(self, parent):
        """Nuke's default name: the class and the lowest number not taken."""
        taken = {c.name() for c in parent.children}
        number = 1
        while f"{self.node_class}{number}" in taken:
            number += 1
        return f"{self.node_class}{number}"

    def Class(self):
        return self.node_class

    def name(self):
        return self._knobs["name"].value()

    def setName(self, name):
        self._knobs["name"].setValue(name)

    def knobs(self):
        return dict(self._knobs)

    def knob(self, name):
        return self._knobs.get(name)

    def __getitem__(self, name):
        if name not in self._knobs:
            raise NameError(f"{self.node_class} {self.name()} has no knob {name!r}")
        return self._knobs[name]

    def addKnob(self, knob):
        if knob.name() in self._knobs:
            raise ValueError(f"knob {knob.name()!r} exists on {self.name()}")
        self._knobs[knob.name()] = knob
        self.fake.calls.append(("addKnob", self.name(), knob.name()))

    def setInput(self, index, node):
        self.inputs[index] = node

    def input(self, index):
        if self.node_class == "Group":
            return self.inputs.get(index)
        return self.inputs.get(index)

    def begin(self):
        self.fake.context.append(self)

    def end(self):
        assert self.fake.context.pop() is self

    def firstFrame(self):
        return self.range[0]

    def lastFrame(self):
        return self.range[1]

    def child(self, name):
        return next((c for c in self.children if c.name() == name), None)


class FakeProgressTask:
    def __init__(self, fake, title):
        self.fake, self.title = fake, title
        self.progress: list[int] = []
        self.messages: list[str] = []
        fake.tasks.append(self)

    def setProgress(self, percent):
        self.progress.append(percent)

    def setMessage(self, text):
        self.messages.append(text)

    def isCancelled(self):
        return bool(self.fake.cancel_when(self))


class FakeMenu:
    def __init__(self, fake, path):
        self.fake, self.path = fake, path

    def addMenu(self, name):
        return FakeMenu(self.fake, f"{self.path}/{name}")

    def addCommand(self, label, command, icon=""):
        self.fake.menu_commands.append((self.path, label, command))


def _source_pixels(node: FakeNode, number: int) -> np.ndarray:
    """What a node upstream of the Group produces at ``number`` (for renders)."""
    if node.render is not None:
        return node.render(number)
    if node.node_class == "Read":
        from vfxmatte_nuke.paths import frame_path

        return read_image(frame_path(node["file"].value(), number)).pixels
    raise AssertionError(f"the stand-in cannot render {node.node_class}")


def make_fake_nuke() -> types.ModuleType:
    fake = types.ModuleType("nuke")
    fake.calls = []
    fake.messages = []
    fake.printed = []
    fake.tasks = []
    fake.menu_commands = []
    fake.executed = []
    fake.cancel_when = lambda task: False
    fake.render_error = None
    fake.GUI = True
    fake.current = 1001
    fake.__dict__.update(FLAGS)
    fake.root_node = FakeNode(
        fake,
        "Root",
        types.SimpleNamespace(children=[]),
        name="Root",
        workingSpaceLUT="linear",
        colorManagement="Nuke",
        OCIO_config="nuke-default",
        customOCIOConfigPath="",
    )
    fake.root_node.children = []
    fake.preferences = FakeNode(fake, "Preferences", fake.root_node, name="preferences")
    fake.context = [fake.root_node]
    fake.this = None
    fake.selected = None

    for kind, default, index in (
        ("Tab_Knob", None, None),
        ("Enumeration_Knob", None, None),
        ("Boolean_Knob", False, 0),
        ("Int_Knob", 0, None),
        ("Double_Knob", 0.0, None),
        ("File_Knob", "", None),
        ("String_Knob", "", 0),
        ("PyScript_Knob", None, 0),
        ("Text_Knob", "", 0),
    ):
        setattr(fake, kind, _knob_factory(kind, default, index))

    def create(node_class, **knobs):
        parent = fake.context[-1]
        if node_class == "Input" and "number" not in knobs:  # Nuke numbers them in order
            knobs["number"] = sum(c.node_class == "Input" for c in parent.children)
        node = FakeNode(fake, node_class, parent, **knobs)
        parent.children.append(node)
        fake.calls.append(("create", node_class, node.name()))
        return node

    class Nodes:
        def __getattr__(self, node_class):
            return lambda **knobs: create(node_class, **knobs)

    fake.nodes = Nodes()
    fake.createNode = lambda node_class, inpanel=True: create(node_class)
    fake.thisNode = lambda: fake.this
    fake.root = lambda: fake.root_node
    fake.frame = lambda: fake.current
    fake.filename = lambda node: node["file"].value()
    fake.message = lambda text: fake.messages.append(text)
    fake.asked = []
    fake.answer = False  # what the artist answers to nuke.ask (No unless a test says Yes)

    def ask(text):
        assert fake.GUI, "nuke.ask without a GUI"
        fake.asked.append(text)
        return fake.answer

    fake.ask = ask
    fake.tprint = lambda text: fake.printed.append(text)
    fake.menu = lambda name: FakeMenu(fake, name)
    fake.ProgressTask = lambda title: FakeProgressTask(fake, title)

    def selected_node():
        if fake.selected is None:
            raise ValueError("no node selected")
        return fake.selected

    fake.selectedNode = selected_node

    def to_node(name):
        if name == "preferences":
            return fake.preferences
        return fake.context[-1].child(name)

    fake.toNode = to_node

    def delete(node):
        node.parent.children.remove(node)
        fake.calls.append(("delete", node.node_class, node.name()))

    fake.delete = delete

    def execute(node, first, last, step=1):
        fake.executed.append((node.name(), first, last))
        if fake.render_error:
            raise RuntimeError(fake.render_error)
        assert node.node_class == "Write", node.node_class
        source = node.input(0)
        assert source.node_class == "Input"
        group = source.parent
        upstream = group.input(source["number"].value())
        channels = {"rgb": ["R", "G", "B"], "rgba": ["R", "G", "B", "A"]}[node["channels"].value()]
        from vfxmatte_nuke.paths import frame_path

        for number in range(first, last + 1, step):
            pixels = _source_pixels(upstream, number)
            if pixels.shape[2] < len(channels):
                pixels = np.concatenate(
                    [
                        pixels,
                        np.zeros(pixels.shape[:2] + (len(channels) - pixels.shape[2],), np.float32),
                    ],
                    axis=2,
                )
            write_image(
                frame_path(node["file"].value(), number),
                pixels[..., : len(channels)],
                channels,
                dtype="half",
            )

    fake.execute = execute
    return fake


@pytest.fixture
def fake_nuke(monkeypatch):
    """A fresh stand-in ``nuke`` module installed in ``sys.modules`` (a new Nuke session)."""
    from vfxmatte_nuke import trust

    fake = make_fake_nuke()
    monkeypatch.setitem(sys.modules, "nuke", fake)
    for name in ("VFXMATTE_PYTHON", trust.ALLOWED_PYTHONS, trust.ALLOWED_SCHEDULERS):
        monkeypatch.delenv(name, raising=False)
    trust.forget()
    yield fake
    trust.forget()


@pytest.fixture(scope="session")
def nuke_shot(tmp_path_factory):
    """A 96x64, 5-frame synthetic shot (frames 1001-1005) with its first-frame mask."""
    spec = ShotSpec(
        width=96, height=64, frames=5, seed=5, speed=2.0, supersample=2, motion_blur_samples=1
    )
    return write_shot(tmp_path_factory.mktemp("nuke_shot"), spec)


@pytest.fixture(scope="session")
def long_shot(tmp_path_factory):
    """A 96x64, 16-frame shot for cancelling mid-shot."""
    spec = ShotSpec(
        width=96, height=64, frames=16, seed=6, speed=2.0, supersample=1, motion_blur_samples=1
    )
    return write_shot(tmp_path_factory.mktemp("long_shot"), spec)


@pytest.fixture
def worker_client():
    """The plugin's client talking to a real ``python -m vfxmatte.worker``."""
    from vfxmatte_nuke.client import WorkerClient

    client = WorkerClient(sys.executable)  # in the environment the plugin gives it
    client.start()
    yield client
    client.close()


@pytest.fixture
def stand_in_python(tmp_path):
    """Make an executable that plays the worker's python: a Python script with ``body``."""

    def make(body: str, name: str = "python") -> str:
        path = tmp_path / name
        path.write_text(f"#!{sys.executable}\nimport json, os, sys\n{body}\n", encoding="utf-8")
        path.chmod(0o755)
        return str(path)

    return make
