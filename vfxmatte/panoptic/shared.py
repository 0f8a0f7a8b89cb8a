"""Classical matting of every segment of a frame at once, sharing the work they have in common.

Running :func:`vfxmatte.matte.classical.matte_classical` once per segment repeats
work: each call checks and clips the whole frame, makes a dozen passes over the
whole frame around its mask (distance transforms, components, confidence), and
builds the closed-form matting Laplacian (Levin, Lischinski & Weiss, TPAMI 2008,
eq. 12) of its own band, although neighbouring segments' bands cover the same
border pixels and the Laplacian depends on the image alone. Here, for one frame:

1. the image is checked once, and each segment is worked on in its own box: its
   mask's bounding box grown by the band's outer reach. Within it the search
   band, crops, geodesic trimap and prior are exactly the classical stage's on
   the whole frame (outside it everything is certain background), so the cost of
   a segment follows its size, not the frame's;
2. the segment at the back of the composition order (the background) gets a
   band as wide as the widest of the segments in front of it. Measured on its own
   mask, which spans the frame, the classical stage would give it a band of a
   fifth of the frame, solved at reduced resolution; its edges are the other
   segments' edges, and their bands are the room they need;
3. the matting Laplacian is built **once**, over the union of all the segments'
   unknown pixels (:class:`UnionStencil`: each union pixel's row of the 5x5
   stencil, known neighbours included); where two segments' bands overlap, as
   along every border between two segments, its windows are computed once.
   Each segment's system ``(L_{U_k U_k} + λI) α = -L_{U_k F_k} 1 + λ α̂`` is read
   from it;
4. each segment's system is split into its connected stretches of band, which
   are independent, and solved by one conjugate-gradient loop over all of them in
   lockstep (:func:`solve_lockstep`: each stretch its own step sizes and stopping
   test, one sparse product per iteration for all). Segments are solved one after
   the other: one segment's system stays in the CPU caches across iterations,
   while the stack of all segments' systems would not (measured: the same number
   of row-iterations took 3x longer stacked across all 16 segments of a 1080p frame).

The result per segment is the classical stage's (same trimap, same system) to the
tolerance of the conjugate gradient, which stops per stretch here and per crop
there. A segment whose band needs a crop larger than ``max_crop_pixels`` goes
through :func:`~vfxmatte.matte.classical.matte_classical` on its box (reduced
resolution there); it shares step 1 only.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from vfxmatte.errors import InputError
from vfxmatte.matte.classical import ClassicalMatteConfig, matte_classical
from vfxmatte.matte.geodesic import trimap_geodesic
from vfxmatte.matte.trimap import UNKNOWN, band_bbox, band_radii, search_band

__all__ = [
    "SegmentTrimap",
    "UnionStencil",
    "matte_segments_shared",
    "segment_box",
    "segment_boxes",
    "solve_lockstep",
    "trimap_segment",
]

log = logging.getLogger(__name__)

Box = tuple[slice, slice]


@dataclass
class SegmentTrimap:
    """The trimap of one segment, in its box of the frame.

    ``trimap``: ``h x w`` float32, 0 background, 0.5 unknown, 1 foreground;
    ``prior``: ``h x w`` float32 in [0, 1], the solver's data-term target.
    """

    index: int
    box: Box
    trimap: np.ndarray
    prior: np.ndarray


def _grow(box: Box, margin: int, shape: tuple[int, int]) -> Box:
    ys, xs = box
    return (
        slice(max(0, ys.start - margin), min(shape[0], ys.stop + margin)),
        slice(max(0, xs.start - margin), min(shape[1], xs.stop + margin)),
    )


def _bounds(mask: np.ndarray) -> Box | None:
    """Bounding box of the true pixels of ``mask``, or None."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if not rows.size:
        return None
    return slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1)


def segment_boxes(labels: np.ndarray, k_count: int) -> list[Box | None]:
    """Bounding box of each segment index of ``labels`` (None for an absent one)."""
    h, w = labels.shape
    in_row = np.zeros((k_count, h), bool)
    in_col = np.zeros((k_count, w), bool)
    in_row[labels, np.arange(h)[:, None]] = True
    in_col[labels, np.arange(w)[None, :]] = True
    boxes: list[Box | None] = []
    for k in range(k_count):
        rows, cols = np.flatnonzero(in_row[k]), np.flatnonzero(in_col[k])
        if not rows.size:
            boxes.append(None)
            continue
        boxes.append(
            (slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
        )
    return boxes


def trimap_segment(
    display: np.ndarray,
    binary: np.ndarray,
    box: Box,
    index: int,
    cfg: ClassicalMatteConfig,
    *,
    radii: tuple[int, int] | None = None,
) -> SegmentTrimap | None:
    """The classical stage's trimap of one segment, computed in its box only.

    Args:
        display: ``H x W x 3`` float32 display-referred frame in [0, 1].
        binary: ``h x w`` bool mask of the segment over ``box``, a box holding the
            whole mask and its band (see :func:`segment_box`).
        box: where ``binary`` lies in the frame.
        radii: the band's ``(inner, outer)`` reach; None measures them from the
            mask as the classical stage does. Given, no crop is too large.

    Returns:
        The trimap, or None when one of its crops is larger than
        ``cfg.max_crop_pixels`` (the classical stage then works at reduced
        resolution; the caller uses it instead).
    """
    inner, outer = radii or _radii(binary, cfg)
    region = search_band(binary, inner, outer)
    trimap = region.fg.astype(np.float32)
    trimap[region.band] = UNKNOWN
    prior = trimap.copy()
    pad = max(1, min(inner, outer) // 2) + 2  # as the classical stage pads its crops
    crops = band_bbox(trimap, pad, merge_gap=pad)
    if radii is None and any(c.size > cfg.max_crop_pixels for c in crops):
        return None
    image = display[box]
    for crop in crops:
        sl = crop.slices
        # trimap='infer' (the single-object default) is not ported to the shared system:
        # its segments get the geodesic trimap, the previous default.
        if cfg.trimap in ("geodesic", "infer"):
            tri_c, prior_c = trimap_geodesic(
                image[sl], binary[sl], inner=inner, outer=outer,
                edge_threshold=cfg.edge_threshold, texture_factor=cfg.texture_factor,
                min_edge=cfg.min_edge, certainty=cfg.certainty, mask_trust=cfg.mask_trust,
                length_cost=cfg.length_cost, grow=cfg.unknown_grow,
            )  # fmt: skip
        else:
            band = search_band(binary[sl], inner, outer)
            tri_c = band.fg.astype(np.float32)
            tri_c[band.band] = UNKNOWN
            prior_c = binary[sl].astype(np.float32)
        trimap[sl] = tri_c
        prior[sl] = prior_c
    return SegmentTrimap(index, box, trimap, prior)


def _radii(binary: np.ndarray, cfg: ClassicalMatteConfig) -> tuple[int, int]:
    return band_radii(
        binary, inner_fraction=cfg.band_fraction, outer_fraction=cfg.outer_fraction,
        band_mode=cfg.band_mode, min_band=cfg.min_band, max_band=cfg.max_band,
    )  # fmt: skip


def segment_box(mask_box: Box, shape: tuple[int, int], radii: tuple[int, int]) -> Box:
    """The box a segment is matted in: its mask's box grown by the band and the crop padding.

    ``radii`` is the band's ``(inner, outer)`` reach. Within the grown box the
    classical stage's search band, crops and trimap are those it finds on the whole
    frame (outside, everything is certain background).
    """
    inner, outer = radii
    return _grow(mask_box, outer + max(1, min(inner, outer) // 2) + 4, shape)


def matte_segments_shared(
    display: np.ndarray,
    labels: np.ndarray,
    k_count: int,
    cfg: ClassicalMatteConfig | None = None,
    *,
    back: int | None = None,
) -> np.ndarray:
    """Straight alpha of every segment of a label map (see the module docstring).

    Args:
        display: ``H x W x 3`` float32 display-referred sRGB in [0, 1] (checked once).
        labels: ``H x W`` integer segment indices in ``[0, k_count)``.
        k_count: number of segments ``K``.
        cfg: the classical matte stage's options.
        back: the segment at the back of the composition order, if there is one
            (e.g. the background). Its mask spans the frame, so the classical stage
            would give it a band as wide as a fifth of the frame, solved at reduced
            resolution; here its band reaches as far as the widest band of the
            segments in front of it, which is all the room its edges (theirs) need.

    Returns:
        ``K x H x W`` float32 alphas in [0, 1].
    """
    cfg = cfg or ClassicalMatteConfig()
    display = _checked_image(display, labels.shape)
    h, w = labels.shape
    alphas = np.zeros((k_count, h, w), np.float32)
    boxes = segment_boxes(labels, k_count)
    radii = {k: _radii(labels[b] == k, cfg) for k, b in enumerate(boxes) if b is not None}
    fronts = [r for k, r in radii.items() if k != back]
    if back in radii and fronts:  # see ``back`` above
        radii[back] = (max(r[0] for r in fronts), max(r[1] for r in fronts))
    trimaps: list[SegmentTrimap] = []
    for k, reach in radii.items():
        box = segment_box(boxes[k], (h, w), reach)
        binary = labels[box] == k
        tri = trimap_segment(display, binary, box, k, cfg, radii=reach if k == back else None)
        if tri is None:
            log.debug("panoptic: segment %d needs large crops; classical stage on its box", k)
            alphas[k][box], _ = matte_classical(display[box], binary, cfg)
        else:
            alphas[k][box] = np.where(tri.trimap == 1.0, 1.0, 0.0)
            trimaps.append(tri)
    for tri, alpha in zip(trimaps, _solve_shared(display, trimaps, cfg), strict=True):
        alphas[tri.index][tri.box] = alpha
    return alphas


def _checked_image(display: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    img = np.asarray(display)
    if img.ndim != 3 or img.shape[2] != 3 or img.shape[:2] != shape:
        raise InputError(
            f"The display image must be H x W x 3 = {shape + (3,)}, got shape {img.shape}."
        )
    if not np.isfinite(img).all():
        raise InputError("The display image contains NaN or infinite values.")
    return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)


def _solve_shared(
    display: np.ndarray, trimaps: Sequence[SegmentTrimap], cfg: ClassicalMatteConfig
) -> list[np.ndarray]:
    """Alpha crops of the segments: one Laplacian over the union, then each segment's solve."""
    outs = [tri.trimap.copy() for tri in trimaps]
    h, w = display.shape[:2]
    unknown = np.zeros((h, w), bool)
    for tri in trimaps:
        unknown[tri.box] |= tri.trimap == UNKNOWN
    area = _bounds(unknown)
    if area is None:
        return outs
    area = _grow(area, 3, (h, w))  # the windows around the union lie inside (or at the frame edge)
    stencil = UnionStencil(display[area], unknown[area], cfg.epsilon)
    for j, tri in enumerate(trimaps):
        system = stencil.system(tri, area, cfg.prior_weight)
        if system is None:
            continue
        # One segment's system at a time: a system the size of one segment's band stays
        # in the CPU caches over its iterations; the stack of all of them would not.
        A, b, x0, flat, first = _by_component(*system)
        x = solve_lockstep(A, b, x0, first, cfg.cg_tolerance, cfg.cg_max_iterations)
        outs[j].ravel()[flat] = np.clip(x, 0.0, 1.0)
    return outs


def _by_component(
    A,  # noqa: ANN001 (scipy CSR)
    b: np.ndarray,
    x0: np.ndarray,
    flat: np.ndarray,
) -> tuple[object, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Reorder one segment's system by connected components of its matrix.

    The components (separate stretches of the band) are independent systems; each
    gets its own CG so that one slow stretch does not keep the others iterating.

    Returns:
        ``(A, b, x0, flat, first)`` reordered, ``first`` the first row of each component.
    """
    from scipy.sparse.csgraph import connected_components

    n, label = connected_components(A, directed=False)
    order = np.argsort(label, kind="stable")
    first = np.searchsorted(label[order], np.arange(n))
    return A[order][:, order].tocsr(), b[order], x0[order], flat[order], first


class UnionStencil:
    """The matting Laplacian's rows of the union ``U`` of the segments' unknown pixels.

    ``V[i, s]`` is the entry of ``L`` between the ``i``-th pixel of ``U`` and its
    neighbour at slot ``s`` of the 5x5 stencil (row-major offsets ``-2..2``), known
    or not: every segment's system and right-hand side are read from it.
    """

    def __init__(self, image: np.ndarray, unknown: np.ndarray, epsilon: float) -> None:
        # The classical stage's own window accumulation (what matting_laplacian_band
        # builds its matrix from), over the union: one copy of the arithmetic to keep.
        from vfxmatte.matte.closed_form import _accumulate_windows

        self.shape = unknown.shape
        h, w = self.shape
        self.index = np.flatnonzero(unknown)
        n = self.index.size
        row_of = np.full(h * w, n, dtype=np.int32 if h * w < 2**31 else np.int64)
        row_of[self.index] = np.arange(n)
        self.V = _accumulate_windows(image.astype(np.float64), unknown, row_of, n, epsilon)
        self.position = np.full(h * w, -1, np.int64)
        self.position[self.index] = np.arange(n)

    def system(
        self, tri: SegmentTrimap, area: Box, prior_weight: float
    ) -> tuple[object, np.ndarray, np.ndarray, np.ndarray] | None:
        """``(A, b, x0, flat)`` of one segment, or None if it has no unknown pixel.

        ``A = L_{U_k U_k} + λI``, ``b = -L_{U_k F_k} 1 + λ α̂``, ``x0`` the start
        (the prior, or 0), ``flat`` the unknown pixels' flat indices in the segment's box.
        """
        import scipy.sparse

        bh, bw = tri.trimap.shape
        flat = np.flatnonzero(tri.trimap == UNKNOWN)
        if not flat.size:
            return None
        y, x = np.divmod(flat, bw)
        oy, ox = tri.box[0].start - area[0].start, tri.box[1].start - area[1].start
        values = self.V[self.position[(y + oy) * self.shape[1] + (x + ox)]]
        # Stencil neighbours in the box. The box reaches past the band by more than the
        # stencil, so a neighbour that wraps around a row of the box is across the frame's
        # edge, where the stencil value is 0.
        dy, dx = np.mgrid[-2:3, -2:3]
        nb = np.clip(flat[:, None] + (dy * bw + dx).ravel(), 0, bh * bw - 1)
        local = np.full(bh * bw, -1, np.int64)
        local[flat] = np.arange(flat.size)
        col = local[nb]
        b = -(values * (tri.trimap.ravel() == 1.0)[nb]).sum(axis=1)
        keep = (col >= 0) & (values != 0.0)
        indptr = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
        A = scipy.sparse.csr_matrix((values[keep], col[keep], indptr), shape=(flat.size,) * 2)
        x0 = np.zeros(flat.size)
        if prior_weight > 0.0:
            x0 = tri.prior.ravel()[flat].astype(np.float64)
            A = A + prior_weight * scipy.sparse.identity(flat.size, format="csr")
            b = b + prior_weight * x0
        return A, b, x0, flat


def solve_lockstep(
    A,  # noqa: ANN001 (scipy CSR)
    b: np.ndarray,
    x0: np.ndarray,
    first: np.ndarray,
    rtol: float,
    max_iterations: int,
) -> np.ndarray:
    """Jacobi-preconditioned conjugate gradient on independent SPD systems at once.

    ``A`` is block-diagonal: block ``j`` spans rows (and columns)
    ``first[j]:first[j+1]`` (the last to the end). Each block runs its own CG
    (Hestenes & Stiefel 1952) from ``x0`` with its own step sizes and its own stop
    ``|r_j| <= rtol |b_j|`` (``b_j = 0`` is solved by 0), so its iterates are those
    of a solve on its own; but one iteration is one sparse product and a few vector
    operations for all blocks still running (block sums by ``np.add.reduceat``).
    Converged blocks leave the product once they hold a quarter of its rows.

    Returns:
        ``x``, float64.
    """
    first = np.asarray(first, np.int64)
    sizes = np.diff(np.append(first, b.size))
    block = np.repeat(np.arange(first.size), sizes)
    stop = rtol * np.sqrt(np.add.reduceat(b * b, first))
    x = np.where((stop == 0.0)[block], 0.0, x0).astype(np.float64)
    r = b - A @ x
    done = (stop == 0.0) | (np.sqrt(np.add.reduceat(r * r, first)) <= stop)
    if done.all():
        return x
    run = _Stack(A, np.flatnonzero(~done), first, sizes, r)
    iterations = 0
    while run.blocks.size and iterations < max_iterations:
        iterations += 1
        run.iterate(x, stop)
        run.restack()
    if run.blocks.size:
        warnings.warn(
            f"Panoptic matting: {run.blocks.size} system(s) stopped after {max_iterations} "
            "conjugate-gradient iterations; alpha may be slightly off. Raise "
            "classical.cg_max_iterations or classical.epsilon.",
            RuntimeWarning,
            stacklevel=2,
        )
    log.debug("panoptic: %d systems solved in %d lockstep iterations", first.size, iterations)
    return x


class _Stack:
    """The blocks of :func:`solve_lockstep` still running, their rows gathered together."""

    def __init__(  # noqa: ANN001 (A: scipy CSR)
        self, A, blocks: np.ndarray, first: np.ndarray, sizes: np.ndarray, r: np.ndarray
    ) -> None:
        self.A, self.all_first, self.all_sizes = A, first, sizes
        self._gather(blocks, r, None, None)

    def _gather(
        self, blocks: np.ndarray, r: np.ndarray, p: np.ndarray | None, rz: np.ndarray | None
    ) -> None:
        """Restrict to ``blocks``; ``r`` (and ``p``) over their rows, or the whole ``r``."""
        self.blocks = blocks
        sizes = self.all_sizes[blocks]
        self.first = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        self.block = np.repeat(np.arange(blocks.size), sizes)
        shift = np.repeat(self.all_first[blocks] - self.first, sizes)
        self.rows = (shift + np.arange(sizes.sum())).astype(np.int64)
        self.sub = self.A[self.rows][:, self.rows]
        self.inv_diag = 1.0 / self.sub.diagonal()
        self.r = r if p is not None else r[self.rows]
        z = self.r * self.inv_diag
        self.p = z if p is None else p
        self.rz = np.add.reduceat(self.r * z, self.first) if rz is None else rz
        self.done = np.zeros(blocks.size, bool)

    def iterate(self, x: np.ndarray, stop: np.ndarray) -> None:
        """One CG step of every block not done (``x`` updated at the stack's rows)."""
        Ap = self.sub @ self.p
        pAp = np.add.reduceat(self.p * Ap, self.first)
        step = np.divide(self.rz, pAp, out=np.zeros_like(pAp), where=(pAp > 0) & ~self.done)
        x[self.rows] += step[self.block] * self.p
        self.r -= step[self.block] * Ap
        self.done |= np.sqrt(np.add.reduceat(self.r * self.r, self.first)) <= stop[self.blocks]
        z = self.r * self.inv_diag
        rz = np.add.reduceat(self.r * z, self.first)
        beta = np.divide(rz, self.rz, out=np.zeros_like(rz), where=(self.rz > 0) & ~self.done)
        self.p = z + beta[self.block] * self.p
        self.rz = np.where(self.done, self.rz, rz)

    def restack(self) -> None:
        """Drop the converged blocks once they hold a quarter of the rows (or all of them)."""
        if not self.done.any():
            return
        if self.done.all():
            self.blocks = self.blocks[:0]
            return
        sizes = np.diff(np.append(self.first, self.rows.size))
        if sizes[self.done].sum() < _RESTACK_SHARE * self.rows.size:
            return
        keep = ~self.done[self.block]
        self._gather(self.blocks[~self.done], self.r[keep], self.p[keep], self.rz[~self.done])


#: Converged blocks leave the stacked product once they hold this share of its rows.
_RESTACK_SHARE = 0.25
