"""Matte stage: guidance + frame -> alpha and confidence at working resolution.

Backends are registered by name and imported when used: either a function
``fn(image, guidance, config) -> (alpha, confidence)``, or a class built once per
run as ``cls(config)`` whose instances are called as ``obj(image, guidance)``
(backends that load weights).
"""

from __future__ import annotations

from vfxmatte.registry import BackendEntry, Registry

MATTE_BACKENDS = Registry(
    "matte",
    [
        BackendEntry(
            "classical",
            "vfxmatte.matte.classical:ClassicalMatte",
            "trimap inferred from image and mask, closed-form alpha in its band, previous "
            "frame as a weak prior (weight-free)",
            extra="classical",
        ),
        BackendEntry(
            "network",
            "vfxmatte.matte.network.backend:NetworkMatte",
            "learned mask-guided matting network (PRN + iterative decoding), needs weights",
        ),
    ],
)

__all__ = ["MATTE_BACKENDS"]
