"""Decontaminate stage: straight foreground colour F with I = aF + (1-a)B, no spill.

Backends are functions ``fn(linear_image, alpha, config) -> fg`` registered by
name and imported when used.
"""

from __future__ import annotations

from vfxmatte.registry import BackendEntry, Registry

DECONTAMINATE_BACKENDS = Registry(
    "decontaminate",
    [
        BackendEntry(
            "multilevel",
            "vfxmatte.decontaminate.multilevel:estimate_foreground_multilevel",
            "fast multi-level foreground estimation (Germer et al. 2021), weight-free",
            extra="classical",
        ),
        BackendEntry(
            "none",
            "vfxmatte.decontaminate.passthrough:foreground_passthrough",
            "the plate colour where alpha > 0, unchanged (keeps background spill)",
        ),
    ],
)

__all__ = ["DECONTAMINATE_BACKENDS"]
