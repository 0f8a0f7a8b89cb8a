"""Binary mask cleanup after propagation: fill small holes, drop small islands.

A warped mask picks up pinholes where the flow is wrong for a few pixels and
specks where background texture was dragged along. Both are removed with
connected components (``cv2.connectedComponentsWithStats``) at full resolution:
the foreground is labelled with 8-connectivity and the background with the
complementary 4-connectivity, so that a diagonal gap never counts as both.

Areas are given either as a fraction of the object (``value < 1``: a fraction
of the mask's foreground pixel count) or as pixels (``value >= 1``); ``0``
disables the step. See :func:`area_in_pixels`.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["area_in_pixels", "clean_mask", "fill_holes", "remove_islands"]


def area_in_pixels(value: float, object_area: int) -> float:
    """Resolve an area option to pixels.

    Args:
        value: ``0`` (off), a fraction of the object area in ``(0, 1)``, or a
            pixel count ``>= 1``.
        object_area: foreground pixel count of the mask being cleaned.

    Returns:
        The area in pixels (may be fractional; compare with ``<``).
    """
    if value <= 0:
        return 0.0
    return float(value) * object_area if value < 1 else float(value)


def fill_holes(mask: np.ndarray, max_area: float) -> np.ndarray:
    """Fill background regions enclosed by the mask that are smaller than ``max_area``.

    A background region that touches the image border is never a hole.

    Args:
        mask: ``H×W`` bool, True for foreground.
        max_area: regions with fewer pixels than this are filled.

    Returns:
        ``H×W`` bool, a new array (``mask`` is not modified).
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if max_area <= 0 or mask.all() or not mask.any():
        return mask.copy()
    background = (~mask).view(np.uint8)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(background, connectivity=4)
    h, w = mask.shape
    x, y = stats[:, cv2.CC_STAT_LEFT], stats[:, cv2.CC_STAT_TOP]
    bw, bh = stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT]
    inside = (x > 0) & (y > 0) & (x + bw < w) & (y + bh < h)
    fill = inside & (stats[:, cv2.CC_STAT_AREA] < max_area)
    fill[0] = False  # label 0 is the foreground itself
    if not fill[1:].any():
        return mask.copy()
    return mask | fill[labels]


def remove_islands(mask: np.ndarray, min_area: float) -> np.ndarray:
    """Remove foreground components smaller than ``min_area``, except the largest one.

    The largest component always survives, so a small object is never erased
    by its own cleanup.

    Args:
        mask: ``H×W`` bool, True for foreground.
        min_area: components with fewer pixels than this are removed.

    Returns:
        ``H×W`` bool, a new array (``mask`` is not modified).
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    if min_area <= 0 or not mask.any():
        return mask.copy()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask.view(np.uint8), connectivity=8)
    if n <= 2:  # background plus at most one component
        return mask.copy()
    areas = stats[:, cv2.CC_STAT_AREA]
    keep = areas >= min_area
    keep[0] = False
    keep[1 + int(np.argmax(areas[1:]))] = True
    if keep[1:].all():
        return mask.copy()
    return keep[labels]


def clean_mask(mask: np.ndarray, fill_holes_area: float, min_island_area: float) -> np.ndarray:
    """Fill small holes, then remove small islands.

    Args:
        mask: ``H×W`` bool, True for foreground.
        fill_holes_area: hole size limit, fraction of the object area (``< 1``)
            or pixels (``>= 1``); ``0`` disables.
        min_island_area: island size limit, same units; ``0`` disables.

    Returns:
        ``H×W`` bool, a new array.
    """
    mask = np.ascontiguousarray(mask, dtype=bool)
    area = int(np.count_nonzero(mask))
    out = fill_holes(mask, area_in_pixels(fill_holes_area, area))
    return remove_islands(out, area_in_pixels(min_island_area, area))
