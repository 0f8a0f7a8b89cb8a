"""vfxmatte for ComfyUI: production mattes of plates, as nodes.

Link or copy this folder into ``ComfyUI/custom_nodes/`` under any name but
``vfxmatte`` (e.g. ``custom_nodes/vfxmatte_nodes``) and ``pip install -r
requirements.txt`` in ComfyUI's Python. This module only exports the mappings.
"""

from __future__ import annotations

if __name__ == "vfxmatte":  # an old ComfyUI imports the folder under its own name
    raise ImportError(
        "The vfxmatte ComfyUI nodes are installed in a folder named 'vfxmatte', which hides the "
        "vfxmatte library itself; rename the folder (e.g. custom_nodes/vfxmatte_nodes)."
    )

from .mappings import NODE_CLASS_MAPPINGS, NODE_DISPLAY_NAME_MAPPINGS

__all__ = ["NODE_CLASS_MAPPINGS", "NODE_DISPLAY_NAME_MAPPINGS"]
