"""Tests of vfxmatte.matte.trimap: adaptive trimaps and the crops around their band."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.matte.trimap import (
    BandCrop,
    band_bbox,
    band_kernel_size,
    band_radii,
    search_band,
    trimap_from_mask,
)


def disk(h: int, w: int, cy: float, cx: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return ((yy - cy) ** 2 + (xx - cx) ** 2 <= r * r).astype(np.float32)


def band_width(trimap: np.ndarray, r: float) -> float:
    """Mean band width of a disk's trimap: band area over the disk's perimeter."""
    return float(np.count_nonzero(trimap == 0.5)) / (2 * np.pi * r)


def test_values_dtype_and_shape():
    tri = trimap_from_mask(disk(64, 80, 32, 40, 20))
    assert tri.dtype == np.float32
    assert tri.shape == (64, 80)
    assert set(np.unique(tri).tolist()) == {0.0, 0.5, 1.0}


def test_band_straddles_the_mask_edge():
    mask = disk(96, 96, 48, 48, 30) > 0.5
    tri = trimap_from_mask(mask)
    assert mask[tri == 1.0].all(), "foreground must lie inside the mask"
    assert not mask[tri == 0.0].any(), "background must lie outside the mask"
    unknown = tri == 0.5
    assert (unknown & mask).any() and (unknown & ~mask).any(), "band must cover both sides"


def test_band_width_scales_with_object_size():
    big = trimap_from_mask(disk(160, 160, 80, 80, 70), band_fraction=0.1)
    small = trimap_from_mask(disk(160, 160, 80, 80, 15), band_fraction=0.1)
    w_big, w_small = band_width(big, 70), band_width(small, 15)
    assert w_big > 2 * w_small, (w_big, w_small)
    # The kernel is band_fraction x the bbox short side: 0.1 * 141 -> 14 px, 0.1 * 31 -> 3 px.
    assert w_big == pytest.approx(14, abs=2)


def test_area_mode_agrees_with_bbox_mode_on_a_disk():
    mask = disk(160, 160, 80, 80, 60) > 0.5
    k_bbox = band_kernel_size(mask, band_fraction=0.1, band_mode="bbox")
    k_area = band_kernel_size(mask, band_fraction=0.1, band_mode="area")
    assert abs(k_bbox - k_area) <= 1


def test_area_mode_is_steadier_than_bbox_on_a_thin_diagonal():
    mask = np.zeros((128, 128), bool)
    for i in range(128):
        mask[i, max(0, i - 2):i + 3] = True  # a 5 px wide diagonal: its bbox is 128x128
    k_bbox = band_kernel_size(mask, band_fraction=0.1, band_mode="bbox")
    k_area = band_kernel_size(mask, band_fraction=0.1, band_mode="area")
    assert k_area < k_bbox


def test_band_is_clipped_to_limits():
    mask = disk(128, 128, 64, 64, 50)
    assert band_kernel_size(mask > 0.5, band_fraction=0.001, min_band=5) == 5
    assert band_kernel_size(mask > 0.5, band_fraction=0.5, max_band=9) == 9


def test_empty_mask_gives_all_background():
    tri = trimap_from_mask(np.zeros((40, 50), np.float32))
    assert tri.shape == (40, 50) and (tri == 0.0).all()


def test_full_mask_gives_all_foreground():
    tri = trimap_from_mask(np.ones((40, 50), bool))
    assert (tri == 1.0).all()


def test_object_thinner_than_band_keeps_a_foreground_core():
    mask = np.zeros((64, 64), np.float32)
    mask[30:33, 10:50] = 1.0  # 3 px thick, band 9 px
    tri = trimap_from_mask(mask, min_band=9)
    assert (tri == 1.0).any()
    assert (mask[tri == 1.0] == 1.0).all()


def test_object_cut_by_the_frame_has_no_band_along_the_frame_edge():
    mask = np.zeros((64, 64), np.float32)
    mask[:, :32] = 1.0
    tri = trimap_from_mask(mask, min_band=7, max_band=7)
    assert (tri[:, 0] == 1.0).all() and (tri[0, :20] == 1.0).all()


def test_threshold_applies_to_soft_masks():
    mask = np.full((32, 32), 0.4, np.float32)
    assert (trimap_from_mask(mask) == 0.0).all()
    assert (trimap_from_mask(mask, threshold=0.3) == 1.0).all()


def test_bad_inputs_and_options_are_explained():
    with pytest.raises(InputError, match=r"HxW.*\(4, 4, 3\)"):
        trimap_from_mask(np.zeros((4, 4, 3)))
    with pytest.raises(InputError, match="NaN"):
        trimap_from_mask(np.full((4, 4), np.nan))
    with pytest.raises(ConfigError, match="bbox, area"):
        trimap_from_mask(np.ones((4, 4)), band_mode="box")
    with pytest.raises(ConfigError, match="min_band"):
        trimap_from_mask(np.ones((4, 4)), min_band=10, max_band=5)


# --- band_bbox -------------------------------------------------------------------------


def test_crops_cover_every_unknown_pixel_with_margin():
    mask = np.maximum(disk(120, 160, 40, 40, 25), disk(120, 160, 80, 120, 30))
    tri = trimap_from_mask(mask, min_band=5)
    pad = 4
    crops = band_bbox(tri, pad)
    covered = np.zeros(tri.shape, bool)
    grown = np.zeros(tri.shape, bool)
    for crop in crops:
        assert isinstance(crop, BandCrop)
        assert not covered[crop.slices].any(), "crops must be disjoint"
        covered[crop.slices] = True
    ys, xs = np.nonzero(tri == 0.5)
    for dy in (-pad, 0, pad):
        for dx in (-pad, 0, pad):
            grown[np.clip(ys + dy, 0, 119), np.clip(xs + dx, 0, 159)] = True
    assert covered[grown].all(), "every unknown pixel needs `pad` pixels of context"
    assert sum(c.size for c in crops) < tri.size, "crops must not be the whole frame"


def test_far_regions_stay_separate_and_close_ones_merge():
    tri = np.zeros((100, 200), np.float32)
    tri[10:20, 10:20] = 0.5
    tri[10:20, 150:160] = 0.5
    assert len(band_bbox(tri, 3)) == 2
    assert len(band_bbox(tri, 3, merge_gap=200)) == 1
    tri[10:20, 26:30] = 0.5  # 6 px from the first: padded boxes overlap
    crops = band_bbox(tri, 3)
    assert len(crops) == 2
    assert crops[0] == BandCrop(7, 23, 7, 33)


def test_crops_are_clipped_to_the_frame():
    tri = np.zeros((30, 40), np.float32)
    tri[0:5, 35:40] = 0.5
    (crop,) = band_bbox(tri, 8)
    assert crop == BandCrop(0, 13, 27, 40)
    assert crop.shape == (13, 13) and crop.size == 169


def test_no_band_gives_no_crop():
    assert band_bbox(np.ones((10, 10), np.float32), 4) == []
    with pytest.raises(ConfigError, match="pad"):
        band_bbox(np.ones((10, 10), np.float32), -1)


def test_matches_full_frame_morphology_for_objects_anywhere():
    """The morphology runs on the object's padded box only; the result must not change."""
    mask = np.zeros((90, 140), np.float32)
    mask[:50, :30] = 1.0  # touches two frame edges
    mask[60:, 110:] = 1.0  # touches the other two
    mask[30:45, 60:85] = 1.0
    for k in (3, 8, 15):
        tri = trimap_from_mask(mask, min_band=k, max_band=k)
        d = 2 * (k // 2) + 1
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (d, d))
        m8 = mask.astype(np.uint8)
        ref = np.where(cv2.dilate(m8, kernel) > 0, 0.5, 0.0)
        ref[cv2.erode(m8, kernel) > 0] = 1.0
        np.testing.assert_array_equal(tri, ref)


# --- search_band -----------------------------------------------------------------------


def test_search_band_reaches_inner_inside_and_outer_outside():
    mask = disk(160, 160, 80, 80, 50) > 0.5
    sb = search_band(mask, 8, 20)
    assert not (sb.fg & sb.bg).any() and not (sb.band & (sb.fg | sb.bg)).any()
    assert (sb.fg | sb.bg | sb.band).all()
    row = sb.band[80]  # through the centre: the band spans [30-20, 30+8) on the left
    left = np.flatnonzero(row[:80])
    assert left[0] == pytest.approx(80 - 50 - 20, abs=1)
    assert left[-1] == pytest.approx(80 - 50 + 8, abs=1)


def test_search_band_matches_morphology_with_disks():
    mask = np.maximum(disk(120, 150, 60, 50, 30), disk(120, 150, 60, 110, 25)) > 0.5
    mask[:40, :20] = True  # touches two frame edges
    for inner, outer in ((3, 5), (9, 14)):
        sb = search_band(mask, inner, outer)
        m8 = mask.astype(np.uint8)
        disk_in = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * inner + 1,) * 2)
        disk_out = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * outer + 1,) * 2)
        fg_ref = cv2.erode(m8, disk_in).astype(bool)
        bg_ref = ~cv2.dilate(m8, disk_out).astype(bool)
        # Distance transform vs digital disk: they differ on a few boundary pixels only.
        assert (sb.fg != fg_ref).mean() < 0.01 and (sb.bg != bg_ref).mean() < 0.01
        assert sb.fg[:20, :10].all(), "the mask continues beyond the frame edge"


def test_search_band_of_empty_full_and_thin_masks():
    sb = search_band(np.zeros((20, 30), bool), 4, 6)
    assert sb.bg.all() and not sb.band.any()
    sb = search_band(np.ones((20, 30), bool), 4, 6)
    assert sb.fg.all() and not sb.band.any()
    thin = np.zeros((40, 40), bool)
    thin[19:21, 5:35] = True
    sb = search_band(thin, 5, 5)
    assert sb.fg.any() and thin[sb.fg].all(), "a thin object keeps its deepest pixels"


def test_band_radii_scale_with_the_object_and_are_clipped():
    mask = disk(200, 200, 100, 100, 80) > 0.5  # bbox short side 161
    assert band_radii(mask, inner_fraction=0.2, outer_fraction=0.1) == (32, 16)
    assert band_radii(mask, inner_fraction=0.2, outer_fraction=0.1, max_band=20) == (20, 16)
    assert band_radii(mask, inner_fraction=0.001, outer_fraction=0.1, min_band=4)[0] == 4


def test_search_band_pinholes_are_band_without_cutting_into_the_object():
    mask = disk(160, 160, 80, 80, 60) > 0.5
    holes = mask.copy()
    for x in range(50, 115, 8):  # a row of 2 px pinholes across the object
        holes[78:81, x : x + 3] = False
    plain, sb = search_band(mask, 12, 12), search_band(holes, 12, 12)
    assert sb.band[~holes & mask].all(), "each pinhole is band"
    assert (sb.bg == plain.bg).all()
    # the rings are a few px wide: 12 px above and below the row is certain foreground
    # (as edges of their own, the pinholes would make a 24 px band across the object)
    assert sb.fg[66, 50:115].all() and sb.fg[92, 50:115].all()
    assert (sb.fg <= plain.fg).all() and sb.fg.sum() > 0.85 * plain.fg.sum()


def test_search_band_large_holes_and_gaps_open_to_the_frame_keep_their_edges():
    mask = disk(160, 160, 80, 80, 60) > 0.5
    mask[65:96, 65:96] = False  # 961 px > pi * 8^2: a real hole
    mask[:, 150:] = True  # touches the right edge of the frame...
    mask[150:, 150:] = False  # ...around a gap open to the frame's corner
    sb = search_band(mask, 8, 12)
    assert sb.bg[80, 80], "a hole wider than the band holds certain background"
    assert not sb.fg[80, 59:65].any() and sb.fg[80, 55]
    assert sb.band[150:155, 155].all() and not sb.fg[140:150, 155].any()
