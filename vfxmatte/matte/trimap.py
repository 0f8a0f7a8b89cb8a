"""Trimaps from coarse masks, the search band around their edge, and its crops.

The classical matte stage (:mod:`vfxmatte.matte.classical`) solves for alpha only in
the *unknown band* of a trimap: the strip around the mask's edge where the mask is
not trusted. This module measures that strip from the object's size
(:func:`band_radii`, :func:`band_kernel_size`), splits the image around the mask's
edge into certain foreground, certain background and the band between
(:func:`search_band`, which :mod:`vfxmatte.matte.geodesic` then classifies from the
image), builds the plain symmetric trimap (:func:`trimap_from_mask`), and cuts the
band into a few rectangular crops (:func:`band_bbox`), so that later work costs in
proportion to the band, not to the frame.

Trimap values (HxW float32): ``0.0`` background, ``0.5`` unknown, ``1.0`` foreground.
"""

from __future__ import annotations

import logging
import math
from typing import NamedTuple

import cv2
import numpy as np

from vfxmatte.errors import ConfigError, InputError

__all__ = [
    "BG",
    "FG",
    "UNKNOWN",
    "BandCrop",
    "SearchBand",
    "band_bbox",
    "band_kernel_size",
    "band_radii",
    "search_band",
    "trimap_from_mask",
]

logger = logging.getLogger(__name__)

BG: float = 0.0
UNKNOWN: float = 0.5
FG: float = 1.0

BAND_MODES: tuple[str, ...] = ("bbox", "area")


class BandCrop(NamedTuple):
    """A rectangle of the frame, half-open: rows ``y0:y1``, columns ``x0:x1``."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def slices(self) -> tuple[slice, slice]:
        """``(rows, cols)`` slices, for ``array[crop.slices]``."""
        return slice(self.y0, self.y1), slice(self.x0, self.x1)

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the crop."""
        return self.y1 - self.y0, self.x1 - self.x0

    @property
    def size(self) -> int:
        """Number of pixels in the crop."""
        return (self.y1 - self.y0) * (self.x1 - self.x0)


def _check_mask(mask: np.ndarray, name: str = "mask") -> np.ndarray:
    arr = np.asarray(mask)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim != 2:
        raise InputError(
            f"{name} must be a 2-D HxW array; got shape {arr.shape}. "
            "Pass a single-channel mask (take one channel of an RGB mask)."
        )
    if arr.dtype != bool and not np.issubdtype(arr.dtype, np.number):
        raise InputError(f"{name} must be boolean or numeric; got dtype {arr.dtype}.")
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():
        raise InputError(f"{name} contains NaN or infinite values; clean the mask first.")
    return arr


def band_kernel_size(
    binary: np.ndarray,
    *,
    band_fraction: float = 0.04,
    band_mode: str = "bbox",
    min_band: int = 3,
    max_band: int = 64,
) -> int:
    """The width in pixels of the unknown band for one object, adapted to its size.

    * ``"bbox"`` (default): ``band_fraction`` x the short side of the mask's bounding
      box (Mask-guided Matting in the Wild, Park et al. CVPR 2023, §4.2).
    * ``"area"``: ``sqrt(area / eta)`` as in SEMat's mask-to-matte trimap, with
      ``eta = pi / (4 band_fraction^2)``, i.e. ``band_fraction`` x the diameter of
      the disk of the same area; both modes agree on a disk, and ``"area"`` is
      steadier on thin, diagonal or ragged objects whose box says little.

    Args:
        binary: HxW bool, the object's pixels.

    Returns:
        The kernel size, an int clipped to ``[min_band, max_band]``; ``min_band`` for
        an empty mask.
    """
    if band_mode not in BAND_MODES:
        raise ConfigError(f"band_mode got {band_mode!r}; valid choices: {', '.join(BAND_MODES)}.")
    if min_band < 1 or max_band < min_band:
        raise ConfigError(f"Band limits must satisfy 1 <= min_band <= max_band; got "
                          f"min_band={min_band}, max_band={max_band}.")
    if band_mode == "bbox":
        _, _, w, h = cv2.boundingRect(binary.astype(np.uint8))
        size = band_fraction * min(w, h)
    else:
        area = float(np.count_nonzero(binary))
        size = band_fraction * 2.0 * math.sqrt(area / math.pi)
    return int(np.clip(round(size), min_band, max_band))


def band_radii(
    binary: np.ndarray,
    *,
    inner_fraction: float,
    outer_fraction: float,
    band_mode: str = "bbox",
    min_band: int = 3,
    max_band: int = 64,
) -> tuple[int, int]:
    """How far inside and outside a mask's edge the uncertain band reaches, pixels.

    Each reach is ``fraction`` x the object's size, measured as in
    :func:`band_kernel_size` (a fraction of 1 gives the size itself), and clipped to
    ``[min_band, max_band]``.

    Returns:
        ``(inner, outer)`` radii in pixels.
    """
    inner = band_kernel_size(binary, band_fraction=inner_fraction, band_mode=band_mode,
                             min_band=min_band, max_band=max_band)
    outer = band_kernel_size(binary, band_fraction=outer_fraction, band_mode=band_mode,
                             min_band=min_band, max_band=max_band)
    return inner, outer


class SearchBand(NamedTuple):
    """The three regions around a mask's edge, HxW bool each, disjoint, covering the image.

    ``fg``: deeper than ``inner`` inside the mask (certain foreground); ``bg``: farther
    than ``outer`` outside it (certain background); ``band``: the rest.
    """

    fg: np.ndarray
    bg: np.ndarray
    band: np.ndarray


def search_band(binary: np.ndarray, inner: int, outer: int) -> SearchBand:
    """Split an image around a binary mask's edge into certain fg, certain bg and a band.

    ``fg = erode(mask, disk(inner))``, ``bg = ~dilate(mask, disk(outer))``, band the
    rest: an asymmetric version of :func:`trimap_from_mask`'s band, with radii rather
    than a diameter, and Euclidean distance transforms rather than morphology (the
    cost does not grow with the radii). As there, the mask continues beyond the image
    edge; every sizeable part of the mask thinner than ``2 inner`` keeps its deepest
    pixels as foreground, so that no object loses all its foreground seeds (see
    :func:`_keep_cores`).

    Args:
        binary: HxW bool mask.
        inner, outer: reach of the band inside and outside the mask's edge, pixels >= 0.
    """
    m8 = np.asarray(binary, dtype=np.uint8)
    fg = np.zeros(m8.shape, bool)
    bg = np.ones(m8.shape, bool)
    x, y, w, h = cv2.boundingRect(m8)
    if w == 0:
        return SearchBand(fg, bg, ~bg)
    # Only the mask's box grown by the outer reach can change. OpenCV's distance
    # transform takes the outside of the array as non-zero: the mask continues there.
    pad = outer + 1
    box = np.s_[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad]
    sub, rings = _pinholes(m8[box], inner)
    depth = cv2.distanceTransform(sub, cv2.DIST_L2, cv2.DIST_MASK_5)
    fg[box] = _keep_cores(depth > inner, sub, depth, inner) & ~rings
    outside = cv2.distanceTransform(1 - sub, cv2.DIST_L2, cv2.DIST_MASK_5)
    bg[box] = outside > outer
    return SearchBand(fg, bg, ~fg & ~bg)


def _pinholes(m8: np.ndarray, inner: int) -> tuple[np.ndarray, np.ndarray]:
    """The mask with its pinholes filled, and the rings around them (HxW bool).

    A pinhole is a hole of the mask (background enclosed by it, not touching the
    array's edge) no larger than a disk of radius ``inner``: too small to hold
    certain background, so its edge is not an edge of the object. Left as an edge,
    each one would reach ``inner`` into the object, and a few of them (a
    propagated mask where two objects meet, a keyed mask's speckle) join into a
    band across a whole part of the object that the segmentation may then give to
    the background. Instead the hole and a ring of its own radius plus 2 px
    (``inner`` at most) are band: the hole can still come out as background, the
    object around it cannot.
    """
    n, labels, stats, _ = cv2.connectedComponentsWithStats(1 - m8, connectivity=4)
    x, y, w, h, area = (stats[:, k] for k in range(5))
    h_, w_ = m8.shape
    small = (x > 0) & (y > 0) & (x + w < w_) & (y + h < h_) & (area <= math.pi * inner**2)
    small[0] = False  # the label of the mask itself
    if not small.any():
        return m8, np.zeros(m8.shape, bool)
    holes = small[labels]
    radius = np.sqrt(area / math.pi) + 2.0
    reach = cv2.distanceTransform((~holes).view(np.uint8), cv2.DIST_L2, 5)  # 0 on holes
    # Each pixel's ring radius: the largest of the holes within the widest ring of it.
    near = np.zeros(m8.shape, np.float32)
    near[holes] = np.minimum(radius[labels[holes]], inner)
    near = cv2.dilate(near, _ellipse(2 * int(min(radius[small].max(), inner)) + 1))
    return m8 | holes.view(np.uint8), reach <= near


def _keep_cores(fg: np.ndarray, m8: np.ndarray, depth: np.ndarray, inner: int) -> np.ndarray:
    """``fg`` plus the deepest pixels of the parts of ``m8`` that ``fg`` misses.

    Only parts at least as large as a disk of radius ``inner / 2`` get a core, so that
    specks of a noisy mask do not become certain foreground; when ``fg`` is empty
    the deepest pixels of the whole mask are kept whatever their part's size.
    """
    if not fg.any():
        return depth >= depth.max()
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m8, connectivity=8)
    missed = np.ones(n, bool)
    missed[labels[fg]] = False
    missed[0] = False  # the background is not a part
    missed &= stats[:, cv2.CC_STAT_AREA] >= math.pi * (inner / 2.0) ** 2
    if not missed.any():
        return fg
    deepest = np.zeros(n, np.float32)
    np.maximum.at(deepest, labels.ravel(), depth.ravel())
    return fg | (missed[labels] & (depth >= deepest[labels]))


def _ellipse(size: int) -> np.ndarray:
    d = 2 * (size // 2) + 1  # odd, so that the kernel is centred
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))


def trimap_from_mask(
    mask: np.ndarray,
    *,
    band_fraction: float = 0.04,
    band_mode: str = "bbox",
    min_band: int = 3,
    max_band: int = 64,
    threshold: float = 0.5,
) -> np.ndarray:
    """A trimap whose unknown band straddles the edge of a coarse mask.

    The mask is binarised (``mask > threshold``), and the band is
    ``dilate(mask, K) & ~erode(mask, K)`` with an elliptical structuring element
    ``K`` of diameter ``k`` = :func:`band_kernel_size` (rounded up to odd), so that
    the band is about ``k`` pixels wide, half inside and half outside the edge.
    ``k`` adapts to the object's size. The mask is treated as one object.

    Outside the frame the mask is taken as continuing (OpenCV's default border), so
    an object cut by the frame edge gets no band along that edge. An empty mask gives
    an all-background trimap and a full mask an all-foreground one. When erosion
    removes the whole foreground (an object thinner than the band), the pixels
    deepest inside the mask are kept as foreground so that the solver keeps at
    least one foreground constraint.

    Args:
        mask: HxW bool or float (any range; compared with ``threshold``).
        band_fraction: band width as a fraction of the object's size (see
            :func:`band_kernel_size`).
        band_mode: ``"bbox"`` or ``"area"``.
        min_band, max_band: clip of the band width, pixels.
        threshold: values above it are foreground.

    Returns:
        HxW float32 trimap with values in {0.0 background, 0.5 unknown, 1.0 foreground}.

    Raises:
        InputError: the mask is not 2-D, not numeric or holds NaN.
        ConfigError: ``band_mode`` or the band limits are invalid.
    """
    arr = _check_mask(mask)
    binary = arr > threshold
    k = band_kernel_size(binary, band_fraction=band_fraction, band_mode=band_mode,
                         min_band=min_band, max_band=max_band)
    trimap = np.full(binary.shape, BG, dtype=np.float32)
    m8 = binary.astype(np.uint8)
    x, y, w, h = cv2.boundingRect(m8)
    if w == 0:
        return trimap
    # Morphology reaches k/2 pixels: only the object's padded box can change.
    pad = k // 2 + 1
    box = np.s_[max(0, y - pad):y + h + pad, max(0, x - pad):x + w + pad]
    kernel = _ellipse(k)
    dilated = cv2.dilate(m8[box], kernel).astype(bool)
    eroded = cv2.erode(m8[box], kernel).astype(bool)
    if not eroded.any():
        eroded = _deepest_pixels(m8[box])
    sub = trimap[box]
    sub[dilated] = UNKNOWN
    sub[eroded] = FG
    logger.debug("trimap: band kernel %d px, %d unknown pixels", k,
                 int(np.count_nonzero(dilated & ~eroded)))
    return trimap


def _deepest_pixels(m8: np.ndarray) -> np.ndarray:
    """The pixels of the mask farthest from its edge (its 'core')."""
    dist = cv2.distanceTransform(np.pad(m8, 1), cv2.DIST_L2, 3)[1:-1, 1:-1]
    return dist >= dist.max()


def band_bbox(trimap: np.ndarray, pad: int, *, merge_gap: int = 0) -> list[BandCrop]:
    """Padded bounding boxes of the unknown band's connected regions.

    Each 8-connected region of unknown pixels (``trimap == 0.5``) gets its bounding
    box padded by ``pad`` pixels and clipped to the frame. Boxes closer than
    ``merge_gap`` pixels (overlapping ones always) are merged into their common
    bounding box, repeatedly, so that the crops returned are **disjoint** and every
    unknown pixel is at least ``pad`` pixels from its crop's edge (unless the frame
    edge is nearer). Any pixel within ``pad`` of an unknown pixel therefore lies in
    that pixel's crop.

    Args:
        trimap: HxW float trimap (0 / 0.5 / 1).
        pad: margin in pixels around each region, >= 0.
        merge_gap: merge boxes whose padded extents are closer than this, pixels.

    Returns:
        The crops, sorted top-to-bottom then left-to-right; empty when the trimap has
        no unknown pixel.
    """
    arr = _check_mask(trimap, "trimap")
    if pad < 0 or merge_gap < 0:
        raise ConfigError(f"pad and merge_gap must be >= 0; got pad={pad}, merge_gap={merge_gap}.")
    unknown = (arr == UNKNOWN).astype(np.uint8)
    h, w = unknown.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats(unknown, connectivity=8)
    boxes = [_pad_box(stats[i], pad, h, w) for i in range(1, n)]
    while True:
        merged = _merge_boxes(boxes, h, w, merge_gap)
        if len(merged) == len(boxes):
            break
        boxes = merged
    return sorted(BandCrop(*b) for b in boxes)


def _pad_box(stat: np.ndarray, pad: int, h: int, w: int) -> tuple[int, int, int, int]:
    x, y, bw, bh = (int(v) for v in stat[:4])
    return max(0, y - pad), min(h, y + bh + pad), max(0, x - pad), min(w, x + bw + pad)


def _merge_boxes(
    boxes: list[tuple[int, int, int, int]], h: int, w: int, gap: int
) -> list[tuple[int, int, int, int]]:
    """One merging pass: paint the boxes (grown by ``gap``) and take the components."""
    if len(boxes) <= 1:
        return boxes
    canvas = np.zeros((h, w), dtype=np.uint8)
    for y0, y1, x0, x1 in boxes:
        canvas[max(0, y0 - gap):y1 + gap, max(0, x0 - gap):x1 + gap] = 1
    n, labels, _, _ = cv2.connectedComponentsWithStats(canvas, connectivity=8)
    out: dict[int, list[int]] = {}
    for y0, y1, x0, x1 in boxes:
        label = int(labels[y0, x0])
        if label in out:
            b = out[label]
            out[label] = [min(b[0], y0), max(b[1], y1), min(b[2], x0), max(b[3], x1)]
        else:
            out[label] = [y0, y1, x0, x1]
    return [(b[0], b[1], b[2], b[3]) for b in out.values()]
