"""What ``menu.py`` sets up in an interactive Nuke: menus and the preference knob."""

from __future__ import annotations

import os

from vfxmatte_nuke import nuke_api
from vfxmatte_nuke.knobs import KnobSpec
from vfxmatte_nuke.trust import (
    ALLOWED_PYTHONS,
    ALLOWED_PYTHONS_KNOB,
    ALLOWED_SCHEDULERS,
    ALLOWED_SCHEDULERS_KNOB,
)

__all__ = ["MENU", "PREFERENCE_KNOBS", "add_menus"]

MENU = "vfxmatte"
#: Preferences > vfxmatte: the worker's Python for every script on this machine, and the
#: interpreters and schedulers a node's knobs may name without asking (see :mod:`.trust`).
PREFERENCE_KNOBS = [
    KnobSpec("tab", "vfxmatte_tab", "vfxmatte"),
    KnobSpec(
        "file",
        "vfxmatte_python",
        "worker python",
        default="",
        tooltip="The python executable of the environment where vfxmatte is installed, e.g. "
        "/opt/vfxmatte/.venv/bin/python. A VfxMatte node's own 'worker python' knob wins "
        "when it names this one or an allowed one (else you are asked first); the "
        "VFXMATTE_PYTHON environment variable is used when both are empty.",
    ),
    KnobSpec(
        "string",
        ALLOWED_PYTHONS_KNOB,
        "allowed worker pythons",
        default="",
        tooltip="More worker pythons a VfxMatte node's 'worker python' knob may name without "
        f"asking you, separated by '{os.pathsep}' (also {ALLOWED_PYTHONS}). A script from "
        "someone else can name any program in that knob; one not listed here is run only "
        "after you said yes (and never without a GUI).",
    ),
    KnobSpec(
        "string",
        ALLOWED_SCHEDULERS_KNOB,
        "allowed schedulers",
        default="",
        tooltip="Dask schedulers (tcp://HOST:PORT, comma-separated) a VfxMatte node's 'engine "
        f"scheduler' knob may name without asking you (also {ALLOWED_SCHEDULERS}): a "
        "scheduler can make the worker run any code.",
    ),
]


def add_menus() -> None:
    """The "vfxmatte" node menu (VfxMatte), its worker command, and the preference knob."""
    nuke_api.add_menu_command(
        f"Nodes/{MENU}", "VfxMatte", "import vfxmatte_nuke.node; vfxmatte_nuke.node.create_node()"
    )
    nuke_api.add_menu_command(
        f"Nuke/{MENU}",
        "Stop workers",
        "import vfxmatte_nuke.client; vfxmatte_nuke.client.stop_workers()",
    )
    nuke_api.add_preference_knobs(PREFERENCE_KNOBS)
