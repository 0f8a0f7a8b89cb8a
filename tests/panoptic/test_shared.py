"""Tests of vfxmatte.panoptic.shared: all segments of a frame matted with shared work."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
import scipy.sparse.linalg

from vfxmatte.errors import InputError
from vfxmatte.io.colour import to_display
from vfxmatte.matte.classical import ClassicalMatteConfig, matte_classical, trimap_classical
from vfxmatte.matte.trimap import band_radii
from vfxmatte.panoptic.labels import segments_from_label_map
from vfxmatte.panoptic.matte import PanopticConfig, matte_segments
from vfxmatte.panoptic.scene import panoptic_scene
from vfxmatte.panoptic.shared import (
    matte_segments_shared,
    segment_box,
    segment_boxes,
    solve_lockstep,
    trimap_segment,
)
from vfxmatte.synth import ShotSpec


@pytest.fixture(scope="module")
def scene():
    spec = ShotSpec(width=200, height=120, objects=3, seed=1, frames=4)
    return panoptic_scene(spec, 1, stuff=3)


def _indices(scene):
    ids = np.unique(scene.labels)
    return np.searchsorted(ids, scene.labels), len(ids)


def test_segments_match_the_classical_stage(scene):
    labels, k_count = _indices(scene)
    display = to_display(scene.image, "lin_rec709", clip=True)
    cfg = ClassicalMatteConfig(trimap="geodesic")  # the trimap the shared system uses
    shared = matte_segments_shared(display, labels, k_count, cfg, back=0)
    boxes = segment_boxes(labels, k_count)
    for k in range(1, k_count):
        mask = labels == k
        # The trimap in the segment's box is the classical stage's on the whole frame ...
        reach = band_radii(
            mask[boxes[k]], inner_fraction=cfg.band_fraction, outer_fraction=cfg.outer_fraction,
            min_band=cfg.min_band, max_band=cfg.max_band,
        )  # fmt: skip
        box = segment_box(boxes[k], labels.shape, reach)
        tri = trimap_segment(display, mask[box], box, k, cfg)
        whole = trimap_classical(display, mask.astype(np.float32), cfg)
        assert np.array_equal(tri.trimap, whole[box]), k
        outside = np.ones(labels.shape, bool)
        outside[box] = False
        assert (whole[outside] == 0.0).all()
        # ... and so is the system; the conjugate gradient stops per stretch of the band
        # here (per crop there), so alphas agree to its tolerance.
        alone, _ = matte_classical(display, mask.astype(np.float32), cfg)
        assert np.abs(shared[k] - alone).max() < 1e-2, k
        assert np.abs(shared[k] - alone).mean() < 1e-4, k


def test_back_segment_band_follows_its_neighbours(scene):
    labels, k_count = _indices(scene)
    display = to_display(scene.image, "lin_rec709", clip=True)
    alphas = matte_segments_shared(display, labels, k_count, back=0)
    assert alphas.shape == (k_count, *labels.shape) and alphas.dtype == np.float32
    assert alphas.min() >= 0.0 and alphas.max() <= 1.0
    # Deep inside the other segments the background is certainly absent, deep inside
    # its own region certainly present: its band is narrow.
    far = np.ones(labels.shape, bool)
    for k in range(1, k_count):
        far &= ~_dilate(labels == k, 40) | (labels == k)
    assert (alphas[0][(labels == 0) & far] == 1.0).all()
    inside = np.zeros(labels.shape, bool)
    for k in range(1, k_count):
        inside |= _erode(labels == k, 30)
    assert inside.any() and (alphas[0][inside] == 0.0).all()


def _dilate(mask: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.dilate(mask.astype(np.uint8), np.ones((2 * r + 1,) * 2, np.uint8)) > 0


def _erode(mask: np.ndarray, r: int) -> np.ndarray:
    import cv2

    return cv2.erode(mask.astype(np.uint8), np.ones((2 * r + 1,) * 2, np.uint8)) > 0


def test_shared_layers_beat_hard_labels_like_the_per_segment_loop():
    # A label map a frame off, as a segmenter run on a neighbouring frame would give.
    spec = ShotSpec(width=320, height=180, objects=3, seed=1, frames=4)
    scene, labels = panoptic_scene(spec, 1, stuff=3), panoptic_scene(spec, 2, stuff=3).labels
    segments = segments_from_label_map(labels)
    display = to_display(scene.image, "lin_rec709", clip=True)
    exact = scene.layers[[scene.ids.index(s.id) for s in segments]]
    hard = np.stack([(labels == s.id) for s in segments]).astype(np.float32)
    sad = {}
    for mode in ("shared", "none"):
        result = matte_segments(display, scene.image, segments, PanopticConfig(sharing=mode))
        assert np.abs(result.layers.sum(axis=0) - 1.0).max() < 1e-4
        assert result.layers.min() >= 0.0
        sad[mode] = float(np.abs(result.layers - exact).sum())
    sad_hard = float(np.abs(hard - exact).sum())
    print(f"SAD shared {sad['shared']:.1f}, per segment {sad['none']:.1f}, hard {sad_hard:.1f}")
    assert sad["shared"] < 0.95 * sad_hard
    assert sad["shared"] < 1.05 * sad["none"]


def test_lockstep_solves_each_block_as_alone():
    rng = np.random.default_rng(0)
    blocks, rhs = [], []
    for n in (30, 5, 50, 12):
        m = scipy.sparse.random(n, n, density=0.2, random_state=rng)
        spd = (m @ m.T + scipy.sparse.identity(n) * 2.0).tocsr()
        blocks.append(spd)
        rhs.append(rng.standard_normal(n))
    rhs[1][:] = 0.0  # a block with no right-hand side is solved by 0
    first = np.cumsum([0] + [b.shape[0] for b in blocks[:-1]])
    A = scipy.sparse.block_diag(blocks, format="csr")
    x = solve_lockstep(A, np.concatenate(rhs), np.ones(A.shape[0]), first, 1e-10, 1000)
    for j, (block, b) in enumerate(zip(blocks, rhs, strict=True)):
        part = x[first[j] : first[j] + b.size]
        np.testing.assert_allclose(part, scipy.sparse.linalg.spsolve(block.tocsc(), b), atol=1e-7)
    assert not x[first[1] : first[2]].any()


def test_lockstep_warns_when_capped():
    A = scipy.sparse.diags([np.linspace(1, 1000, 200)], [0], format="csr")
    A = A + scipy.sparse.diags([np.full(199, 0.4)] * 2, [-1, 1])
    with pytest.warns(RuntimeWarning, match="stopped after 2 conjugate-gradient iterations"):
        solve_lockstep(A.tocsr(), np.ones(200), np.zeros(200), np.array([0]), 1e-12, 2)


def test_segment_boxes_and_absent_segments():
    labels = np.zeros((6, 8), np.int64)
    labels[1:3, 2:5] = 2
    assert segment_boxes(labels, 4) == [
        (slice(0, 6), slice(0, 8)),
        None,
        (slice(1, 3), slice(2, 5)),
        None,
    ]
    display = np.full((6, 8, 3), 0.5, np.float32)
    alphas = matte_segments_shared(display, labels, 4)
    assert not alphas[1].any() and not alphas[3].any()


def test_bad_image():
    labels = np.zeros((6, 8), np.int64)
    with pytest.raises(InputError, match=r"must be H x W x 3 = \(6, 8, 3\)"):
        matte_segments_shared(np.zeros((6, 7, 3), np.float32), labels, 1)
    bad = np.zeros((6, 8, 3), np.float32)
    bad[2, 3, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        matte_segments_shared(bad, labels, 1)


def test_a_small_back_segment_gets_a_box_for_its_wider_band():
    """With order=ids the back segment may be small; the band its neighbours give it fits."""
    labels = np.ones((60, 90), np.int64)
    labels[25:35, 40:50] = 0  # the back segment: a 10 px square inside a large segment
    labels[:, 70:] = 2
    display = np.full((60, 90, 3), 0.3, np.float32)
    display[labels == 0] = 0.9
    display[labels == 2] = 0.6
    alphas = matte_segments_shared(display, labels, 3, back=0)
    assert alphas[0][28:32, 43:47].min() > 0.9 and alphas[0][:, :20].max() == 0.0
