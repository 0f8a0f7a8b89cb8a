"""vfxmatte for Nuke: the VfxMatte node, which runs vfxmatte in a separate worker process.

Nuke ships its own Python and libtorch, so nothing here imports torch or vfxmatte:
the node talks to ``python -m vfxmatte.worker`` in another Python environment
(:mod:`vfxmatte_nuke.client`). Only :mod:`vfxmatte_nuke.nuke_api` calls ``nuke``;
every other module runs without Nuke. Python 3.7+ (Nuke 13 and later).

Modules: ``schema`` (the option schema the knobs come from), ``knobs`` (knob
list and knob values -> options), ``graph`` (the nodes inside the Group), ``node``
(builds the Group), ``script`` (the same node as ``.nk``/gizmo text), ``client``
(the worker process), ``process`` (the Process, Farm and "current frame"
buttons), ``inputs`` (what the worker reads, what Nuke renders first),
``colour`` (Nuke colourspaces -> vfxmatte's), ``paths`` (frame patterns and where
files go), ``startup`` (menus and the preference), ``errors``.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
