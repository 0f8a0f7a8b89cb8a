"""Tests of vfxmatte.matte.infer (trimap inference) against composites with exact alpha."""

from __future__ import annotations

import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from vfxmatte.matte.infer import (
    colour_evidence,
    grow_unknown,
    infer_trimap,
    novel_structure,
    segment_band,
)
from vfxmatte.matte.trimap import search_band

sys.path.insert(0, str(Path(__file__).parent))
from test_classical import composite, soft_disks  # noqa: E402


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _scene(grow: int = 10):
    """A soft disk (r=30) over a gradient; the mask is the disk dilated by ``grow`` px."""
    alpha = soft_disks(120, 160, [(60, 80, 30)])
    mask = cv2.dilate((alpha > 0.5).astype(np.uint8), _disk(grow)).astype(bool)
    return composite(alpha), mask, alpha


def test_segmentation_finds_the_edge_inside_a_dilated_mask():
    """The mask is 10 px too large all round; the segmentation's boundary is on the true
    edge to within 1.5 px on average (measured 0.5)."""
    image, mask, alpha = _scene(10)
    region = search_band(mask, 14, 8)
    seg, evidence = segment_band(image, region, mask)
    truth = alpha > 0.5
    assert (seg & region.bg).sum() == 0 and (region.fg & ~seg).sum() == 0
    wrong = seg ^ truth
    perimeter = 2 * np.pi * 30
    assert wrong.sum() / perimeter < 1.5, wrong.sum() / perimeter
    # The background ring the mask covers is negative evidence.
    ring = mask & (cv2.erode(mask.astype(np.uint8), _disk(4)) == 0)
    assert np.median(evidence[ring]) < 0


def test_background_held_inside_the_mask_is_found():
    """A hole (r=6) in the object that the mask fills is background in the trimap."""
    alpha = soft_disks(120, 160, [(60, 80, 34)])
    yy, xx = np.mgrid[0:120, 0:160]
    hole = np.hypot(yy - 52, xx - 62) < 6
    alpha = np.where(hole, 0.0, alpha)
    image = composite(alpha, seed=2)
    mask = cv2.dilate((soft_disks(120, 160, [(60, 80, 34)]) > 0.5).astype(np.uint8),
                      _disk(4)).astype(bool)  # fmt: skip
    out = infer_trimap(image, mask, inner=28, outer=8, width=2)  # the hole lies in the band
    centre = np.hypot(yy - 52, xx - 62) < 3
    assert (out.trimap[centre] == 0.0).all()


def test_colour_evidence_sign_and_mask_prior():
    """Colours of the certain sides give log-odds of their sign; a colour neither side
    explains is decided by the mask alone (|log-odds| about the prior, 1 nat)."""
    h, w = 60, 80
    img = np.zeros((h, w, 3), np.uint8)
    img[:, :40] = (200, 60, 50)
    img[:, 40:] = (40, 120, 200)
    img[25:35, 38:42] = (10, 250, 10)  # neither side's colour
    fg = np.zeros((h, w), bool)
    fg[:, :20] = True
    bg = np.zeros((h, w), bool)
    bg[:, 60:] = True
    region = type(search_band(fg, 1, 1))(fg, bg, ~fg & ~bg)
    mask = np.zeros((h, w), bool)
    mask[:, :42] = True
    ev = colour_evidence(img, region, mask)
    assert ev[5, 30] > 5 and ev[5, 50] < -5
    assert abs(ev[30, 39] - 1.0) < 0.5 and abs(ev[30, 41] - 1.0) < 0.5


def test_unknown_strip_follows_the_boundary_and_is_deterministic():
    image, mask, alpha = _scene(10)
    a = infer_trimap(image, mask, inner=14, outer=8, width=3)
    b = infer_trimap(image.copy(), mask.copy(), inner=14, outer=8, width=3)
    np.testing.assert_array_equal(a.trimap, b.trimap)
    mixed = (alpha > 0.02) & (alpha < 0.98)
    assert (a.trimap[mixed] == 0.5).mean() > 0.95  # the soft edge is left to the solver
    assert (a.trimap == 0.5).sum() < 0.4 * mask.sum()  # narrow at a hard, clean edge


def test_grow_unknown_widens_only_where_alpha_is_mixed_on_the_border():
    trimap = np.zeros((40, 40), np.float32)
    trimap[:, 20:] = 1.0
    trimap[:, 18:22] = 0.5
    region = search_band(trimap > 0.5, 10, 10)
    alpha = np.where(trimap == 0.5, 1.0, trimap).astype(np.float32)
    assert grow_unknown(trimap, alpha, region, 3) is None  # decided: nothing to widen
    alpha[10:15, 18] = 0.4  # mixed on the border, rows 10-14
    wider = grow_unknown(trimap, alpha, region, 3)
    assert wider is not None
    grown = (wider == 0.5) & (trimap != 0.5)
    rows = np.nonzero(grown.any(axis=1))[0]
    assert rows.min() >= 7 and rows.max() <= 17 and grown[12, 15]


# A rough polygon around the astronaut (scikit-image's photo, 512x512), as drawn by eye in
# benchmarks/learned_photo_bench.py; her hair lies in the band, in neither side's colours.
ASTRONAUT = [(225, 12), (275, 25), (300, 70), (295, 140), (300, 180), (310, 230), (345, 260),
             (360, 340), (420, 345), (480, 380), (505, 450), (505, 512), (25, 512), (20, 380),
             (40, 280), (70, 240), (120, 200), (125, 170), (160, 140), (150, 80), (170, 35)]  # fmt: skip


def test_hair_of_a_third_colour_is_left_to_the_solver_not_dropped():
    """The astronaut's hair (a box on top of her head) is neither her face's nor her
    suit's colour, nor the backdrop's near it: unknown, with the mask as the solver's
    prior, not background. Without ``keep_novel`` 92% of it is background (measured)."""
    data = pytest.importorskip("skimage.data")
    image = data.astronaut().astype(np.float32) / 255.0
    mask = np.zeros(image.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.array(ASTRONAUT, np.int32)], 1)
    hair = np.zeros(mask.shape, bool)
    hair[30:75, 190:290] = True
    out = infer_trimap(image, mask.astype(bool), inner=97, outer=73, width=12)
    assert (out.trimap[hair] == 0.0).mean() < 0.05  # measured 0.0
    assert out.segmentation[hair].mean() > 0.9  # measured 0.97
    off = infer_trimap(image, mask.astype(bool), inner=97, outer=73, width=12, keep_novel=False)
    assert (off.trimap[hair] == 0.0).mean() > 0.8  # what keep_novel fixes
    # Solved: the hair is kept (the previous default, legacy=True, kept 0.62 of it).
    from vfxmatte.matte.classical import ClassicalMatteConfig, matte_classical

    alpha = matte_classical(image, mask.astype(np.float32), ClassicalMatteConfig())[0]
    assert alpha[hair].mean() > 0.8  # measured 0.91


def test_novel_structure_keeps_parts_from_the_object_to_the_mask_edge():
    seg = np.zeros((40, 60), bool)
    seg[10:30, 10:30] = True
    mask = np.zeros_like(seg)
    mask[5:35, 5:45] = True
    novel = np.zeros_like(seg)
    novel[12:20, 30:43] = True  # from the object to 2 px of the mask's edge: kept
    novel[22:27, 30:36] = True  # touches the object, stays deep inside (a hole): dropped
    novel[25:28, 38:50] = True  # reaches the mask's edge but not the object: dropped
    novel[0:4, 0:60] = True  # outside the mask: dropped
    kept = novel_structure(novel, seg, mask, reach=3)
    assert kept[12:20, 30:43].all()
    assert kept.sum() == novel[12:20, 30:43].sum()
    assert not novel_structure(novel, seg, mask, reach=1)[12:20, 30:43].any()
    assert not novel_structure(np.zeros_like(seg), seg, mask).any()
