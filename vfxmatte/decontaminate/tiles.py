"""Band crops: cut a frame into tiles and keep the runs of tiles an uncertain band touches.

Used by the foreground estimators (multi-level solver, colour network), whose cost
should follow the band rather than the frame.
"""

from __future__ import annotations

import numpy as np

__all__ = ["Slices", "area", "band_crops", "relative"]

Slices = tuple[slice, slice]


def band_crops(band: np.ndarray, tile: int, context: int) -> list[tuple[Slices, Slices]]:
    """Regions to solve: ``(crop, core)`` for each row run of tiles touching the band.

    ``band`` is the ``H×W`` bool mask of uncertain pixels. The core is the run
    of tiles, whose result is kept; the crop adds ``context`` pixels on every
    side (clamped to the frame).
    """
    h, w = band.shape
    rows, cols = -(-h // tile), -(-w // tile)
    padded = np.zeros((rows * tile, cols * tile), dtype=bool)
    padded[:h, :w] = band
    active = padded.reshape(rows, tile, cols, tile).any(axis=(1, 3))
    crops = []
    for r in range(rows):
        y0, y1 = r * tile, min(h, (r + 1) * tile)
        c = 0
        while c < cols:
            if not active[r, c]:
                c += 1
                continue
            start = c
            while c < cols and active[r, c]:
                c += 1
            x0, x1 = start * tile, min(w, c * tile)
            core = (slice(y0, y1), slice(x0, x1))
            crop = (
                slice(max(0, y0 - context), min(h, y1 + context)),
                slice(max(0, x0 - context), min(w, x1 + context)),
            )
            crops.append((crop, core))
    return crops


def area(region: Slices) -> int:
    return (region[0].stop - region[0].start) * (region[1].stop - region[1].start)


def relative(core: Slices, crop: Slices) -> Slices:
    """``core`` in the coordinates of ``crop`` (which contains it)."""
    return (
        slice(core[0].start - crop[0].start, core[0].stop - crop[0].start),
        slice(core[1].start - crop[1].start, core[1].stop - crop[1].start),
    )
