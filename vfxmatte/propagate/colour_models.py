"""Colour models of the ``snapcut`` propagator: global and per window.

Colours are quantised into ``bins^3`` RGB cells (display-referred values in
[0, 1]) and a model is a pair of smoothed histograms, object and background;
the object posterior of a cell is ``p_f / (p_f + p_b)`` with ``p`` the
normalised counts (equal priors). Histograms replace Video SnapCut's Gaussian
mixtures (Bai et al., SIGGRAPH 2009, section 3.2): they cost one ``bincount``
per window, which is what keeps a 1080p frame under half a second on a CPU.

Local windows: a grid of overlapping square tiles (stride half a side) over the
band around the object's boundary. Each tile learns its model from the
previous frame where the segmentation is known, at the place the tile came
from, and is applied to this frame; SnapCut's colour confidence ``f_c`` (one
minus the model's weighted error on the frame it learned from) says how far to
trust it. Tiles are blended with tent weights, which sum to one where tiles
overlap, so the combined map has no seams.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["GlobalColourModel", "LocalModels", "local_models", "quantise"]

# Pseudo-counts added to every cell: a window sees a few hundred pixels, so its model
# needs more smoothing than the global one (which re-acquires hidden objects).
_SMOOTH_LOCAL = 0.5
_SMOOTH_GLOBAL = 0.02


def quantise(image: np.ndarray, bins: int) -> np.ndarray:
    """``h x w x 3`` float32 in [0, 1] -> ``h x w`` int32 cell index in ``[0, bins^3)``."""
    q = np.clip(image * bins, 0, bins - 1).astype(np.int32)
    return (q[..., 0] * bins + q[..., 1]) * bins + q[..., 2]


def _posterior(fg: np.ndarray, bg: np.ndarray, smooth: float) -> np.ndarray:
    pf = (fg + smooth) / (fg.sum() + smooth * fg.size)
    pb = (bg + smooth) / (bg.sum() + smooth * bg.size)
    return (pf / (pf + pb)).astype(np.float32)


class GlobalColourModel:
    """Object and background colours of a shot, from keyframes and confident frames.

    The keyframe histograms are kept apart from the running ones, so frames
    added later can shift the model by at most half (no drift by
    self-reinforcement), and only frames the caller judged confident are added.
    """

    def __init__(self, bins: int) -> None:
        self.bins = bins
        size = bins**3
        self._key = [np.zeros(size), np.zeros(size)]
        self._run = [np.zeros(size), np.zeros(size)]
        self._table: np.ndarray | None = None
        self._pixels = 0.0  # object pixels of the keyframes, the scale of the counts

    def learn(self, cells: np.ndarray, mask: np.ndarray, *, keyframe: bool, rate: float) -> None:
        """Add a frame: ``cells`` from :func:`quantise`, ``mask`` ``h x w`` float32 in [0, 1].

        Background is learned from a band around the object (where the
        decision is made), not from the whole frame.
        """
        fg_w, bg_w = _fg_bg_weights(mask)
        size = self.bins**3
        fg = np.bincount(cells.ravel(), fg_w.ravel(), size)
        bg = np.bincount(cells.ravel(), bg_w.ravel(), size)
        if keyframe:
            self._key = [self._key[0] + fg, self._key[1] + bg]
            self._pixels = max(self._pixels, float(fg.sum()))
        else:
            for i, h in enumerate((fg, bg)):
                if h.sum() > 0:
                    old = _normalised(self._run[i]) if self._run[i].sum() > 0 else _normalised(h)
                    self._run[i] = (1 - rate) * old + rate * _normalised(h)
        self._table = None

    def table(self) -> np.ndarray:
        """Object posterior per cell, ``bins^3`` float32."""
        if self._table is None:
            hists = [
                _normalised(k) + _normalised(r) for k, r in zip(self._key, self._run, strict=True)
            ]
            # The histograms are normalised: the pseudo-count is per pixel of a frame.
            n = max(1.0, self._pixels)
            self._table = _posterior(hists[0] * n, hists[1] * n, _SMOOTH_GLOBAL)
        return self._table

    def posterior(self, cells: np.ndarray) -> np.ndarray:
        """``h x w`` float32 object posterior of the cells."""
        return self.table()[cells]


def _normalised(hist: np.ndarray) -> np.ndarray:
    total = hist.sum()
    return hist / total if total > 0 else hist


def _fg_bg_weights(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Confident object and background pixels of a soft mask (the band between is skipped)."""
    import cv2

    fg = (mask > 0.9).astype(np.float64)
    area = max(1.0, float(fg.sum()))
    reach = int(np.clip(0.25 * np.sqrt(area), 8, 96))
    near = cv2.dilate((mask > 0.1).astype(np.uint8), np.ones((2 * reach + 1,) * 2, np.uint8))
    bg = ((mask < 0.1) & (near > 0)).astype(np.float64)
    return fg, bg


@dataclass
class LocalModels:
    """The blended result of the local windows over a frame (working resolution).

    ``posterior``: ``h x w`` float32 object posterior; ``confidence``: ``h x w``
    float32 colour confidence ``f_c`` in [0, 1]; ``weight``: ``h x w`` float32
    coverage by windows in [0, 1] (0 where no window reaches).
    """

    posterior: np.ndarray
    confidence: np.ndarray
    weight: np.ndarray


def _tent(n: int) -> np.ndarray:
    """1-D tent of length ``n`` peaking in the middle; shifted by ``n/2`` copies sum to 1."""
    x = (np.arange(n) + 0.5) / n
    return (1.0 - np.abs(2.0 * x - 1.0)).astype(np.float32)


def local_models(
    cells: np.ndarray,
    prev_cells: np.ndarray,
    prev_mask: np.ndarray,
    band: np.ndarray,
    shift: np.ndarray,
    side: int,
    bins: int,
) -> LocalModels:
    """Per-window colour models learned on the previous frame, applied to this one.

    Args:
        cells: ``h x w`` int32 cells of this frame.
        prev_cells: the same for the previous frame.
        prev_mask: ``h x w`` float32, the previous frame's object (soft).
        band: ``h x w`` bool, where windows are wanted (around the boundary).
        shift: ``2 x 3`` float64 object motion previous -> this frame; a tile
            centred at ``c`` here learns from the tile centred at ``A^-1 c``.
        side: window side in pixels (even).
        bins: colour cells per channel.

    Returns:
        The blended :class:`LocalModels`.
    """
    h, w = cells.shape
    half = side // 2
    post = np.zeros((h, w), np.float32)
    conf = np.zeros((h, w), np.float32)
    weight = np.zeros((h, w), np.float32)
    tent = _tent(side)
    tent2 = tent[:, None] * tent[None, :]
    inv = np.linalg.inv(np.vstack([shift, [0, 0, 1]]))[:2]
    size = bins**3
    for y0 in range(-half, h, half):
        for x0 in range(-half, w, half):
            ys, xs = slice(max(0, y0), min(h, y0 + side)), slice(max(0, x0), min(w, x0 + side))
            if not band[ys, xs].any():
                continue
            cx, cy = x0 + half, y0 + half
            px = int(round(inv[0, 0] * cx + inv[0, 1] * cy + inv[0, 2])) - half
            py = int(round(inv[1, 0] * cx + inv[1, 1] * cy + inv[1, 2])) - half
            pys = slice(max(0, py), min(h, py + side))
            pxs = slice(max(0, px), min(w, px + side))
            m = prev_mask[pys, pxs]
            c = prev_cells[pys, pxs]
            if m.size == 0:
                continue
            fgw, bgw = (m > 0.9).ravel(), (m < 0.1).ravel()
            if fgw.sum() < 8 or bgw.sum() < 8:
                continue  # one-sided window: nothing to separate
            fg = np.bincount(c.ravel()[fgw], minlength=size)
            bg = np.bincount(c.ravel()[bgw], minlength=size)
            table = _posterior(fg.astype(np.float64), bg.astype(np.float64), _SMOOTH_LOCAL)
            # SnapCut eq. 2: colour confidence from the weighted error on the learned frame.
            learned = table[c]
            err = float(np.abs(m - learned).mean())
            fc = max(0.0, 1.0 - 2.0 * err)
            t = tent2[ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0]
            post[ys, xs] += t * table[cells[ys, xs]]
            conf[ys, xs] += t * fc
            weight[ys, xs] += t
    covered = weight > 1e-6
    post[covered] /= weight[covered]
    conf[covered] /= weight[covered]
    return LocalModels(post, conf, np.clip(weight, 0.0, 1.0))
