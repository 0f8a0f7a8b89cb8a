"""vfxmatte for ComfyUI: production mattes of plates, as nodes.

Link or copy this folder into ``ComfyUI/custom_nodes/`` under any name but
``vfxmatte`` (e.g. ``custom_nodes/vfxmatte_nodes``) and ``pip install -r
requirements.txt`` in ComfyUI's Python (see README.md here). This module only
exports the mappings and the web folder.
"""

from __future__ import annotations

if __name__ == "vfxmatte":  # an old ComfyUI imports the folder under its own name
    raise ImportError(
        "The vfxmatte ComfyUI nodes are installed in a folder named 'vfxmatte', which hides the "
        "vfxmatte library itself; rename the folder (e.g. custom_nodes/vfxmatte_nodes)."
    )

from .host import start_warm_up
from .mappings import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

start_warm_up()  # pymatting's first-run compile, in a child process while ComfyUI starts

#: The front-end extension (web/vfxmatte.js): shows each node's summary text on the node.
WEB_DIRECTORY = "./web"

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS", "WEB_DIRECTORY"]
