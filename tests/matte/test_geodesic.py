"""Tests of vfxmatte.matte.geodesic: edge-aware distances and the geodesic trimap."""

from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.matte.geodesic import geodesic_distances, trimap_geodesic


def two_halves(h: int = 20, w: int = 30, contrast: float = 0.4) -> np.ndarray:
    img = np.full((h, w, 3), 0.3, np.float32)
    img[:, w // 2:] += contrast / np.sqrt(3)  # Euclidean colour step = contrast
    return img


def test_distance_is_the_colour_change_across_edges_plus_length():
    img = two_halves(contrast=0.4)
    nodes = np.ones(img.shape[:2], bool)
    src = np.zeros_like(nodes)
    src[:, 0] = True
    (d,) = geodesic_distances(img, nodes, [src], edge_threshold=0.0, texture_factor=0.0,
                              step_cost=1e-3)
    assert d[:, 0].max() == 0.0
    np.testing.assert_allclose(d[5, 14], 14e-3, rtol=1e-6)  # same colour: length only
    np.testing.assert_allclose(d[5, 15], 0.4 + 15e-3, rtol=1e-4)  # one step across the edge
    np.testing.assert_allclose(d[5, 29], 0.4 + 29e-3, rtol=1e-4)


def test_steps_below_the_texture_level_are_free():
    rng = np.random.default_rng(0)
    img = two_halves(contrast=0.4) + rng.normal(0.0, 0.002, (20, 30, 1)).astype(np.float32)
    nodes = np.ones(img.shape[:2], bool)
    src = np.zeros_like(nodes)
    src[:, 0] = True
    (d,) = geodesic_distances(img, nodes, [src], edge_threshold=0.01, texture_factor=0.0,
                              step_cost=1e-4)
    assert d[:, :15].max() < 0.01, "noise and shading below the threshold cost nothing"
    assert 0.35 < d[:, 15:].min() < 0.41


def test_distance_outside_nodes_or_without_sources_is_infinite():
    img = two_halves()
    nodes = np.zeros(img.shape[:2], bool)
    nodes[:, :20] = True
    src = np.zeros_like(nodes)
    src[0, 0] = True
    d, none = geodesic_distances(img, nodes, [src, np.zeros_like(nodes)])
    assert np.isinf(d[:, 20:]).all() and np.isfinite(d[:, :20]).all()
    assert np.isinf(none).all()


def disk_scene(h: int = 120, w: int = 140, shift: int = 6, seed: int = 0):
    """A flat warm disk on a cool background with a soft 2 px edge; the mask is shifted."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    r = np.hypot(yy - h / 2, xx - w / 2)
    alpha = np.clip((36.0 - r) / 2.0 + 0.5, 0.0, 1.0)
    fg, bg = np.array([0.85, 0.4, 0.25]), np.array([0.2, 0.45, 0.6])
    img = alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg
    img += np.random.default_rng(seed).normal(0.0, 0.003, img.shape)
    mask = np.hypot(yy - h / 2, xx - w / 2 - shift) < 36.0
    return img.astype(np.float32), mask, alpha


def test_trimap_follows_the_image_edge_not_a_shifted_mask():
    img, mask, alpha = disk_scene(shift=6)
    tri, prior = trimap_geodesic(img, mask, inner=12, outer=12)
    assert set(np.unique(tri).tolist()) <= {0.0, 0.5, 1.0}
    assert not (tri[alpha >= 1.0] == 0.0).any(), "no part of the object may become background"
    assert not (tri[alpha <= 0.0] == 1.0).any(), "no background may become foreground"
    # The object's part the mask misses is recovered, the background it covers is released
    # (both crescents are at most 6 px wide: their inner rims are the soft edge, unknown).
    assert (tri[(alpha >= 1.0) & ~mask] == 1.0).mean() > 0.7
    assert (tri[(alpha <= 0.0) & mask] == 0.0).mean() > 0.7
    unknown = tri == 0.5
    assert unknown.sum() < 0.3 * np.count_nonzero(mask ^ (alpha > 0.5)) + 8 * 2 * np.pi * 36
    np.testing.assert_array_equal(prior[~unknown], tri[~unknown])
    assert 0.0 <= prior.min() and prior.max() <= 1.0


def test_translucent_region_under_the_mask_stays_unknown():
    img, _, alpha = disk_scene(shift=0)
    h, w = alpha.shape
    veil = np.zeros((h, w), bool)
    veil[h // 2 + 20:h // 2 + 46, w // 2 - 25:w // 2 + 25] = True
    veil &= alpha <= 0.0
    img[veil] = 0.5 * np.array([0.95, 0.95, 1.0]) + 0.5 * img[veil]  # alpha 0.5
    mask = (alpha > 0.5) | veil  # the mask covers the veil as if it were solid
    tri, prior = trimap_geodesic(img, mask, inner=20, outer=12)
    core = veil & (np.abs(np.arange(w) - w // 2) < 20)[None, :]
    assert (tri[core] == 1.0).mean() < 0.05, "a veil is not definite foreground"
    assert (tri[core] == 0.5).mean() > 0.9
    assert 0.3 < float(np.median(prior[core])) < 0.9


def test_full_or_empty_band_is_returned_as_is():
    img = np.zeros((16, 16, 3), np.float32)
    tri, prior = trimap_geodesic(img, np.ones((16, 16), bool), inner=3, outer=3)
    assert (tri == 1.0).all() and (prior == 1.0).all()
    tri, prior = trimap_geodesic(img, np.zeros((16, 16), bool), inner=3, outer=3)
    assert (tri == 0.0).all()


@pytest.mark.parametrize("shift", [-5, 5])
def test_prior_is_undecided_where_image_and_mask_disagree(shift):
    img, mask, alpha = disk_scene(shift=shift)
    tri, prior = trimap_geodesic(img, mask, inner=12, outer=12, certainty=0.99)
    unknown = tri == 0.5
    agree_fg, agree_bg = unknown & (alpha >= 1.0) & mask, unknown & (alpha <= 0.0) & ~mask
    missed, covered = unknown & (alpha >= 1.0) & ~mask, unknown & (alpha <= 0.0) & mask
    assert prior[agree_fg].min() > 0.9 and prior[agree_bg].max() < 0.1
    # (p + mask) / 2: the image's p says the opposite of the mask, the prior stays near 0.5.
    assert 0.4 < prior[missed].mean() < 0.6 and 0.4 < prior[covered].mean() < 0.6
