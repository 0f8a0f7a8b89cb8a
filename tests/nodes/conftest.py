"""Fixtures of the ComfyUI node pack tests: the pack loaded as ComfyUI loads it, stand-ins for
ComfyUI's own modules, a small synthetic shot, and a tiny executor of API-format workflows.

ComfyUI is not installable here (not on PyPI, repository unreachable), so the modules the
pack uses are replaced by stand-ins that behave as ComfyUI's do and record what they are
asked: ``comfy.utils.ProgressBar``, ``comfy.model_management`` (interrupt flag, device) and
``folder_paths`` (input/output/model folders).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
import types
from collections import deque
from pathlib import Path
from typing import Any

import pytest
import torch

from vfxmatte.synth import ShotSpec, write_shot
from vfxmatte.synth.shot import ShotPaths

PACK = Path(__file__).resolve().parents[2] / "nodes"
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")


def load_pack_module(folder: Path, name: str | None = None) -> types.ModuleType:
    """Import the folder as a package the way ComfyUI's ``load_custom_node`` does."""
    name = name or str(folder).replace(".", "_x_")
    spec = importlib.util.spec_from_file_location(name, folder / "__init__.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def pack() -> types.ModuleType:
    """The node pack, imported from ``nodes/`` under a unique module name (no ComfyUI)."""
    for name in ("comfy", "folder_paths"):
        assert name not in sys.modules, f"a real or stand-in '{name}' leaked into the session"
    return load_pack_module(PACK, f"vfxmatte_nodes_under_test_{os.getpid()}")


@pytest.fixture(scope="session")
def nodes(pack) -> dict[str, type]:
    return pack.NODE_CLASS_MAPPINGS


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    """One torch thread: the CPU is shared, and small tensors gain nothing from two."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class InterruptProcessingException(Exception):
    """Stand-in of ``comfy.model_management.InterruptProcessingException``."""


class ComfyState:
    """What the stand-in ComfyUI modules recorded, and the interrupt they will raise.

    ``interrupt_after_updates(n)``: the user "presses Cancel" as soon as the n-th
    progress update has happened; the next interrupt check raises, as ComfyUI's does.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.input_dir = root / "input"
        self.output_dir = root / "output"
        self.models_dir = root / "models"
        self.temp_dir = root / "temp"
        for folder in (self.input_dir, self.output_dir, self.models_dir, self.temp_dir):
            folder.mkdir(parents=True, exist_ok=True)
        self.bars: list[Any] = []
        self.updates = 0
        self.checks = 0
        self.interrupted = False
        self._interrupt_at: int | None = None
        self.device = torch.device("cpu")

    def interrupt_after_updates(self, count: int) -> None:
        self._interrupt_at = count

    def on_update(self) -> None:
        self.updates += 1
        if self._interrupt_at is not None and self.updates >= self._interrupt_at:
            self.interrupted = True  # once, as one press of Cancel
            self._interrupt_at = None


def _comfy_modules(state: ComfyState) -> dict[str, types.ModuleType]:
    utils = types.ModuleType("comfy.utils")

    class ProgressBar:
        def __init__(self, total: int, node_id: Any = None) -> None:
            self.total = total
            self.current = 0
            self.updates: list[int] = []
            state.bars.append(self)

        def update(self, value: int) -> None:
            self.current += value
            self.updates.append(value)
            state.on_update()

        def update_absolute(self, value: int, total: int | None = None, preview: Any = None):
            self.current = value

    utils.ProgressBar = ProgressBar

    management = types.ModuleType("comfy.model_management")
    management.InterruptProcessingException = InterruptProcessingException

    def throw_exception_if_processing_interrupted() -> None:
        state.checks += 1
        if state.interrupted:  # ComfyUI clears the flag as it raises
            state.interrupted = False
            raise InterruptProcessingException()

    management.throw_exception_if_processing_interrupted = throw_exception_if_processing_interrupted
    management.get_torch_device = lambda: state.device

    comfy = types.ModuleType("comfy")
    comfy.__path__ = []  # a package
    comfy.utils = utils
    comfy.model_management = management
    return {"comfy": comfy, "comfy.utils": utils, "comfy.model_management": management}


def _folder_paths(state: ComfyState) -> types.ModuleType:
    """The part of ComfyUI's ``folder_paths`` the pack uses, with the same behaviour."""
    fp = types.ModuleType("folder_paths")
    fp.models_dir = str(state.models_dir)
    fp.folder_names_and_paths = {
        "checkpoints": ([str(state.models_dir / "checkpoints")], {".ckpt", ".safetensors"})
    }
    fp.get_input_directory = lambda: str(state.input_dir)
    fp.get_output_directory = lambda: str(state.output_dir)
    fp.get_temp_directory = lambda: str(state.temp_dir)

    def annotated_filepath(name: str) -> tuple[str, str | None]:
        # ComfyUI's: 'name [output]' / '[input]' / '[temp]' picks the folder.
        for tag, folder in (
            ("[output]", fp.get_output_directory),
            ("[input]", fp.get_input_directory),
            ("[temp]", fp.get_temp_directory),
        ):
            if name.endswith(tag):
                return name[: -len(tag) - 1], folder()
        return name, None

    def get_annotated_filepath(name: str, default_dir: str | None = None) -> str:
        name, base = annotated_filepath(name)
        return os.path.join(base or default_dir or fp.get_input_directory(), name)

    fp.annotated_filepath = annotated_filepath
    fp.get_annotated_filepath = get_annotated_filepath

    def get_filename_list(name: str) -> list[str]:
        folders, extensions = fp.folder_names_and_paths[name]
        found = set()
        for folder in folders:
            root = Path(folder)
            if root.is_dir():
                found.update(
                    str(p.relative_to(root))
                    for p in root.rglob("*")
                    if p.is_file() and (not extensions or p.suffix.lower() in extensions)
                )
        return sorted(found)

    def get_full_path(name: str, filename: str) -> str | None:
        if name not in fp.folder_names_and_paths:
            return None
        for folder in fp.folder_names_and_paths[name][0]:
            path = os.path.join(folder, filename)
            if os.path.isfile(path):
                return path
        return None

    fp.get_filename_list = get_filename_list
    fp.get_full_path = get_full_path
    return fp


@pytest.fixture
def comfy(tmp_path, monkeypatch) -> ComfyState:
    """Stand-in ComfyUI modules in ``sys.modules`` for one test, and what they recorded."""
    state = ComfyState(tmp_path / "comfyui")
    for name, module in _comfy_modules(state).items():
        monkeypatch.setitem(sys.modules, name, module)
    monkeypatch.setitem(sys.modules, "folder_paths", _folder_paths(state))
    monkeypatch.setenv("VFXMATTE_HOME", str(tmp_path / "vfxmatte_home"))
    return state


@pytest.fixture
def no_comfy(tmp_path, monkeypatch) -> Path:
    """No ComfyUI at all (imports of comfy/folder_paths fail); VFXMATTE_HOME in tmp."""
    for name in ("comfy", "comfy.utils", "comfy.model_management", "folder_paths"):
        monkeypatch.setitem(sys.modules, name, None)  # None in sys.modules: ImportError
    home = tmp_path / "vfxmatte_home"
    monkeypatch.setenv("VFXMATTE_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def shot(tmp_path_factory):
    """A 96x64, 5-frame synthetic shot with two objects (frames 1001-1005)."""
    spec = ShotSpec(width=96, height=64, frames=5, objects=2, seed=3, speed=2.0, supersample=2)
    return write_shot(tmp_path_factory.mktemp("shot"), spec)


@pytest.fixture
def demo_input(comfy, shot) -> Path:
    """The shot where the example workflows expect it: ComfyUI's input/vfxmatte_demo.

    Copied, not linked: the nodes refuse links that lead out of ComfyUI's folders.
    """
    folder = comfy.input_dir / "vfxmatte_demo"
    shutil.copytree(shot.root, folder)
    return folder


@pytest.fixture
def comfy_shot(comfy, shot) -> ShotPaths:
    """The shot copied into ComfyUI's input folder (input/shot), its paths there."""
    folder = comfy.input_dir / "shot"
    shutil.copytree(shot.root, folder)
    return ShotPaths(
        **{k: str(v).replace(shot.root, str(folder), 1) for k, v in vars(shot).items()}
    )


def is_widget(entry: tuple) -> bool:
    return isinstance(entry[0], list) or entry[0] in WIDGET_TYPES


def topological_order(prompt: dict[str, Any]) -> list[str]:
    """Node ids of an API-format prompt, every node after the nodes it reads from."""
    needs = {
        node_id: {v[0] for v in node["inputs"].values() if isinstance(v, list)}
        for node_id, node in prompt.items()
    }
    ready = deque(sorted(n for n, deps in needs.items() if not deps))
    order: list[str] = []
    while ready:
        node_id = ready.popleft()
        order.append(node_id)
        for other, deps in sorted(needs.items()):
            if node_id in deps:
                deps.discard(node_id)
                if not deps and other not in order and other not in ready:
                    ready.append(other)
    assert len(order) == len(prompt), (
        f"the workflow has a cycle: {sorted(set(prompt) - set(order))}"
    )
    return order


def run_prompt(mappings: dict[str, type], prompt: dict[str, Any]) -> dict[str, tuple]:
    """Execute an API-format workflow as ComfyUI does, in topological order.

    Per node: the class from the mappings, ``check`` (and ``VALIDATE_INPUTS``) with the widget
    values only (it must say True), ``IS_CHANGED``, link types checked against
    the source's ``RETURN_TYPES``, then ``FUNCTION`` with every input by name.
    Returns each node's outputs (the ``result`` of a ``{"ui", "result"}`` dict).
    """
    outputs: dict[str, tuple] = {}
    for node_id in topological_order(prompt):
        node = prompt[node_id]
        cls = mappings[node["class_type"]]
        types_ = {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}
        widgets = {k: v for k, v in node["inputs"].items() if not isinstance(v, list)}
        assert cls.check(**widgets) is True, (node_id, cls.check(**widgets))
        assert cls.VALIDATE_INPUTS(**widgets) is True
        if hasattr(cls, "IS_CHANGED"):
            cls.IS_CHANGED(**widgets)
        kwargs = dict(widgets)
        for name, value in node["inputs"].items():
            if isinstance(value, list):
                source, slot = value
                source_cls = mappings[prompt[source]["class_type"]]
                assert source_cls.RETURN_TYPES[slot] == types_[name][0], (node_id, name)
                assert not getattr(source_cls, "OUTPUT_IS_LIST", (False,) * 99)[slot]
                kwargs[name] = outputs[source][slot]
        result = getattr(cls(), cls.FUNCTION)(**kwargs)
        if isinstance(result, dict):
            result = result["result"]
        assert len(result) == len(cls.RETURN_TYPES)
        outputs[node_id] = tuple(result)
    return outputs


@pytest.fixture(scope="session")
def execute():
    """:func:`run_prompt`, for the tests (conftest helpers are not importable by name)."""
    return run_prompt
