"""Tests of the multi-level foreground estimation on synthetic composites.

Every plate is composited here from a known foreground ``F_gt``, background
``B_gt`` and alpha in scene-linear float32 (``I = αF + (1-α)B``), so the ground
truth is exact.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

import numpy as np
import pytest

pytest.importorskip("pymatting")

from vfxmatte.decontaminate import multilevel  # noqa: E402
from vfxmatte.decontaminate.multilevel import (  # noqa: E402
    MultilevelConfig,
    estimate_foreground_background_multilevel,
    estimate_foreground_multilevel,
)
from vfxmatte.errors import BackendUnavailableError, ConfigError, InputError  # noqa: E402

HIGHLIGHT = 4.0


@dataclass
class Scene:
    image: np.ndarray  # [H, W, 3] float32 scene-linear plate
    alpha: np.ndarray  # [H, W] float32 in [0, 1]
    fg: np.ndarray  # [H, W, 3] ground-truth straight foreground
    bg: np.ndarray  # [H, W, 3] ground-truth background
    hot: np.ndarray  # [H, W] bool, where fg is exactly HIGHLIGHT
    lit: np.ndarray  # [H, W] bool, where fg is raised by the highlight or its shoulder

    @property
    def band(self) -> np.ndarray:
        """The uncertain band of the default config, ``1e-3 < alpha < 1 - 1e-3``."""
        return (self.alpha > 1e-3) & (self.alpha < 1 - 1e-3)


def make_scene(size: int = 96, radius: float = 30.0, soft: float = 12.0) -> Scene:
    """A disk with a wide soft edge plus a patch of noise-like fractional alpha.

    The foreground is a smooth orange field with a highlight (4.0, above display
    white) in a wedge that runs from the opaque core across the soft edge.
    """
    rng = np.random.default_rng(7)
    y, x = np.mgrid[:size, :size].astype(np.float32)
    c = size / 2
    r = np.hypot(y - c, x - c)
    alpha = np.clip((radius - r) / soft + 0.5, 0.0, 1.0)
    patch = (slice(4, 20), slice(4, 20))  # smoke-like partial coverage, away from the disk
    alpha[patch] = rng.uniform(0.2, 0.8, size=(16, 16))
    fg = np.stack(
        [0.8 + 0.1 * np.sin(x / 9), 0.35 + 0.1 * np.cos(y / 7), 0.15 + 0.05 * np.sin(y / 11)],
        axis=-1,
    )
    # Plateau at HIGHLIGHT with a soft shoulder, as a specular highlight has:
    # the method assumes a smooth foreground (Germer et al. §3).
    dist = np.maximum(np.abs(y - c) - 4.0, 0.0) + np.maximum(c + 6.0 - x, 0.0)
    weight = np.clip(1.0 - dist / 8.0, 0.0, 1.0)[..., None]
    fg = fg * (1 - weight) + HIGHLIGHT * weight
    hot, lit = dist == 0.0, weight[..., 0] > 0.0
    bg = np.stack(
        [0.1 + 0.02 * np.cos(x / 13), 0.5 + 0.05 * np.sin(x / 5), 0.9 + 0.05 * np.cos(y / 8)],
        axis=-1,
    )
    a = alpha[..., None]
    image = a * fg + (1 - a) * bg
    return Scene(
        image.astype(np.float32),
        alpha.astype(np.float32),
        fg.astype(np.float32),
        bg.astype(np.float32),
        hot,
        lit,
    )


@pytest.fixture(scope="module")
def scene() -> Scene:
    return make_scene()


@pytest.fixture(scope="module")
def solved(scene: Scene) -> tuple[np.ndarray, np.ndarray]:
    return estimate_foreground_background_multilevel(scene.image, scene.alpha)


def test_output_is_float32_of_input_shape(scene: Scene, solved: tuple) -> None:
    fg, bg = solved
    assert fg.shape == bg.shape == scene.image.shape
    assert fg.dtype == bg.dtype == np.float32
    out = estimate_foreground_multilevel(scene.image.astype(np.float64), scene.alpha)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, fg)


def test_composite_reproduces_plate(scene: Scene, solved: tuple) -> None:
    fg, bg = solved
    a = scene.alpha[..., None]
    err = np.abs(a * fg + (1 - a) * bg - scene.image)
    # The solver minimises the compositing residual plus a smoothness term. It
    # is near zero almost everywhere; the largest residuals (~0.1 on a plate
    # that reaches 4.0) sit just outside the highlight's shoulder, where the
    # smoothness prior spreads the highlight into F and B would have to go
    # below 0 to compensate.
    assert err.mean() < 1e-3
    assert np.quantile(err, 0.99) < 0.02
    assert err.max() < 0.15


def test_foreground_far_better_than_contaminated_plate(scene: Scene, solved: tuple) -> None:
    fg, _ = solved
    seen = scene.alpha > 0.1
    err = np.abs(fg - scene.fg)[seen].mean()
    naive = np.abs(scene.image - scene.fg)[seen].mean()  # F = I keeps the spill
    assert err < 0.25 * naive
    soft_edge = seen & (scene.alpha < 0.9) & ~scene.lit
    edge_err = np.abs(fg - scene.fg)[soft_edge].mean()
    assert edge_err < 0.05
    assert edge_err < 0.2 * np.abs(scene.image - scene.fg)[soft_edge].mean()


@pytest.mark.parametrize("band_only", [True, False])
def test_known_pixels_are_exact(scene: Scene, band_only: bool) -> None:
    cfg = MultilevelConfig(band_only=band_only)
    fg, bg = estimate_foreground_background_multilevel(scene.image, scene.alpha, cfg)
    opaque = scene.alpha == 1.0
    clear = scene.alpha == 0.0
    assert opaque.any() and clear.any()
    np.testing.assert_array_equal(fg[opaque], scene.image[opaque])
    np.testing.assert_array_equal(fg[clear], 0.0)
    np.testing.assert_array_equal(bg[clear], scene.image[clear])


def test_highlight_survives(scene: Scene, solved: tuple) -> None:
    fg, _ = solved
    core = scene.hot & (scene.alpha == 1.0)
    assert core.any()
    np.testing.assert_array_equal(fg[core], HIGHLIGHT)
    # In the soft edge the highlight is only partly visible in the plate; the
    # estimate must recover it, not stop at display white.
    edge = scene.hot & (scene.alpha > 0.3) & (scene.alpha < 0.95)
    assert edge.sum() > 10
    assert scene.image[edge].min() < HIGHLIGHT - 0.5
    assert np.median(fg[edge]) > HIGHLIGHT - 0.3
    assert fg[edge].min() > 2.0


def test_pymatting_alone_clips_to_display_white(scene: Scene) -> None:
    """Why the crops are rescaled: the kernel itself clips at 1.0."""
    from pymatting import estimate_foreground_ml

    raw = estimate_foreground_ml(scene.image, scene.alpha)
    assert raw.max() <= 1.0


def test_linear_in_plate(scene: Scene, solved: tuple) -> None:
    fg, _ = solved
    # Power-of-two gains are exact in float32: the solver sees the same numbers.
    np.testing.assert_array_equal(
        estimate_foreground_multilevel(scene.image * 8.0, scene.alpha), fg * 8.0
    )
    np.testing.assert_allclose(
        estimate_foreground_multilevel(scene.image * 0.3, scene.alpha),
        fg * 0.3,
        rtol=1e-4,
        atol=1e-6,
    )


def test_negative_plate_values_are_not_clipped() -> None:
    s = make_scene()
    image = s.image - 0.2  # e.g. out-of-gamut ACEScg or grain below black
    fg, bg = estimate_foreground_background_multilevel(image, s.alpha)
    a = s.alpha[..., None]
    err = np.abs(a * fg + (1 - a) * bg - image)
    assert err.mean() < 1e-3 and np.quantile(err, 0.99) < 0.02
    seen = (s.alpha > 0.3) & (s.alpha < 1.0)
    assert np.abs(fg - (s.fg - 0.2))[seen].mean() < 0.05
    assert fg[s.band].min() < -0.05 and bg[s.band].min() < -0.05


def test_band_only_matches_full_frame(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_scene(size=256, radius=40.0, soft=12.0)
    calls: list[int] = []
    solver = multilevel._load_solver()

    def counting(image: np.ndarray, alpha: np.ndarray, **kw: object) -> tuple:
        calls.append(alpha.size)
        return solver(image, alpha, **kw)

    monkeypatch.setattr(multilevel, "_load_solver", lambda: counting)
    tiled = MultilevelConfig(tile_size=64, context_margin=16)
    fg_band = estimate_foreground_multilevel(s.image, s.alpha, tiled)
    assert len(calls) > 1 and sum(calls) < 0.7 * s.alpha.size  # the crop path ran
    calls.clear()
    fg_full = estimate_foreground_multilevel(s.image, s.alpha, MultilevelConfig(band_only=False))
    assert calls == [s.alpha.size]
    np.testing.assert_array_equal(fg_band[~s.band], fg_full[~s.band])
    # Crops see less context than the whole frame, so the coarse pyramid levels
    # differ and the two agree closely but not bit for bit. The differences
    # (q99 ~0.35 in linear units, at the highlight's shoulder where the method
    # is least sure) stay within the method's own error against the truth.
    seen = s.band & (s.alpha > 0.1)
    diff = np.abs(fg_band - fg_full)[seen].mean()
    err_band = np.abs(fg_band - s.fg)[seen].mean()
    err_full = np.abs(fg_full - s.fg)[seen].mean()
    naive = np.abs(s.image - s.fg)[seen].mean()
    assert diff < 0.1 * naive
    assert diff < err_full
    assert err_band < 1.25 * err_full


def test_hard_matte_needs_no_solve(monkeypatch: pytest.MonkeyPatch) -> None:
    s = make_scene()
    hard = (s.alpha > 0.5).astype(np.float32)

    def fail() -> None:
        raise AssertionError("the solver must not be loaded without a band")

    monkeypatch.setattr(multilevel, "_load_solver", fail)
    fg = estimate_foreground_multilevel(s.image, hard)
    np.testing.assert_array_equal(fg, s.image * hard[..., None])


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (5, 1), (2, 2)])
def test_tiny_images(shape: tuple[int, int]) -> None:
    image = np.full((*shape, 3), 0.5, dtype=np.float32)
    alpha = np.full(shape, 0.5, dtype=np.float32)
    fg, bg = estimate_foreground_background_multilevel(image, alpha)
    assert fg.shape == image.shape and np.isfinite(fg).all()
    np.testing.assert_allclose(0.5 * fg + 0.5 * bg, image, atol=1e-3)


def test_alpha_round_off_is_tolerated(scene: Scene, solved: tuple) -> None:
    alpha = scene.alpha.copy()
    alpha[scene.alpha == 1.0] = 1.0 + 5e-7
    alpha[:, :1][scene.alpha[:, :1] == 0.0] = -5e-7
    fg = estimate_foreground_multilevel(scene.image, alpha[..., None])  # H×W×1 accepted
    np.testing.assert_array_equal(fg, solved[0])


def test_shape_mismatch_names_both_shapes(scene: Scene) -> None:
    with pytest.raises(InputError, match=r"image \(96, 96, 3\) and alpha \(95, 96\)"):
        estimate_foreground_multilevel(scene.image, scene.alpha[:95])
    with pytest.raises(InputError, match=r"H×W×C.*image \(96, 96\)"):
        estimate_foreground_multilevel(scene.image[..., 0], scene.alpha)


def test_non_finite_values_are_rejected(scene: Scene) -> None:
    image = scene.image.copy()
    image[3, 4, 1] = np.nan
    with pytest.raises(InputError, match=r"image contains 1 NaN or infinite"):
        estimate_foreground_multilevel(image, scene.alpha)
    alpha = scene.alpha.copy()
    alpha[0, :2] = np.inf
    with pytest.raises(InputError, match=r"alpha contains 2 NaN or infinite"):
        estimate_foreground_multilevel(scene.image, alpha)


def test_alpha_out_of_range_is_rejected(scene: Scene) -> None:
    alpha = scene.alpha.copy()
    alpha[10, 10] = 1.5
    with pytest.raises(InputError, match=r"Alpha must lie in \[0, 1\]; found values in \[0, 1.5\]"):
        estimate_foreground_multilevel(scene.image, alpha)


def test_integer_input_is_rejected(scene: Scene) -> None:
    with pytest.raises(InputError, match=r"float image.*uint8.*float32"):
        estimate_foreground_multilevel((scene.image * 50).astype(np.uint8), scene.alpha)


def test_bad_config_is_rejected(scene: Scene) -> None:
    with pytest.raises(ConfigError, match=r"multilevel.regularization.*must lie in"):
        estimate_foreground_multilevel(
            scene.image, scene.alpha, MultilevelConfig(regularization=0.0)
        )
    with pytest.raises(ConfigError, match=r"must be a MultilevelConfig, got dict"):
        estimate_foreground_multilevel(scene.image, scene.alpha, {"band_only": False})


def test_missing_pymatting_names_the_extra(scene: Scene, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pymatting", None)
    with pytest.raises(BackendUnavailableError, match=r"pip install 'vfxmatte\[classical\]'"):
        estimate_foreground_multilevel(scene.image, scene.alpha)


def test_numba_thread_count_is_restored(scene: Scene) -> None:
    numba = pytest.importorskip("numba")
    before = numba.get_num_threads()
    estimate_foreground_multilevel(scene.image, scene.alpha)
    assert numba.get_num_threads() == before


def test_per_pixel_ceiling_is_the_clip_and_scales_with_the_plate(scene: Scene) -> None:
    """``ceiling`` of 1 on a plate at most 1 is pymatting's own [0, 1] solve; a ceiling
    above the highlight keeps it; twice the plate and ceiling, twice the foreground."""
    import pymatting

    plate = np.clip(scene.image, 0.0, 1.0)
    ones = np.ones(scene.alpha.shape, np.float32)
    fg, _ = estimate_foreground_background_multilevel(
        plate, scene.alpha, MultilevelConfig(band_only=False), ceiling=ones
    )
    ref = pymatting.estimate_foreground_ml(plate, scene.alpha)
    np.testing.assert_allclose(fg[scene.band], ref[scene.band], atol=1e-5)
    high = np.full(scene.alpha.shape, 2.0 * HIGHLIGHT, np.float32)
    lit, _ = estimate_foreground_background_multilevel(scene.image, scene.alpha, ceiling=high)
    assert float(lit[scene.hot & scene.band].max()) > 0.9 * HIGHLIGHT
    twice, _ = estimate_foreground_background_multilevel(
        2 * scene.image, scene.alpha, ceiling=2 * high
    )
    np.testing.assert_allclose(twice, 2 * lit, rtol=1e-5, atol=1e-6)


def test_solved_clear_holds_the_extension_only_where_alpha_is_zero(scene: Scene) -> None:
    out = np.full(scene.image.shape, np.nan, np.float32)
    fg, _ = estimate_foreground_background_multilevel(scene.image, scene.alpha, solved_clear=out)
    clear = scene.alpha <= 1e-3
    filled = np.isfinite(out[..., 0])
    assert filled.any() and not (filled & ~clear).any()
    np.testing.assert_array_equal(fg[clear], 0.0)  # the returned F is unchanged
    near = filled & (cv2_distance(scene.alpha > 1e-3) <= 3)
    # the extension continues the orange foreground next to the band (red > blue)
    assert (out[near][:, 0] > out[near][:, 2]).mean() > 0.9


def cv2_distance(mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3)


def test_channel_max_matches_numpy():
    from vfxmatte.decontaminate.fusion import _channel_max

    image = np.random.default_rng(0).normal(size=(33, 41, 3)).astype(np.float32) * 5
    np.testing.assert_array_equal(_channel_max(image), image.max(axis=2))
