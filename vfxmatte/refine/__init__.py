"""Refine stage: sparse full-resolution refinement of the uncertain pixels.

Backends are classes built once per run from their config, ``cls(config)``, and
called once per frame as ``refiner(image, alpha, confidence, features=None) ->
alpha`` (see :mod:`vfxmatte.refine.base`); ``reset()`` starts a new shot. They are
registered by name and imported when used.
"""

from __future__ import annotations

from vfxmatte.registry import BackendEntry, Registry

REFINE_BACKENDS = Registry(
    "refine",
    [
        BackendEntry(
            "none",
            "vfxmatte.refine.none:NoRefine",
            "keep the matte stage's alpha (upsampled to the plate's size)",
        ),
        BackendEntry(
            "sparse",
            "vfxmatte.refine.sparse:SparseRefiner",
            "sparse full-resolution refinement of the uncertain pixels (needs refine weights; "
            "impl=spconv needs spconv)",
        ),
    ],
)

__all__ = ["REFINE_BACKENDS"]
