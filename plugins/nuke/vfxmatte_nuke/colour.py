"""Which vfxmatte colourspace a Nuke image is in.

The worker reads a plain Read's files itself, so it must know their colourspace;
inputs that Nuke renders for it are written raw, i.e. in Nuke's working space.
Only names whose meaning is certain are mapped; for any other Read colourspace
the plugin lets Nuke convert (it renders the input) instead of guessing.

* Nuke's own colour management (``nuke-default``): ``linear`` is linear Rec.709
  (vfxmatte ``lin_rec709``), ``sRGB`` is ``sRGB``.
* A custom OCIO config: the working space's name, resolved by the worker in the
  same config file (its path is passed as ``input.ocio``).
* Nuke's built-in OCIO configs (ACES): ``ACEScg`` (also the ``scene_linear`` role).
"""

from __future__ import annotations

from typing import Tuple

__all__ = ["FLOAT_EXTENSIONS", "Colourspace", "read_colourspace", "working_colourspace"]

#: (vfxmatte colourspace name, OCIO config path or "" for vfxmatte's built-in one)
Colourspace = Tuple[str, str]


def _strip_default(name: str) -> str:
    """``"default (linear)"`` -> ``"linear"``."""
    name = (name or "").strip()
    if name.startswith("default (") and name.endswith(")"):
        return name[len("default (") : -1].strip()
    return name


def working_colourspace(
    working: str, management: str = "Nuke", config: str = "nuke-default", custom_path: str = ""
) -> Colourspace:
    """Nuke's working space (Project Settings > Color) as a vfxmatte colourspace.

    Args:
        working: the ``workingSpaceLUT`` knob.
        management: ``colorManagement`` (``Nuke`` or ``OCIO``).
        config: ``OCIO_config`` (``nuke-default``, ``custom``, an ACES config ...).
        custom_path: ``customOCIOConfigPath`` (used when ``config`` is ``custom``).
    """
    name = _strip_default(working)
    if management != "OCIO" or config in ("", "nuke-default"):
        return ("lin_rec709" if name.lower() in ("", "linear", "scene_linear") else name), ""
    if config == "custom" and custom_path:
        return name, custom_path
    if "acescg" in name.lower() or name == "scene_linear":
        return "ACEScg", ""
    return name, ""


#: Files Nuke reads as linear by default (float data).
FLOAT_EXTENSIONS = (".exr", ".hdr", ".sxr", ".pfm")


def read_colourspace(
    raw: bool, colorspace: str, working_name: str, working: Colourspace, extension: str = ""
) -> Colourspace | None:
    """The colourspace of a Read's files, or None when the plugin cannot be sure.

    Args:
        raw: the Read's ``raw`` knob (no conversion: the files are taken as working space).
        colorspace: the Read's ``colorspace`` knob (``default (linear)``, ``sRGB`` ...).
        working_name: the script's ``workingSpaceLUT`` knob.
        working: :func:`working_colourspace` of the script.
        extension: the files' extension, for a bare ``default`` (float files are linear).
    """
    name = _strip_default(colorspace)
    if raw or name == _strip_default(working_name):
        return working
    if name == "default" and extension.lower() in FLOAT_EXTENSIONS:
        return working
    if name == "sRGB" and working == ("lin_rec709", ""):
        return "sRGB", ""  # nuke-default's sRGB
    return None
