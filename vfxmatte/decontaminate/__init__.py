"""Decontaminate stage: straight foreground colour F with I = aF + (1-a)B, no spill.

Backends are registered by name and imported when used: a function
``fn(linear_image, alpha, config) -> fg``, or a class built once per run as
``cls(config)`` and called as ``obj(linear_image, alpha)`` (backends with weights).
"""

from __future__ import annotations

from vfxmatte.registry import BackendEntry, Registry

DECONTAMINATE_BACKENDS = Registry(
    "decontaminate",
    [
        BackendEntry(
            "fusion",
            "vfxmatte.decontaminate.fusion:estimate_foreground_fusion",
            "multi-level estimation fused with nearby opaque colour at low alpha, weight-free",
            extra="classical",
        ),
        BackendEntry(
            "multilevel",
            "vfxmatte.decontaminate.multilevel:estimate_foreground_multilevel",
            "fast multi-level foreground estimation (Germer et al. 2021), weight-free",
            extra="classical",
        ),
        BackendEntry(
            "network",
            "vfxmatte.decontaminate.network:NetworkForeground",
            "foreground colour network (MGMatting) on the uncertain band, needs weights",
        ),
        BackendEntry(
            "none",
            "vfxmatte.decontaminate.passthrough:foreground_passthrough",
            "the plate colour where alpha > 0, unchanged (keeps background spill)",
        ),
    ],
)

__all__ = ["DECONTAMINATE_BACKENDS"]
