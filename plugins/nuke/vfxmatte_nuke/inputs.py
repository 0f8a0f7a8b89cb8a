"""What the worker reads for the plate and the mask: a Read's files, or files Nuke renders.

A plate input that is a plain Read (files the worker reads, no frame offset, a
colourspace the plugin can name) is read by the worker directly. Anything else
(a graded plate, a Roto, a Read with an OCIO colourspace vfxmatte may not know)
is rendered by Nuke to a half-float EXR sequence in its working space first.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from vfxmatte_nuke import nuke_api
from vfxmatte_nuke.colour import Colourspace, read_colourspace, working_colourspace
from vfxmatte_nuke.errors import PluginError
from vfxmatte_nuke.paths import missing_runs

__all__ = [
    "Render",
    "Source",
    "plain_read",
    "render_inputs",
    "script_working_space",
]

#: Files the worker reads (OpenImageIO images, PyAV videos).
READABLE = (".exr", ".dpx", ".tif", ".tiff", ".png", ".jpg", ".jpeg", ".hdr", ".tga", ".sxr")
VIDEOS = (".mov", ".mp4", ".mkv", ".avi", ".mxf", ".webm", ".m4v")


@dataclass
class Source:
    """A Read the worker reads itself: its file pattern and colourspace."""

    path: str
    colourspace: Colourspace
    first_frame: int | None = None  # a video's first frame number in Nuke


@dataclass
class Render:
    """An input Nuke renders to EXR before the worker runs."""

    input_name: str  # the Input node inside the Group (plate or mask)
    pattern: str
    frames: list[int]
    channels: str  # "rgb" or "rgba"


def script_working_space() -> tuple:
    """``(workingSpaceLUT, vfxmatte colourspace)`` of the open script."""
    name = str(nuke_api.root_value("workingSpaceLUT", "linear"))
    colourspace = working_colourspace(
        name,
        str(nuke_api.root_value("colorManagement", "Nuke")),
        str(nuke_api.root_value("OCIO_config", "nuke-default")),
        str(nuke_api.root_value("customOCIOConfigPath", "")),
    )
    return name, colourspace


def plain_read(node: Any, colour: bool = True) -> Source | None:
    """The files of ``node`` when the worker can read them as Nuke shows them, else None.

    With ``colour`` off (masks: the worker reads their values as they are) the
    Read's colourspace does not matter.
    """
    if nuke_api.node_class(node) != "Read" or nuke_api.knob_value(node, "disable", False):
        return None
    path = nuke_api.read_path(node)
    extension = os.path.splitext(path)[1].lower()
    if not path or extension not in READABLE + VIDEOS:
        return None
    if str(nuke_api.knob_value(node, "frame", "") or "").strip():
        return None  # a frame offset or expression renumbers the frames
    working_name, working = script_working_space()
    colourspace = read_colourspace(
        bool(nuke_api.knob_value(node, "raw", False)),
        str(nuke_api.knob_value(node, "colorspace", "default")),
        working_name,
        working,
        extension,
    )
    if colourspace is None:
        if colour:
            return None
        colourspace = working
    first = int(nuke_api.knob_value(node, "first", 1)) if extension in VIDEOS else None
    return Source(path.replace("\\", "/"), colourspace, first)


def _write_knobs(render: Render) -> dict:
    return {
        "file": render.pattern,
        "file_type": "exr",
        "channels": render.channels,
        "datatype": "16 bit half",
        "compression": "Zip (1 scanline)",
        "raw": True,  # the working space's values, unchanged
    }


def render_inputs(group: Any, renders: list[Render], redo: bool = False) -> int:
    """Render the frames of ``renders`` that are not on disk yet (all with ``redo``).

    A temporary Write inside the Group is fed by the Input node and removed after.
    Returns the number of frames rendered.

    Raises:
        PluginError: the render failed or was cancelled.
    """
    count = 0
    for render in renders:
        runs = missing_runs(render.pattern, render.frames, redo)
        if not runs:
            continue
        os.makedirs(os.path.dirname(render.pattern), exist_ok=True)
        source = nuke_api.find_child(group, render.input_name)
        with nuke_api.inside(group):
            write = nuke_api.create_node("Write", **_write_knobs(render))
        nuke_api.connect(write, 0, source)
        try:
            for first, last in runs:
                nuke_api.execute(write, first, last)
                count += last - first + 1
        except RuntimeError as exc:
            raise PluginError(
                f"Rendering the '{render.input_name}' input to {render.pattern} stopped: {exc}"
            ) from None
        finally:
            nuke_api.delete_node(write)
    return count
