"""vfxmatte for Nuke, interactive sessions: the "vfxmatte" menu with the VfxMatte node.

Also adds Preferences > vfxmatte > worker python and Nuke > vfxmatte > Stop workers.
"""

import vfxmatte_nuke.startup

vfxmatte_nuke.startup.add_menus()
