"""Tests of vfxmatte.matte.closed_form: the band-only closed-form system and its solver."""

from __future__ import annotations

import os
from types import SimpleNamespace

import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.matte import closed_form
from vfxmatte.matte.closed_form import estimate_alpha_cf_band, matting_laplacian_band


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


def small_problem(seed: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    img = rng.random((9, 11, 3))
    tri = np.zeros((9, 11))
    tri[:, 6:] = 1.0
    tri[2:8, 3:8] = 0.5  # touches the frame edge nowhere, both fg and bg around it
    return img, tri


def test_laplacian_matches_dense_reference():
    img, tri = small_problem()
    tri[0, 0] = 0.5  # a corner pixel: covered by one window only
    A, b, index = matting_laplacian_band(img, tri, epsilon=1e-3)
    L = dense_matting_laplacian(img, 1e-3)
    unknown = tri.ravel() == 0.5
    np.testing.assert_array_equal(index, np.flatnonzero(unknown))
    np.testing.assert_allclose(A.toarray(), L[unknown][:, unknown], atol=1e-10)
    b_ref = -L[unknown][:, ~unknown] @ (tri.ravel()[~unknown] == 1.0)
    np.testing.assert_allclose(b, b_ref, atol=1e-10)
    assert abs(A - A.T).max() < 1e-12


def test_data_term_matches_dense_reference():
    """(L_UU + λI) α_U = -L_UK α_K + λ α̂_U, solved densely, is what the solver returns."""
    img, tri = small_problem()
    prior = np.random.default_rng(5).random(tri.shape)
    lam, eps = 0.05, 1e-3
    alpha = estimate_alpha_cf_band(img, tri, epsilon=eps, rtol=1e-12, prior=prior,
                                   prior_weight=lam)
    L = dense_matting_laplacian(img, eps)
    u = tri.ravel() == 0.5
    A = L[u][:, u] + lam * np.eye(u.sum())
    b = -L[u][:, ~u] @ (tri.ravel()[~u] == 1.0) + lam * prior.ravel()[u]
    ref = np.clip(np.linalg.solve(A, b), 0.0, 1.0)
    np.testing.assert_allclose(alpha.ravel()[u], ref, atol=1e-5)
    assert (alpha.ravel()[~u] == tri.ravel()[~u]).all(), "known pixels stay exact"


def test_zero_prior_weight_is_plain_closed_form():
    img, tri = small_problem()
    plain = estimate_alpha_cf_band(img, tri)
    weighted = estimate_alpha_cf_band(img, tri, prior=np.full(tri.shape, 0.9), prior_weight=0.0)
    np.testing.assert_array_equal(plain, weighted)


def test_prior_decides_a_flat_translucent_patch():
    """A flat veil the colour-line model leaves free takes the level of the prior."""
    h, w = 40, 60
    img = np.zeros((h, w, 3))
    img[:] = [0.2, 0.4, 0.3]  # background
    img[:, 40:] = [0.9, 0.3, 0.2]  # opaque foreground
    img[10:30, 15:40] = 0.45 * np.array([0.8, 0.9, 1.0]) + 0.55 * img[10:30, 15:40]  # veil
    tri = np.zeros((h, w))
    tri[:, 44:] = 1.0
    tri[5:35, 10:44] = 0.5
    for level in (0.3, 0.6):
        prior = np.full((h, w), level)
        alpha = estimate_alpha_cf_band(img, tri, epsilon=1e-5, prior=prior, prior_weight=1e-3)
        assert abs(float(np.median(alpha[14:26, 20:34])) - level) < 0.08, level


def test_bad_prior_is_explained():
    img, tri = small_problem()
    with pytest.raises(InputError, match=r"prior.*\(9, 11\)"):
        estimate_alpha_cf_band(img, tri, prior=np.zeros((3, 3)), prior_weight=0.1)
    with pytest.raises(InputError, match="prior"):
        estimate_alpha_cf_band(img, tri, prior_weight=0.1)
    with pytest.raises(ConfigError, match="prior_weight"):
        estimate_alpha_cf_band(img, tri, prior=np.zeros(tri.shape), prior_weight=-1.0)


def test_ichol_preconditioner_is_applied_in_the_original_order(monkeypatch):
    import scipy.sparse.linalg as spla

    rng = np.random.default_rng(4)
    tri = np.zeros((20, 24))
    tri[:, 12:] = 1.0
    tri[:, 9:15] = 0.5
    A, _, _ = matting_laplacian_band(rng.random((20, 24, 3)), tri)

    def exact_factor(M, **kwargs):  # stands in for pymatting.ichol: an exact inverse
        return spla.splu(M.tocsc()).solve

    monkeypatch.setattr(closed_form, "import_pymatting",
                        lambda: SimpleNamespace(ichol=exact_factor))
    r = rng.random(A.shape[0])
    np.testing.assert_allclose(closed_form._ichol_rcm(A)(r), spla.spsolve(A.tocsc(), r), rtol=1e-8)


@pytest.mark.skipif(
    not os.environ.get("VFXMATTE_TEST_PYMATTING"),
    reason="importing pymatting JIT-compiles for ~50 s on a cold numba cache; "
    "set VFXMATTE_TEST_PYMATTING=1 to run",
)
def test_ichol_preconditioner_agrees_with_jacobi():
    pytest.importorskip("pymatting")
    img, tri = small_problem()
    a_jac = estimate_alpha_cf_band(img, tri, rtol=1e-10)
    a_ich = estimate_alpha_cf_band(img, tri, rtol=1e-10, preconditioner="ichol")
    assert np.abs(a_jac - a_ich).max() < 5e-3


def test_iteration_cap_warns_and_still_returns():
    img, tri = small_problem()
    with pytest.warns(RuntimeWarning, match="cg_max_iterations"):
        alpha = estimate_alpha_cf_band(img, tri, max_iterations=1)
    assert alpha.dtype == np.float32 and 0.0 <= alpha.min() and alpha.max() <= 1.0


def test_trimap_without_known_pixels_is_refused():
    with pytest.raises(InputError, match="known"):
        estimate_alpha_cf_band(np.zeros((8, 8, 3)), np.full((8, 8), 0.5))
