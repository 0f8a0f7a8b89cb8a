"""Which files the nodes read and write inside ComfyUI: its own folders, and no others.

A workflow is a file people share, and one ComfyUI server often serves several
people; a node that opened whatever path a workflow names would let anyone who
can queue a prompt read the server's files (``../../../../etc/passwd``) or write
over them. So, inside ComfyUI (``folder_paths`` importable), as its own loaders
and savers do:

* **inputs** (plates, masks, keyframes, guidance, label maps, segment JSON, OCIO
  configs) are relative to ComfyUI's input folder
  (``folder_paths.get_input_directory()``), or to its output / temp folder with
  ComfyUI's annotation ``name [output]`` / ``name [temp]``
  (``folder_paths.annotated_filepath``); an absolute path must lie inside one
  of those folders;
* **outputs** are relative to the output folder and must stay inside it (the
  check of ``folder_paths.get_save_image_path``);
* **weights** must lie inside the model folders of their kind (``models/vfxmatte/<kind>``,
  ``$VFXMATTE_HOME/<kind>``, ``extra_model_paths.yaml``);
* ``..``, ``~`` and absolute paths that lead elsewhere are refused with a
  sentence that says why, and so are symbolic links (a folder or a frame file)
  whose target lies outside;
* a Dask scheduler (``engine_scheduler``) is refused unless listed in
  ``VFXMATTE_COMFYUI_SCHEDULERS``: a scheduler runs code in this server.

Settings for the server's owner (environment variables, read at every check):

* ``VFXMATTE_COMFYUI_FOLDERS``: more folders (``os.pathsep``-separated) the nodes
  may read from and write to, e.g. the show's storage;
* ``VFXMATTE_COMFYUI_ALLOW_ANY_PATH=1``: any path, as outside ComfyUI (a trusted,
  single-user machine);
* ``VFXMATTE_COMFYUI_SCHEDULERS``: the Dask scheduler addresses a workflow may
  name (comma-separated).

Outside ComfyUI nothing is confined: relative paths are relative to the working
directory, ``~`` is the user's home.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from vfxmatte.errors import ConfigError, InputError, WeightsError
from vfxmatte.io.sequence import FramePattern
from vfxmatte.worker.schema import is_path_key

__all__ = [
    "ALLOW_ANY_PATH",
    "FOLDERS",
    "SCHEDULERS",
    "OutsideFoldersError",
    "confine_options",
    "input_file",
    "inside",
    "keyframe_paths",
    "model_file",
    "output_file",
]

ALLOW_ANY_PATH = "VFXMATTE_COMFYUI_ALLOW_ANY_PATH"
FOLDERS = "VFXMATTE_COMFYUI_FOLDERS"
SCHEDULERS = "VFXMATTE_COMFYUI_SCHEDULERS"

#: Options of the pipeline config that name files, by what the node does with them.
INPUT_KEYS = ("plate", "mask", "guidance", "input.ocio")
OUTPUT_KEYS = ("output", "guidance_output")
MODEL_KEYS = {
    "propagate.sam2.checkpoint": "sam2",
    "matte.network.weights": "matte",
    "refine.sparse.weights": "refine",
    "decontaminate.network.weights": "colour",
}
_TRUSTED = f"or set {ALLOW_ANY_PATH}=1 (or list the folder in {FOLDERS}) on a trusted machine"


class OutsideFoldersError(InputError):
    """A node was given a path outside the ComfyUI folders it may use (or a scheduler)."""


def _folder_paths() -> Any | None:
    import importlib

    try:
        return importlib.import_module("folder_paths")
    except ImportError:
        return None


def _allow_any() -> bool:
    return os.environ.get(ALLOW_ANY_PATH, "").strip().lower() in ("1", "true", "yes", "on")


def _extra_folders() -> list[str]:
    value = os.environ.get(FOLDERS, "")
    return [os.path.abspath(os.path.expanduser(f)) for f in value.split(os.pathsep) if f.strip()]


def _within(path: str, root: str) -> bool:
    path, root = os.path.normcase(path), os.path.normcase(root)
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # another drive (Windows)
        return False


def inside(path: str, folders: Iterable[str]) -> bool:
    """Whether ``path`` (links followed) lies in one of ``folders`` (links followed)."""
    real = os.path.realpath(path)
    return any(_within(real, os.path.realpath(folder)) for folder in folders)


def _lexically_inside(path: str, folders: Iterable[str]) -> bool:
    return any(_within(path, os.path.abspath(folder)) for folder in folders)


def _escape(path: str, folders: list[str], them: str = "it") -> str | None:
    """Why ``path`` (absolute) is not inside ``folders``, or None when it is.

    A sequence pattern counts with every frame file on disk: a frame that is a
    symbolic link to a file elsewhere is outside too. ``them`` names the folders
    in the sentence.
    """
    if not inside(path, folders):
        if _lexically_inside(path, folders):
            real = os.path.realpath(path)
            return f"'{path}' leads to '{real}' through a symbolic link, outside {them}"
        return f"'{path}' is outside {them}"
    pattern = FramePattern.parse(path)
    if not pattern.is_single and os.path.isdir(os.path.dirname(path) or "."):
        for number in pattern.frames_on_disk():
            frame = pattern.path(number)
            if os.path.islink(frame) and not inside(frame, folders):
                real = os.path.realpath(frame)
                return f"its frame '{frame}' is a link to '{real}', outside {them}"
    return None


def _given(path: str, full: str) -> str:
    return "" if path == full else f" (given '{path}')"


def _outside_cwd(path: str) -> str:
    path = os.path.expanduser(path)
    return path if os.path.isabs(path) else os.path.join(os.getcwd(), path)


def input_file(path: str) -> str:
    """An input file or pattern, resolved: relative paths in ComfyUI's input folder.

    Raises:
        OutsideFoldersError: inside ComfyUI, a path outside its input, output and
            temp folders (and ``VFXMATTE_COMFYUI_FOLDERS``).
    """
    path = str(path).strip()
    paths = _folder_paths()
    if not path or paths is None:
        return _outside_cwd(path) if path else path
    annotated = getattr(paths, "annotated_filepath", lambda name: (name, None))
    name, base = annotated(path)
    base = base or paths.get_input_directory()
    full = os.path.abspath(os.path.join(base, os.path.expanduser(name)))
    if _allow_any():
        return full
    folders = [paths.get_input_directory(), paths.get_output_directory()]
    if hasattr(paths, "get_temp_directory"):
        folders.append(paths.get_temp_directory())
    why = _escape(full, [*folders, *_extra_folders()], "them")
    if why:
        raise OutsideFoldersError(
            f"ComfyUI nodes only read files inside ComfyUI's input folder "
            f"{paths.get_input_directory()} (or ComfyUI's output and temp folders); {why}"
            f"{_given(path, full)}: move it there, {_TRUSTED}."
        )
    return full


def output_file(path: str) -> str:
    """An output file or pattern, resolved: relative paths in ComfyUI's output folder.

    Raises:
        OutsideFoldersError: inside ComfyUI, a path outside its output folder (and
            ``VFXMATTE_COMFYUI_FOLDERS``).
    """
    path = str(path).strip()
    paths = _folder_paths()
    if not path or paths is None:
        return _outside_cwd(path) if path else path
    output = paths.get_output_directory()
    full = os.path.abspath(os.path.join(output, os.path.expanduser(path)))
    if _allow_any():
        return full
    why = _escape(os.path.dirname(full), [output, *_extra_folders()])
    if why:
        raise OutsideFoldersError(
            f"ComfyUI nodes only write inside ComfyUI's output folder {output}; the folder "
            f"{why}{_given(path, full)}: give a path relative to it, e.g. "
            f"vfxmatte/{os.path.basename(full)}, {_TRUSTED}."
        )
    return full


def model_file(kind: str, path: str, folders: list[str]) -> str | None:
    """The weights file ``path`` if it lies in ``folders`` (absolute, or relative to them).

    Returns None when no such file exists there; ``path`` absolute outside ComfyUI
    is taken as it is.

    Raises:
        OutsideFoldersError: inside ComfyUI, a path that leads out of the folders.
    """
    path = str(path).strip()
    given = os.path.expanduser(path)
    comfy = _folder_paths() is not None and not _allow_any()
    allowed = [*folders, *_extra_folders()] if comfy else []
    candidates = [given] if os.path.isabs(given) else [os.path.join(f, given) for f in folders]
    for candidate in candidates:
        candidate = os.path.abspath(candidate)
        if comfy:
            why = _escape(candidate, allowed, "them")
            if why:
                raise OutsideFoldersError(
                    f"ComfyUI nodes only load {kind} weights from the model folders "
                    f"{', '.join(folders)}; {why}{_given(path, candidate)}: copy the file into "
                    f"one of them (or add its folder to extra_model_paths.yaml as "
                    f"vfxmatte_{kind}), {_TRUSTED}."
                )
        if os.path.isfile(candidate):
            return candidate
    return None


def check_scheduler(address: str) -> None:
    """Refuse, inside ComfyUI, a Dask scheduler not listed in ``VFXMATTE_COMFYUI_SCHEDULERS``."""
    address = str(address).strip()
    if not address or _folder_paths() is None:
        return
    listed = [a.strip() for a in os.environ.get(SCHEDULERS, "").split(",") if a.strip()]
    if address in listed:
        return
    known = f"it lists {', '.join(listed)}" if listed else "it is not set"
    raise OutsideFoldersError(
        f"ComfyUI nodes connect only to the Dask schedulers listed in {SCHEDULERS} ({known}): "
        f"a scheduler runs code in this server, and '{address}' could be anyone's. Leave "
        f"engine_scheduler empty (a local cluster on this machine), or list it in {SCHEDULERS} "
        "on a trusted machine."
    )


def keyframe_paths(text: str) -> list[tuple[int, str]]:
    """``"1050=a.png;1100=b.png"`` as (frame, path) pairs, every path an input (resolved).

    Raises:
        ConfigError: an item that is not ``FRAME=PATH``.
        OutsideFoldersError: a path outside ComfyUI's folders.
    """
    out = []
    for item in filter(None, (s.strip() for s in str(text).split(";"))):
        number, sep, path = item.partition("=")
        if not sep or not number.strip().lstrip("-").isdigit():
            raise ConfigError(f"keyframes expects 'FRAME=PATH;FRAME=PATH', got {item!r}.")
        out.append((int(number), input_file(path)))
    return out


def confine_options(
    flat: Mapping[str, Any], model_folders: Callable[[str], list[str]]
) -> dict[str, Any]:
    """Dotted pipeline options with every path resolved and checked (see the module).

    ``model_folders(kind)`` lists the folders searched for weights of ``kind``.
    A weights option must name an existing file there (relative names are looked
    up in them); empty options (a backend's default) are kept. Any other option
    that names a file (:func:`vfxmatte.worker.schema.is_path_key`, e.g. one added
    later) is held to the input rule: inside ComfyUI's folders.

    Raises:
        OutsideFoldersError: a path outside the folders, or a scheduler not listed.
        WeightsError: weights not found in their folders.
    """
    out = dict(flat)
    for key, value in flat.items():
        if not isinstance(value, str) or not value.strip():
            continue
        if key in INPUT_KEYS and not (key == "input.ocio" and value.startswith("ocio://")):
            out[key] = input_file(value)
        elif key in OUTPUT_KEYS:
            out[key] = output_file(value)
        elif key == "keyframes":
            out[key] = ";".join(f"{n}={path}" for n, path in keyframe_paths(value))
        elif key == "engine.scheduler":
            check_scheduler(value)
        elif key in MODEL_KEYS and _folder_paths() is not None:
            kind = MODEL_KEYS[key]
            folders = model_folders(kind)
            found = model_file(kind, value, folders)
            if found is None:
                raise WeightsError(
                    f"Option '{key}': no {kind} weights file '{value}' in "
                    f"{', '.join(folders)}. Copy the file into one of these folders."
                )
            out[key] = found
        elif key not in MODEL_KEYS and is_path_key(key):
            out[key] = input_file(value)
    return out
