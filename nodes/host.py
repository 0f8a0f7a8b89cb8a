"""What the nodes take from ComfyUI when it is there, with a fallback when it is not.

The pack imports ``comfy`` and ``folder_paths`` only inside these functions, at
call time, so that it imports (and its tests run) without ComfyUI:

* progress: ``comfy.utils.ProgressBar(total).update(n)``; no-op without ComfyUI;
* interrupt: ``comfy.model_management.throw_exception_if_processing_interrupted()``,
  called between frames; no-op without ComfyUI;
* device: ``comfy.model_management.get_torch_device()`` replaces ``auto`` devices;
* files: relative input paths resolve against ComfyUI's input folder, relative
  output patterns against its output folder (the working directory otherwise),
  and inside ComfyUI no path may lead out of its folders (see :mod:`.folders`);
* model folders: ``vfxmatte_sam2``, ``vfxmatte_matte``, ``vfxmatte_refine`` and
  ``vfxmatte_colour`` are registered in ``folder_paths`` (``models/vfxmatte/<kind>``
  and ``$VFXMATTE_HOME/<kind>``; SAM 2 also ``models/sam2``). Without ComfyUI the
  files are listed from ``$VFXMATTE_HOME`` alone. Nothing is ever downloaded.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from vfxmatte.errors import ConfigError, WeightsError, closest_hint
from vfxmatte.propagate.checkpoints import vfxmatte_home

from . import folders

__all__ = [
    "MODEL_KINDS",
    "WEIGHT_EXTENSIONS",
    "Progress",
    "check_interrupt",
    "engine_callbacks",
    "node_text",
    "start_warm_up",
    "warm_up_kernels",
    "host_device",
    "input_path",
    "list_model_files",
    "model_folders",
    "ocio_path",
    "output_path",
    "register_model_folders",
    "resolve_model_file",
]

log = logging.getLogger(__name__)

#: Model kind -> sub-folder under ``models/vfxmatte/`` and ``$VFXMATTE_HOME/``.
MODEL_KINDS = {"sam2": "sam2", "matte": "matte", "refine": "refine", "colour": "colour"}
WEIGHT_EXTENSIONS = frozenset({".pt", ".pth", ".ckpt", ".bin", ".safetensors"})


def _comfy(module: str) -> Any | None:
    """``comfy.utils`` / ``comfy.model_management`` / ``folder_paths``, or None outside ComfyUI."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        return None


class Progress:
    """ComfyUI's progress bar for ``total`` steps (frames); silent outside ComfyUI."""

    def __init__(self, total: int) -> None:
        utils = _comfy("comfy.utils")
        self.total = int(total)
        self.done = 0
        self._bar = utils.ProgressBar(self.total) if utils is not None else None

    def step(self, count: int = 1) -> None:
        """Advance by ``count`` steps."""
        self.done += count
        if self._bar is not None:
            self._bar.update(count)


def check_interrupt() -> None:
    """Raise ComfyUI's interrupt exception when the user pressed Cancel; else nothing."""
    management = _comfy("comfy.model_management")
    if management is not None:
        management.throw_exception_if_processing_interrupted()


def node_text(text: str) -> None:
    """Show ``text`` on the running node (ComfyUI's progress text) and in the server's log."""
    log.warning("%s", text)
    server, context = _comfy("server"), _comfy("comfy_execution.utils")
    try:
        node = context.get_executing_context() if context is not None else None
        if server is not None and node is not None:
            server.PromptServer.instance.send_progress_text(text, node.node_id)
    except Exception:  # noqa: BLE001 - a message must never stop a run
        log.debug("no progress text for %r", text, exc_info=True)


def warm_up_kernels() -> None:
    """Wait for pymatting's kernels, saying so on the node the first time (see vfxmatte.warmup)."""
    try:
        from vfxmatte.warmup import warm_up
    except ImportError:  # a vfxmatte older than the pack: it compiles when first used
        return
    warm_up(node_text)


def start_warm_up() -> None:
    """Inside ComfyUI, compile pymatting's kernels in a child process while the server starts."""
    import sys

    if "folder_paths" in sys.modules and os.environ.get("VFXMATTE_NO_WARMUP") != "1":
        try:
            from vfxmatte.warmup import warm_up_in_background
        except ImportError:  # a vfxmatte older than the pack
            return
        warm_up_in_background()


def engine_callbacks(
    total: int, passes: int = 1
) -> tuple[Callable[[Any], None], Callable[[], bool]]:
    """``on_progress`` and ``should_cancel`` for :func:`vfxmatte.engine.pipeline.run_pipeline`.

    Progress advances once per frame; the interrupt is checked before every frame
    and after each one, so a cancel stops the run within one frame. It raises
    ComfyUI's own exception (which the engine lets through), and every frame
    finished so far stays on disk for a resumed run.

    ``passes=2``: the run first propagates the whole shot (SAM 2), reporting each
    frame with status ``propagated``; the bar covers both passes, and jumps over
    the first when its guidance was already on disk (a resumed run).
    """
    progress = Progress(total * passes)
    propagated = 0

    def on_progress(event: Any) -> None:
        nonlocal propagated
        if getattr(event, "status", "") == "propagated":
            propagated += 1
        elif passes > 1 and propagated < total:
            progress.step(total - propagated)  # no propagation events: guidance reused
            propagated = total
        progress.step()
        check_interrupt()

    def should_cancel() -> bool:
        check_interrupt()
        return False

    return on_progress, should_cancel


def host_device() -> str | None:
    """ComfyUI's torch device as a vfxmatte device name (``cuda:0``, ``cpu``...), or None."""
    management = _comfy("comfy.model_management")
    if management is None:
        return None
    device = management.get_torch_device()
    return str(device)


def input_path(path: str) -> str:
    """An input file or pattern, resolved and checked (:func:`.folders.input_file`)."""
    return folders.input_file(path)


def output_path(path: str) -> str:
    """An output file or pattern, resolved and checked (:func:`.folders.output_file`)."""
    return folders.output_file(path)


def ocio_path(config: str) -> str:
    """An OCIO config option: a built-in ``ocio://`` URI as it is, a file as an input."""
    config = (config or "").strip()
    return config if not config or config.startswith("ocio://") else input_path(config)


def model_folders(kind: str) -> list[str]:
    """The folders searched for models of ``kind``, in order."""
    if kind not in MODEL_KINDS:
        raise ConfigError(
            f"Unknown model kind '{kind}'; valid: {', '.join(MODEL_KINDS)}."
            + closest_hint(kind, MODEL_KINDS)
        )
    paths = _comfy("folder_paths")
    if paths is not None:
        register_model_folders()
        return list(paths.folder_names_and_paths[f"vfxmatte_{kind}"][0])
    return [str(vfxmatte_home() / MODEL_KINDS[kind])]


def register_model_folders() -> bool:
    """Register the ``vfxmatte_<kind>`` model folders in ComfyUI's ``folder_paths``.

    Idempotent; keeps folders a user added (``extra_model_paths.yaml``) in front.
    Returns False outside ComfyUI.
    """
    paths = _comfy("folder_paths")
    if paths is None:
        return False
    for kind, sub in MODEL_KINDS.items():
        name = f"vfxmatte_{kind}"
        defaults = [os.path.join(paths.models_dir, "vfxmatte", sub)]
        if kind == "sam2":
            defaults.append(os.path.join(paths.models_dir, "sam2"))
        defaults.append(str(vfxmatte_home() / sub))
        folders, extensions = paths.folder_names_and_paths.get(name, ([], set()))
        folders = list(folders) + [d for d in defaults if d not in folders]
        paths.folder_names_and_paths[name] = (folders, set(extensions) | WEIGHT_EXTENSIONS)
    return True


def list_model_files(kind: str) -> list[str]:
    """Weight files of ``kind`` as names relative to their model folder, sorted."""
    paths = _comfy("folder_paths")
    if paths is not None:
        register_model_folders()
        return sorted(paths.get_filename_list(f"vfxmatte_{kind}"))
    names: set[str] = set()
    for folder in model_folders(kind):
        root = Path(folder)
        if root.is_dir():
            names.update(
                str(p.relative_to(root))
                for p in root.rglob("*")
                if p.is_file() and p.suffix.lower() in WEIGHT_EXTENSIONS
            )
    return sorted(names)


def resolve_model_file(kind: str, name: str) -> str:
    """The absolute path of the weight file ``name`` (absolute, or relative to a model folder).

    Raises:
        WeightsError: no such file, naming the folders searched and the files there.
        OutsideFoldersError: inside ComfyUI, a path that leads out of the model folders.
    """
    folders_searched = model_folders(kind)
    found = folders.model_file(kind, name, folders_searched)
    if found is not None:
        return found
    if os.path.isabs(os.path.expanduser(name)):
        raise WeightsError(f"The {kind} weights file '{os.path.expanduser(name)}' does not exist.")
    present = list_model_files(kind)
    listing = f" Files found: {', '.join(present)}." if present else " No weight files are there."
    raise WeightsError(
        f"No {kind} weights file '{name}' in {', '.join(folders_searched)}.{listing} Copy the "
        "file into one of these folders (vfxmatte never downloads weights)."
        + closest_hint(name, present)
    )
