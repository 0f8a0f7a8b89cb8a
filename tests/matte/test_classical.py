"""Tests of vfxmatte.matte.classical against synthetic composites with exact alpha."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import cv2
import numpy as np
import pytest

from vfxmatte.errors import BackendUnavailableError, ConfigError, InputError
from vfxmatte.matte import classical
from vfxmatte.matte.classical import (
    ClassicalMatteConfig,
    confidence_map,
    estimate_alpha_cf_band,
    matte_classical,
    matting_laplacian_band,
)
from vfxmatte.matte.trimap import trimap_from_mask

# A 4 px soft edge seen through a mask grown by 2 px needs a band of about +-4 px: on these
# 80 px objects that is band_fraction 0.1 (the default 0.04 suits larger objects).
BAND = 0.1
CFG = ClassicalMatteConfig(band_fraction=BAND)


def smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3.0 - 2.0 * x)


def soft_disks(h: int, w: int, disks: list[tuple[float, float, float]], soft: float = 4.0):
    """Alpha of soft-edged disks (smoothstep over ``soft`` px), HxW float64 in [0,1]."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    alpha = np.zeros((h, w))
    for cy, cx, r in disks:
        alpha = np.maximum(alpha, smoothstep((r - np.hypot(yy - cy, xx - cx)) / soft + 0.5))
    return alpha


def composite(alpha: np.ndarray, seed: int = 0) -> np.ndarray:
    """``I = aF + (1-a)B`` in display-referred sRGB space, HxWx3 float32 in [0,1].

    F is a smooth warm gradient and B a smooth cool one, plus a little noise.
    """
    h, w = alpha.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    fg = np.stack([0.8 + 0.1 * np.sin(xx / w * 3), 0.3 + 0.2 * yy / h,
                   0.2 + 0.1 * np.cos(yy / h * 4)], -1)
    bg = np.stack([0.1 + 0.3 * xx / w, 0.6 + 0.2 * np.sin(yy / h * 5), 0.7 - 0.3 * xx / w], -1)
    img = alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg
    img += np.random.default_rng(seed).normal(0.0, 0.002, img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def guidance_from(alpha: np.ndarray, grow: int = 2) -> np.ndarray:
    """The coarse mask a user would give: alpha > 0.5 dilated by ``grow`` px."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    return cv2.dilate((alpha > 0.5).astype(np.uint8), k).astype(np.float32)


@pytest.fixture(scope="module")
def scene():
    alpha = soft_disks(120, 160, [(60, 80, 38)])
    return composite(alpha), guidance_from(alpha), alpha


def sad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.float64) - b).sum())


def test_recovers_soft_edge(scene):
    image, guidance, gt = scene
    alpha, confidence = matte_classical(image, guidance, CFG)
    assert alpha.shape == confidence.shape == (120, 160)
    assert alpha.dtype == confidence.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    assert 0.0 <= confidence.min() and confidence.max() <= 1.0
    assert sad(alpha, gt) < 0.5 * sad(guidance, gt), (sad(alpha, gt), sad(guidance, gt))
    band = trimap_from_mask(guidance, band_fraction=BAND) == 0.5
    err = np.abs(alpha - gt)[band]
    assert err.mean() < 0.01 and err.max() < 0.1, (err.mean(), err.max())


def test_known_pixels_are_exact(scene):
    image, guidance, _ = scene
    alpha, _ = matte_classical(image, guidance, CFG)
    trimap = trimap_from_mask(guidance, band_fraction=BAND)
    assert (alpha[trimap == 1.0] == 1.0).all()
    assert (alpha[trimap == 0.0] == 0.0).all()
    assert (trimap == 0.5).sum() > 500


def test_confidence_is_high_off_band_and_low_in_band(scene):
    image, guidance, _ = scene
    alpha, conf = matte_classical(image, guidance, CFG)
    trimap = trimap_from_mask(guidance, band_fraction=BAND)
    band = trimap == 0.5
    assert (conf[band] < 0.5).all() and (conf[~band] > 0.5).all()
    assert conf[0, 0] == 1.0 and conf[60, 80] == 1.0  # far from the band
    undecided = band & (np.abs(alpha - 0.5) < 0.1)
    assert conf[undecided].max() < 0.1


def test_confidence_formula():
    trimap = np.zeros((1, 9), np.float32)
    trimap[0, 3:6] = 0.5
    alpha = np.array([[0, 0, 0, 0.0, 0.5, 1.0, 1, 1, 1]], np.float32)
    conf = confidence_map(alpha, trimap, band_radius=2)
    # known: 0.5 + 0.5 min(1, d_U / 2); unknown: 0.5 (1 - 4a(1-a)) (1 - 0.5 min(1, d_K / 2))
    expected = [1.0, 1.0, 0.75, 0.375, 0.0, 0.375, 0.75, 1.0, 1.0]
    np.testing.assert_allclose(conf[0], expected, atol=1e-6)


def test_deterministic(scene):
    image, guidance, _ = scene
    a1, c1 = matte_classical(image, guidance, CFG)
    a2, c2 = matte_classical(image.copy(), guidance.copy(), CFG)
    assert np.array_equal(a1, a2) and np.array_equal(c1, c2)


def test_two_objects_two_crops_and_cost_follows_the_band(monkeypatch):
    gt = soft_disks(120, 160, [(30, 30, 18), (82, 120, 28)])
    image, guidance = composite(gt, seed=1), guidance_from(gt)
    sizes = []

    def spy(img, tri, **kw):
        out = matting_laplacian_band(img, tri, **kw)
        sizes.append(out[0].shape[0])
        return out

    monkeypatch.setattr(classical, "matting_laplacian_band", spy)
    alpha, _ = matte_classical(image, guidance, CFG)
    n_band = int((trimap_from_mask(guidance, band_fraction=BAND) == 0.5).sum())
    assert len(sizes) == 2, "one system per band region"
    assert sum(sizes) == n_band, "the systems hold the band's pixels only"
    assert sad(alpha, gt) < 0.5 * sad(guidance, gt)


def test_large_crops_are_solved_at_reduced_resolution(scene):
    image, guidance, gt = scene
    cfg = ClassicalMatteConfig(band_fraction=BAND, max_crop_pixels=4096)  # ~90x90 -> 64x64
    alpha, _ = matte_classical(image, guidance, cfg)
    trimap = trimap_from_mask(guidance, band_fraction=BAND)
    assert (alpha[trimap == 1.0] == 1.0).all() and (alpha[trimap == 0.0] == 0.0).all()
    assert sad(alpha, gt) < 0.5 * sad(guidance, gt)


def test_empty_and_full_guidance(scene):
    image = scene[0]
    alpha, conf = matte_classical(image, np.zeros(image.shape[:2], np.float32))
    assert (alpha == 0.0).all() and (conf == 1.0).all()
    alpha, conf = matte_classical(image, np.ones(image.shape[:2], bool))
    assert (alpha == 1.0).all() and (conf == 1.0).all()


def dense_matting_laplacian(img: np.ndarray, eps: float) -> np.ndarray:
    """Levin et al. 2008 eq. 12 written out per 3x3 window: an independent dense reference."""
    h, w, _ = img.shape
    L = np.zeros((h * w, h * w))
    for y in range(1, h - 1):
        for x in range(1, w - 1):
            idx = [(y + dy) * w + x + dx for dy in (-1, 0, 1) for dx in (-1, 0, 1)]
            win = img.reshape(-1, 3)[idx]
            d = win - win.mean(axis=0)
            cov = d.T @ d / 9 + eps / 9 * np.eye(3)
            L[np.ix_(idx, idx)] += np.eye(9) - (1 + d @ np.linalg.inv(cov) @ d.T) / 9
    return L


def test_laplacian_matches_dense_reference():
    rng = np.random.default_rng(3)
    img = rng.random((9, 11, 3))
    tri = np.zeros((9, 11))
    tri[:, 6:] = 1.0
    tri[2:8, 3:8] = 0.5  # touches the frame edge nowhere, both fg and bg around it
    tri[0, 0] = 0.5  # a corner pixel: covered by one window only
    A, b, index = matting_laplacian_band(img, tri, epsilon=1e-3)
    L = dense_matting_laplacian(img, 1e-3)
    unknown = tri.ravel() == 0.5
    np.testing.assert_array_equal(index, np.flatnonzero(unknown))
    np.testing.assert_allclose(A.toarray(), L[unknown][:, unknown], atol=1e-10)
    b_ref = -L[unknown][:, ~unknown] @ (tri.ravel()[~unknown] == 1.0)
    np.testing.assert_allclose(b, b_ref, atol=1e-10)
    assert abs(A - A.T).max() < 1e-12


def test_ichol_preconditioner_is_applied_in_the_original_order(monkeypatch):
    import scipy.sparse.linalg as spla

    rng = np.random.default_rng(4)
    tri = np.zeros((20, 24))
    tri[:, 12:] = 1.0
    tri[:, 9:15] = 0.5
    A, _, _ = matting_laplacian_band(rng.random((20, 24, 3)), tri)

    def exact_factor(M, **kwargs):  # stands in for pymatting.ichol: an exact inverse
        return spla.splu(M.tocsc()).solve

    monkeypatch.setattr(classical, "_import_pymatting", lambda: SimpleNamespace(ichol=exact_factor))
    r = rng.random(A.shape[0])
    np.testing.assert_allclose(classical._ichol_rcm(A)(r), spla.spsolve(A.tocsc(), r), rtol=1e-8)


@pytest.mark.skipif(
    not os.environ.get("VFXMATTE_TEST_PYMATTING"),
    reason="importing pymatting JIT-compiles for ~50 s on a cold numba cache; "
    "set VFXMATTE_TEST_PYMATTING=1 to run",
)
def test_ichol_preconditioner_agrees_with_jacobi(scene):
    pytest.importorskip("pymatting")
    image, guidance, _ = scene
    a_jac, _ = matte_classical(image, guidance, CFG)
    ichol = ClassicalMatteConfig(band_fraction=BAND, preconditioner="ichol")
    a_ich, _ = matte_classical(image, guidance, ichol)
    assert np.abs(a_jac - a_ich).max() < 5e-3


def test_iteration_cap_warns_and_still_returns(scene):
    image, guidance, _ = scene
    with pytest.warns(RuntimeWarning, match="cg_max_iterations"):
        cfg = ClassicalMatteConfig(band_fraction=BAND, cg_max_iterations=2)
        alpha, _ = matte_classical(image, guidance, cfg)
    assert alpha.dtype == np.float32 and 0.0 <= alpha.min() and alpha.max() <= 1.0


def test_shape_mismatch_names_both_shapes(scene):
    image = scene[0]
    with pytest.raises(InputError, match=r"\(120, 160, 3\).*\(60, 80\)"):
        matte_classical(image, np.zeros((60, 80), np.float32))


def test_bad_images_are_explained(scene):
    image, guidance, _ = scene
    bad = image.copy()
    bad[5, 5, 1] = np.nan
    with pytest.raises(InputError, match="NaN"):
        matte_classical(bad, guidance)
    with pytest.raises(InputError, match="HxWx3"):
        matte_classical(np.dstack([image, guidance]), guidance)
    with pytest.raises(InputError, match="255"):
        matte_classical((image * 255).astype(np.uint8), guidance)
    with pytest.raises(InputError, match="NaN"):
        matte_classical(image, np.full(guidance.shape, np.nan, np.float32))


def test_scene_linear_values_warn(scene):
    image, guidance, _ = scene
    with pytest.warns(RuntimeWarning, match="display"):
        alpha, _ = matte_classical(image * 4.0, guidance, CFG)
    assert alpha.max() <= 1.0


def test_trimap_without_known_pixels_is_refused():
    with pytest.raises(InputError, match="known"):
        estimate_alpha_cf_band(np.zeros((8, 8, 3)), np.full((8, 8), 0.5))


def test_missing_optional_dependencies(scene, monkeypatch):
    image, guidance, _ = scene
    monkeypatch.setitem(sys.modules, "pymatting", None)
    with pytest.raises(BackendUnavailableError, match=r"vfxmatte\[classical\]"):
        matte_classical(image, guidance, ClassicalMatteConfig(preconditioner="ichol"))
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(BackendUnavailableError, match=r"vfxmatte\[classical\]"):
        matte_classical(image, guidance, CFG)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="Did you mean 'bbox'"):
        ClassicalMatteConfig(band_mode="box")
    with pytest.raises(ConfigError, match="max_band"):
        ClassicalMatteConfig(min_band=20, max_band=10)
    with pytest.raises(ConfigError, match="epsilon"):
        ClassicalMatteConfig(epsilon=0.0)
    assert ClassicalMatteConfig(min_band="5").min_band == 5  # type: ignore[arg-type]
