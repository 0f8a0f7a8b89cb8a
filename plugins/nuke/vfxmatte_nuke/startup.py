"""What ``menu.py`` sets up in an interactive Nuke: menus and the preference knob."""

from __future__ import annotations

from vfxmatte_nuke import nuke_api
from vfxmatte_nuke.knobs import KnobSpec

__all__ = ["MENU", "PREFERENCE_KNOBS", "add_menus"]

MENU = "vfxmatte"
#: Preferences > vfxmatte: the worker's Python for every script on this machine.
PREFERENCE_KNOBS = [
    KnobSpec("tab", "vfxmatte_tab", "vfxmatte"),
    KnobSpec(
        "file",
        "vfxmatte_python",
        "worker python",
        default="",
        tooltip="The python executable of the environment where vfxmatte is installed, e.g. "
        "/opt/vfxmatte/.venv/bin/python. A VfxMatte node's own 'worker python' knob wins; "
        "the VFXMATTE_PYTHON environment variable is used when both are empty.",
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
