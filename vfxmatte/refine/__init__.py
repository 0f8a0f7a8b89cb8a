"""Refine stage: sparse full-resolution refinement of the uncertain pixels.

The ``none`` backend keeps the matte stage's alpha; the sparse network backends
arrive with the matting network.
"""

from __future__ import annotations

REFINE_BACKENDS = ("none",)

__all__ = ["REFINE_BACKENDS"]
