"""Matte stage: guidance + frame -> alpha and confidence at working resolution.

Backends are functions ``fn(image, guidance, config) -> (alpha, confidence)``
registered by name and imported when used.
"""

from __future__ import annotations

from vfxmatte.registry import BackendEntry, Registry

MATTE_BACKENDS = Registry(
    "matte",
    [
        BackendEntry(
            "classical",
            "vfxmatte.matte.classical:matte_classical",
            "trimap from the mask, closed-form alpha in the unknown band (weight-free)",
            extra="classical",
        ),
    ],
)

__all__ = ["MATTE_BACKENDS"]
