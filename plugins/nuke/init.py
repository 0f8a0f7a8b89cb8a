"""vfxmatte for Nuke: runs at every Nuke start (GUI, terminal and render nodes).

Put this folder on NUKE_PATH (see the README, section Nuke); Nuke then finds the
``vfxmatte_nuke`` package here. Nothing heavy happens at start-up: torch and
vfxmatte never load into Nuke, the node's buttons talk to a separate worker
process when pressed, and a render node only reads the EXRs the node points at.
The menus are added by ``menu.py`` (interactive sessions only).
"""

import vfxmatte_nuke  # noqa: F401 - an incomplete plugin folder fails here, at start-up
