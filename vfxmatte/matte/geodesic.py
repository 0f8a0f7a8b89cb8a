"""Trimaps that follow the image's edges rather than the mask's: geodesic classification.

A propagated or hand-drawn mask is off by several pixels, misses hair that sticks out
far beyond it and marks a semi-transparent veil as solid when it covers it. So the
trimap of the classical matte stage does not trust the mask's edge: it takes a wide
*search band* around it (:func:`vfxmatte.matte.trimap.search_band`, reaching
``inner`` pixels inside and ``outer`` outside) and decides each band pixel from the
image, in the manner of geodesic segmentation and matting (Bai & Sapiro, "A Geodesic
Framework for Fast Interactive Image and Video Segmentation and Matting", ICCV 2007;
Criminisi, Sharp & Blake, "GeoS: Geodesic Image Segmentation", ECCV 2008), with the
mask's certain inside and outside as the scribbles:

1. ``D_f`` and ``D_b``, the geodesic distances of each band pixel to the certain
   foreground and to the certain background: the least total colour change along a
   path inside the band (:func:`geodesic_distances`). Steps up to a few times the
   band's median step count as texture or shading, not edges, so that a path along
   a smoothly shaded surface is nearly free while crossing an object's edge costs its
   contrast; a small cost per pixel of length makes far pixels less likely.
2. The guidance as a prior on position: a pixel ``d`` pixels on the wrong side of the
   mask's edge pays ``mask_trust * d / reach`` extra to be claimed by that side.
3. The geodesic foreground probability ``p = D_b / (D_f + D_b)`` (Bai & Sapiro's
   ``ω_F / (ω_F + ω_B)`` with ``ω = D^-r``, ``r = 1``, without their colour
   likelihoods). A pixel is certain foreground when ``D_f < D_b`` and either
   ``p >= certainty`` or ``D_f < min_edge`` (no edge at all separates it from the
   foreground); likewise for the background. The rest is *unknown*, grown by ``grow``
   pixels: the object's soft edge, hair (a strand's pixels are mixed and sit between
   edges on both sides), and translucent regions, which are separated from both
   sides by edges of partial contrast.

The unknown pixels also get a prior alpha ``(p + mask) / 2`` that the closed-form
solver uses as a weak data term (:mod:`vfxmatte.matte.closed_form`): the
colour-line model leaves the level of a flat translucent region free, and this
decides it.

Cost follows the band: the graph has one node per band pixel, and Dijkstra's
algorithm (scipy's ``csgraph``) runs twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import NamedTuple

import cv2
import numpy as np

from vfxmatte.matte.trimap import FG, UNKNOWN, SearchBand, search_band

__all__ = ["GeodesicTrimap", "geodesic_distances", "trimap_geodesic"]

logger = logging.getLogger(__name__)

_FAR = 1e6  # stands for an infinite geodesic distance in the ratio p
# 8-neighbourhood, each undirected edge once: (dy, dx, length).
_STEPS = ((0, 1, 1.0), (1, 0, 1.0), (1, 1, 2.0**0.5), (1, -1, 2.0**0.5))


class GeodesicTrimap(NamedTuple):
    """A trimap (HxW float32: 0 bg, 0.5 unknown, 1 fg) and the prior alpha of its
    unknown pixels (HxW float32 in [0,1], equal to the trimap elsewhere)."""

    trimap: np.ndarray
    prior: np.ndarray


def geodesic_distances(
    image: np.ndarray,
    nodes: np.ndarray,
    sources: Sequence[np.ndarray],
    *,
    edge_threshold: float = 0.004,
    texture_factor: float = 3.0,
    step_cost: float = 1e-3,
) -> list[np.ndarray]:
    """Geodesic distances from each set of ``sources`` over the 8-connected graph of ``nodes``.

    The cost of a step of length ``l`` (1 or sqrt 2) between neighbours ``i, j`` is
    ``max(|I_i - I_j| - t * l, 0) + step_cost * l``: the colour change beyond what
    texture and shading explain, plus a small length term so that, among paths that
    cross no edge, the shorter wins. The texture level ``t`` adapts to the image:
    ``t = max(edge_threshold, texture_factor * median |I_i - I_j|)`` over the unit
    steps of the graph (most steps of a band are texture, not edges; the median of a
    plate's steps falls as its resolution rises).

    Args:
        image: HxWx3 float RGB, display-referred in [0,1].
        nodes: HxW bool, the pixels paths may use.
        sources: HxW bool arrays, where each distance is 0 (only pixels inside
            ``nodes`` count).
        edge_threshold: smallest ``t``, colour (Euclidean, display units) per pixel.
        texture_factor: ``t`` in multiples of the median step.
        step_cost: cost per pixel of length, > 0.

    Returns:
        One HxW float64 array per source set; ``inf`` outside ``nodes`` and where no
        source is reachable.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import dijkstra

    h, w = nodes.shape
    flat = np.flatnonzero(nodes)
    node_of = np.full(h * w, -1, dtype=np.int64)
    node_of[flat] = np.arange(flat.size)
    colours = np.asarray(image, dtype=np.float32).reshape(-1, 3)
    ys, xs = np.divmod(flat, w)
    rows, cols, steps, lengths = [], [], [], []
    for dy, dx, length in _STEPS:
        y2, x2 = ys + dy, xs + dx
        inside = (y2 < h) & (x2 >= 0) & (x2 < w)
        p, q = flat[inside], y2[inside] * w + x2[inside]
        linked = node_of[q] >= 0
        p, q = p[linked], q[linked]
        steps.append(np.sqrt(((colours[p] - colours[q]) ** 2).sum(axis=1)))
        lengths.append(np.full(p.size, length, dtype=np.float32))
        rows.append(node_of[p])
        cols.append(node_of[q])
    step, length = np.concatenate(steps), np.concatenate(lengths)
    unit = length == 1.0
    t = max(edge_threshold, texture_factor * float(np.median(step[unit]))) if unit.any() else 0.0
    cost = np.maximum(step - t * length, 0.0) + step_cost * length  # > 0: scipy drops zeros
    graph = csr_matrix((cost, (np.concatenate(rows), np.concatenate(cols))),
                       shape=(flat.size, flat.size))
    out = []
    for src in sources:
        dist = np.full(h * w, np.inf)
        src_nodes = np.flatnonzero(np.asarray(src).ravel()[flat])
        if src_nodes.size:
            dist[flat] = dijkstra(graph, directed=False, indices=src_nodes, min_only=True)
        out.append(dist.reshape(h, w))
    logger.debug("geodesic: %d nodes, texture level %.4f", flat.size, t)
    return out


def trimap_geodesic(
    image: np.ndarray,
    binary: np.ndarray,
    *,
    inner: int,
    outer: int,
    edge_threshold: float = 0.004,
    texture_factor: float = 3.0,
    min_edge: float = 0.03,
    certainty: float = 0.85,
    mask_trust: float = 0.1,
    length_cost: float = 0.02,
    grow: int = 1,
) -> GeodesicTrimap:
    """Trimap and prior alpha of one image (or crop) from a coarse mask, by geodesics.

    See the module docstring for the method. The crop must hold the whole search band
    of the mask (``outer`` pixels around it) plus a margin of background.

    Args:
        image: HxWx3 float RGB, display-referred in [0,1].
        binary: HxW bool, the coarse mask.
        inner, outer: reach of the search band inside and outside the mask's edge, px.
        edge_threshold, texture_factor: the colour step per pixel treated as texture
            (see :func:`geodesic_distances`).
        min_edge: a band pixel whose distance to one side is below this (and below its
            distance to the other) belongs to that side whatever ``p``.
        certainty: ``p`` (or ``1 - p``) from which a band pixel is certain, in (0.5, 1].
        mask_trust: geodesic penalty per reach of distance on the wrong side of the
            mask's edge.
        length_cost: geodesic cost of a path as long as the mean reach (a distance
            prior, independent of the resolution: the farther from a side, the less
            likely a pixel belongs to it).
        grow: dilation of the unknown region, pixels (inside the band only).

    Returns:
        :class:`GeodesicTrimap` (trimap, prior).
    """
    band = search_band(binary, inner, outer)
    if not band.band.any():
        trimap = band.fg.astype(np.float32)
        return GeodesicTrimap(trimap, trimap.copy())
    unknown, certain_fg, p = _classify(
        image, binary, band, inner=inner, outer=outer, edge_threshold=edge_threshold,
        texture_factor=texture_factor, min_edge=min_edge, certainty=certainty,
        mask_trust=mask_trust, length_cost=length_cost,
    )
    if grow > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
        unknown = cv2.dilate(unknown.astype(np.uint8), kernel).astype(bool) & band.band
    trimap = band.fg.astype(np.float32)  # 1 on the certain foreground, 0 (background) elsewhere
    trimap[certain_fg] = FG
    trimap[unknown] = UNKNOWN
    prior = np.where(unknown, 0.5 * (p + binary), trimap).astype(np.float32)
    logger.debug("geodesic trimap: band %d px, %d unknown (inner %d, outer %d)",
                 int(band.band.sum()), int(unknown.sum()), inner, outer)
    return GeodesicTrimap(trimap, prior)


def _classify(
    image: np.ndarray, binary: np.ndarray, band: SearchBand, *, inner: int, outer: int,
    edge_threshold: float, texture_factor: float, min_edge: float, certainty: float,
    mask_trust: float, length_cost: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(unknown, certain_fg, p)`` of the band's pixels: steps 1-3 of the module docstring."""
    nodes = cv2.dilate(band.band.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    d_f, d_b = geodesic_distances(
        image, nodes, (band.fg, band.bg), edge_threshold=edge_threshold,
        texture_factor=texture_factor, step_cost=length_cost / max(1.0, 0.5 * (inner + outer)),
    )
    m8 = binary.astype(np.uint8)
    d_f += mask_trust / max(outer, 1) * cv2.distanceTransform(1 - m8, cv2.DIST_L2, 3)
    d_b += mask_trust / max(inner, 1) * cv2.distanceTransform(m8, cv2.DIST_L2, 3)
    d_f, d_b = np.minimum(d_f, _FAR), np.minimum(d_b, _FAR)
    p = d_b / np.maximum(d_f + d_b, 1e-12)
    certain_fg = band.band & (d_f < d_b) & ((p >= certainty) | (d_f < min_edge))
    certain_bg = band.band & (d_b < d_f) & ((p <= 1.0 - certainty) | (d_b < min_edge))
    return band.band & ~certain_fg & ~certain_bg, certain_fg, p

