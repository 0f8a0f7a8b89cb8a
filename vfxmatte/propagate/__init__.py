"""Propagate stage: keyframe masks -> a guidance mask for every frame.

Backends are classes following :class:`vfxmatte.propagate.base.Propagator`,
registered by name and imported when used.
"""

from __future__ import annotations

from vfxmatte.registry import BackendEntry, Registry

PROPAGATE_BACKENDS = Registry(
    "propagate",
    [
        BackendEntry(
            "flow",
            "vfxmatte.propagate.flow:FlowPropagator",
            "dense optical-flow warp of the previous mask + cleanup (weight-free)",
        ),
        BackendEntry(
            "sam2",
            "vfxmatte.propagate.sam2:Sam2Propagator",
            "SAM 2 video predictor (official sam2 package), several objects, bounded memory",
            extra="sam2",
        ),
        BackendEntry(
            "snapcut",
            "vfxmatte.propagate.snapcut:SnapCutPropagator",
            "Video SnapCut-style local colour windows + shape prior carried by consistent flow, "
            "occlusion-aware, with a drift report (weight-free)",
        ),
        BackendEntry(
            "static",
            "vfxmatte.propagate.static:StaticPropagator",
            "the keyframe mask on every frame",
        ),
        BackendEntry(
            "given",
            "vfxmatte.propagate.given:GivenPropagator",
            "a mask per frame supplied by the user (roto)",
        ),
    ],
)

__all__ = ["PROPAGATE_BACKENDS"]
