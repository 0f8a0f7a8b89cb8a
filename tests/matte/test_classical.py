"""Tests of vfxmatte.matte.classical against synthetic composites with exact alpha."""

from __future__ import annotations

import sys

import cv2
import numpy as np
import pytest

from vfxmatte.errors import BackendUnavailableError, ConfigError, InputError
from vfxmatte.matte import closed_form
from vfxmatte.matte.classical import (
    ClassicalMatteConfig,
    confidence_map,
    matte_classical,
    trimap_classical,
)
from vfxmatte.matte.trimap import search_band

# The narrow symmetric band of the first version of this stage: the baseline to beat.
NARROW = ClassicalMatteConfig(
    trimap="band", band_fraction=0.02, outer_fraction=0.02, prior_weight=0.0, epsilon=1e-7
)
LEGACY = ClassicalMatteConfig(legacy=True)  # the previous default: geodesic trimap


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
    fg = np.stack(
        [0.8 + 0.1 * np.sin(xx / w * 3), 0.3 + 0.2 * yy / h, 0.2 + 0.1 * np.cos(yy / h * 4)], -1
    )
    bg = np.stack([0.1 + 0.3 * xx / w, 0.6 + 0.2 * np.sin(yy / h * 5), 0.7 - 0.3 * xx / w], -1)
    img = alpha[..., None] * fg + (1.0 - alpha[..., None]) * bg
    img += np.random.default_rng(seed).normal(0.0, 0.002, img.shape)
    return np.clip(img, 0.0, 1.0).astype(np.float32)


def guidance_from(alpha: np.ndarray, grow: int = 2, shift: tuple[int, int] = (0, 0)):
    """The coarse mask a user would give: alpha > 0.5 dilated by ``grow`` px, then moved."""
    k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * grow + 1, 2 * grow + 1))
    mask = cv2.dilate((alpha > 0.5).astype(np.uint8), k)
    move = np.float32([[1, 0, shift[1]], [0, 1, shift[0]]])
    h, w = alpha.shape
    return cv2.warpAffine(mask, move, (w, h), flags=cv2.INTER_NEAREST).astype(np.float32)


def veil_hair_scene(shift: tuple[int, int], h: int = 160, w: int = 200, seed: int = 0):
    """A body with hair above and a translucent veil below, like the demo shot's objects.

    Body: a disk (soft edge) whose rim takes the hair's colour (the roots). Hair: 14
    anti-aliased strands a quarter of a pixel wide reaching 20-30 px beyond the body.
    Veil: an ellipse under the body, opacity 0.3 (left) to 0.6 (right), so that the
    mask ``alpha > 0.5`` covers its right part as if it were solid. Background: two
    gradients, a rectangle and a pole. All in display-referred RGB.

    Returns:
        ``(image, guidance, alpha, regions)``; ``regions`` maps names to HxW bool masks.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    cy, cx, r = 0.45 * h, 0.5 * w, 0.28 * min(h, w)
    dist = np.hypot(yy - cy, xx - cx)
    body = smoothstep((r - dist) / 2.0 + 0.5)
    ellipse = ((xx - cx) / (0.85 * r)) ** 2 + ((yy - cy - 0.85 * r) / (0.4 * r)) ** 2
    veil = smoothstep((1.0 - ellipse) * 6 + 0.5) * (
        0.3 + 0.3 * np.clip((xx - cx + 0.85 * r) / (1.7 * r), 0.0, 1.0)
    )
    s = 4  # strands drawn 1 px wide at 4x, then box-averaged
    canvas = np.zeros((h * s, w * s), np.uint8)
    for k in range(14):
        a = -np.pi / 2 + (k - 6.5) * 0.11
        x0, y0 = cx + 0.95 * r * np.cos(a), cy + 0.95 * r * np.sin(a)
        length = r * (0.45 + 0.25 * rng.random())
        x1 = x0 + length * np.cos(a + 0.2 * rng.standard_normal())
        y1 = y0 + length * np.sin(a)
        cv2.line(
            canvas, (int(x0 * s), int(y0 * s)), (int(x1 * s), int(y1 * s)), 255, 1, cv2.LINE_AA
        )
    hair = cv2.resize(canvas.astype(np.float32) / 255, (w, h), interpolation=cv2.INTER_AREA)
    solid = np.maximum(body, hair)
    veil_a = (1.0 - solid) * veil
    alpha = solid + veil_a
    hair_colour = np.array([0.35, 0.12, 0.1])
    rim = np.clip((dist / r - 0.8) / 0.2, 0.0, 1.0)[..., None]
    skin = np.stack([0.75 + 0.08 * np.sin(xx / 9), 0.35 + 0.05 * np.cos(yy / 7), 0.3 + 0 * xx], -1)
    skin = (1.0 - rim) * skin + rim * hair_colour
    solid_colour = (body[..., None] * skin + hair[..., None] * hair_colour) / np.maximum(
        body + hair, 1e-6
    )[..., None]
    bg = np.stack([0.2 + 0.3 * xx / w, 0.45 + 0.15 * np.sin(yy / h * 5), 0.55 - 0.2 * xx / w], -1)
    bg[int(0.1 * h) : int(0.5 * h), int(0.05 * w) : int(0.22 * w)] = [0.55, 0.5, 0.2]
    bg[:, int(0.8 * w) : int(0.83 * w)] = [0.1, 0.1, 0.12]
    img = (
        solid[..., None] * solid_colour
        + veil_a[..., None] * np.array([0.8, 0.9, 1.0])
        + (1.0 - alpha[..., None]) * bg
    )
    img += rng.normal(0.0, 0.003, img.shape)
    guidance = guidance_from(alpha, grow=3, shift=shift)
    m = guidance > 0.5
    in_veil = (veil_a > 0.2) & (solid < 0.05)
    regions = {
        "veil under the mask": in_veil & m,
        "hair beyond the mask": (hair > 0.02) & (body < 0.05) & ~m,
        "edge": ~in_veil & (hair <= 0.02) & (np.abs(m - alpha) > 0.02),
    }
    return np.clip(img, 0.0, 1.0).astype(np.float32), guidance, alpha, regions


@pytest.fixture(scope="module")
def scene():
    alpha = soft_disks(120, 160, [(60, 80, 38)])
    return composite(alpha), guidance_from(alpha), alpha


def sad(a: np.ndarray, b: np.ndarray, where: np.ndarray | None = None) -> float:
    err = np.abs(a.astype(np.float64) - b)
    return float(err.sum() if where is None else err[where].sum())


def test_recovers_soft_edge(scene):
    image, guidance, gt = scene
    alpha, confidence = matte_classical(image, guidance)
    assert alpha.shape == confidence.shape == (120, 160)
    assert alpha.dtype == confidence.dtype == np.float32
    assert 0.0 <= alpha.min() and alpha.max() <= 1.0
    assert 0.0 <= confidence.min() and confidence.max() <= 1.0
    assert sad(alpha, gt) < 0.05 * sad(guidance, gt), (sad(alpha, gt), sad(guidance, gt))
    unknown = trimap_classical(image, guidance) == 0.5
    err = np.abs(alpha - gt)[unknown]
    assert err.mean() < 0.01 and err.max() < 0.1, (err.mean(), err.max())


@pytest.mark.parametrize("shift", [(0, 0), (3, -4)])
def test_translucent_veil_hair_and_a_misplaced_mask(shift):
    """The issue's acceptance case in small: the measured ratios were 0.25 / 0.15 overall,
    veil 0.41 / 0.18, hair 0.79 / 0.80, edge 0.04 / 0.03 (narrow band: 0.59 / 0.85)."""
    image, guidance, gt, regions = veil_hair_scene(shift)
    alpha, _ = matte_classical(image, guidance, LEGACY)
    narrow, _ = matte_classical(image, guidance, NARROW)
    assert sad(alpha, gt) < 0.4 * sad(guidance, gt)
    assert sad(alpha, gt) < 0.6 * sad(narrow, gt)
    ratios = {k: sad(alpha, gt, m) / sad(guidance, gt, m) for k, m in regions.items()}
    assert ratios["veil under the mask"] < 0.6, ratios
    assert ratios["hair beyond the mask"] < 0.9, ratios
    assert ratios["edge"] < 0.1, ratios
    trimap = trimap_classical(image, guidance, LEGACY)
    veil = regions["veil under the mask"]
    assert (trimap[veil] == 1.0).mean() < 0.1, "the veil must not be definite foreground"


@pytest.mark.parametrize("shift", [(0, 0), (3, -4)])
def test_inferred_trimap_on_the_veil_and_hair_scene(shift):
    """trimap='infer' with colour_seed on the same scene (its body's rim has the hair's
    colour, which the inside lacks): measured 0.53 overall, veil 0.78, hair beyond the mask
    0.87, edge 0.09 at shift (0, 0). Worse than the geodesic trimap on this drawn scene
    (0.25), better on the photo shots of benchmarks/matte_bench.py."""
    image, guidance, gt, regions = veil_hair_scene(shift)
    alpha, _ = matte_classical(image, guidance, ClassicalMatteConfig(colour_seed=True))
    assert sad(alpha, gt) < 0.65 * sad(guidance, gt)
    ratios = {k: sad(alpha, gt, m) / sad(guidance, gt, m) for k, m in regions.items()}
    assert ratios["edge"] < 0.15, ratios
    assert ratios["veil under the mask"] < 0.9, ratios
    assert ratios["hair beyond the mask"] < 0.95, ratios


@pytest.mark.parametrize("seed", [0, 1])
def test_demo_like_frame_with_a_shifted_mask(seed):
    """A frame of the synthetic shot (hair, veil, motion blur, textured background) at
    480x270, its mask moved by (2, -3) px: measured ratios 0.47 / 0.35 (narrow band 0.92 /
    0.88)."""
    from vfxmatte.io.colour import to_display
    from vfxmatte.synth import ShotSpec, render_frame

    frame = render_frame(ShotSpec(width=480, height=270, frames=3, seed=seed), 1)
    image = to_display(frame.image).astype(np.float32)
    move = np.float32([[1, 0, -3], [0, 1, 2]])
    guidance = cv2.warpAffine(
        frame.mask.astype(np.uint8), move, (480, 270), flags=cv2.INTER_NEAREST
    ).astype(np.float32)
    alpha, _ = matte_classical(image, guidance)
    narrow, _ = matte_classical(image, guidance, NARROW)
    assert sad(alpha, frame.alpha) < 0.6 * sad(guidance, frame.alpha)
    assert sad(alpha, frame.alpha) < 0.65 * sad(narrow, frame.alpha)


def test_known_pixels_are_exact(scene):
    image, guidance, _ = scene
    alpha, _ = matte_classical(image, guidance)
    trimap = trimap_classical(image, guidance)
    assert (alpha[trimap == 1.0] == 1.0).all()
    assert (alpha[trimap == 0.0] == 0.0).all()
    assert (trimap == 0.5).sum() > 300


def test_band_trimap_keeps_the_whole_search_band_unknown(scene):
    image, guidance, gt = scene
    cfg = ClassicalMatteConfig(trimap="band", band_fraction=0.05, outer_fraction=0.1)
    trimap = trimap_classical(image, guidance, cfg)
    region = search_band(guidance > 0.5, 4, 8)  # 0.05 and 0.1 of the 84 px box
    np.testing.assert_array_equal(trimap == 0.5, region.band)
    alpha, _ = matte_classical(image, guidance, cfg)
    assert sad(alpha, gt) < 0.5 * sad(guidance, gt)


def test_confidence_is_high_off_band_and_low_in_band(scene):
    image, guidance, _ = scene
    alpha, conf = matte_classical(image, guidance)
    band = trimap_classical(image, guidance) == 0.5
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
    a1, c1 = matte_classical(image, guidance)
    a2, c2 = matte_classical(image.copy(), guidance.copy())
    assert np.array_equal(a1, a2) and np.array_equal(c1, c2)


def test_two_objects_two_crops_and_cost_follows_the_band(monkeypatch):
    gt = soft_disks(120, 240, [(40, 40, 18), (80, 190, 28)])
    image, guidance = composite(gt, seed=1), guidance_from(gt)
    sizes = []
    build = closed_form.matting_laplacian_band

    def spy(img, tri, **kw):
        out = build(img, tri, **kw)
        sizes.append(out[0].shape[0])
        return out

    monkeypatch.setattr(closed_form, "matting_laplacian_band", spy)
    cfg = ClassicalMatteConfig(grow_rounds=0)  # one solve per crop
    alpha, _ = matte_classical(image, guidance, cfg)
    n_unknown = int((trimap_classical(image, guidance, cfg) == 0.5).sum())
    assert len(sizes) == 2, "one system per band region"
    assert sum(sizes) == n_unknown, "the systems hold the unknown pixels only"
    assert sad(alpha, gt) < 0.05 * sad(guidance, gt), "the smaller object keeps its core"


def test_large_crops_are_solved_at_reduced_resolution(scene):
    image, guidance, gt = scene
    cfg = ClassicalMatteConfig(trimap="geodesic", max_crop_pixels=4096)  # ~100x100 -> 64x64
    alpha, _ = matte_classical(image, guidance, cfg)
    trimap = trimap_classical(image, guidance, cfg)
    assert (alpha[trimap == 1.0] == 1.0).all() and (alpha[trimap == 0.0] == 0.0).all()
    assert sad(alpha, gt) < 0.3 * sad(guidance, gt)


def test_empty_and_full_guidance(scene):
    image = scene[0]
    alpha, conf = matte_classical(image, np.zeros(image.shape[:2], np.float32))
    assert (alpha == 0.0).all() and (conf == 1.0).all()
    alpha, conf = matte_classical(image, np.ones(image.shape[:2], bool))
    assert (alpha == 1.0).all() and (conf == 1.0).all()


def test_specks_of_a_noisy_mask_do_not_become_foreground(scene):
    image, guidance, gt = scene
    noisy = guidance.copy()
    noisy[10:12, 10:12] = 1.0  # a 4-pixel speck on the background
    alpha, _ = matte_classical(image, noisy)
    assert alpha[5:17, 5:17].max() < 0.05


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
        alpha, _ = matte_classical(image * 4.0, guidance)
    assert alpha.max() <= 1.0


def test_missing_optional_dependencies(scene, monkeypatch):
    image, guidance, _ = scene
    monkeypatch.setitem(sys.modules, "pymatting", None)
    with pytest.raises(BackendUnavailableError, match=r"vfxmatte\[classical\]"):
        matte_classical(image, guidance, ClassicalMatteConfig(preconditioner="ichol"))
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(BackendUnavailableError, match=r"vfxmatte\[classical\]"):
        matte_classical(image, guidance)


def test_config_is_validated():
    with pytest.raises(ConfigError, match="Did you mean 'bbox'"):
        ClassicalMatteConfig(band_mode="box")
    with pytest.raises(ConfigError, match="max_band"):
        ClassicalMatteConfig(min_band=20, max_band=10)
    with pytest.raises(ConfigError, match="epsilon"):
        ClassicalMatteConfig(epsilon=0.0)
    with pytest.raises(ConfigError, match="certainty"):
        ClassicalMatteConfig(certainty=0.3)
    with pytest.raises(ConfigError, match="geodesic, band"):
        ClassicalMatteConfig(trimap="colour")
    assert ClassicalMatteConfig(min_band="5").min_band == 5  # type: ignore[arg-type]


def test_input_in_range_is_used_as_given_and_out_of_range_is_clipped():
    """A display image already in [0,1] is not copied (nor changed); one outside is clipped
    into a copy, with a warning, leaving the caller's array as it was."""
    import warnings

    from vfxmatte.matte.classical import _check_inputs

    image = np.random.default_rng(0).uniform(0.0, 1.0, (8, 9, 3)).astype(np.float32)
    guide = np.zeros((8, 9), np.float32)
    img, _ = _check_inputs(image, guide)
    assert img is image
    bright = image * np.float32(2.0)
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        clipped, _ = _check_inputs(bright, guide)
    assert clipped.max() == 1.0 and bright.max() > 1.0


@pytest.mark.parametrize("seed", [2**30 + 6, 2**30 + 7])
def test_pinholes_in_the_mask_do_not_cost_the_object_on_a_real_photo(seed):
    """A propagated or keyed mask with a dozen 4 px pinholes inside two objects over a
    real photograph: the matte is as good as with the mask without them (before, the
    holes' bands joined and the segmentation gave parts of the objects to the
    background: SAD 2.04 -> 5.85 and 3.59 -> 8.52)."""
    from vfxmatte.io.colour import linear_to_srgb
    from vfxmatte.synth.shot import ShotSpec, render_frame

    spec = ShotSpec(width=512, height=288, frames=2, objects=2, seed=seed, hair=True,
                    background="photo", textures="photo", photo_role="heldout",
                    motion_blur_samples=1)  # fmt: skip
    frame = render_frame(spec, 0)
    image = np.clip(linear_to_srgb(frame.image), 0, 1).astype(np.float32)
    mask = (frame.alpha > 0.5).astype(np.float32)
    deep = cv2.distanceTransform(mask.astype(np.uint8), cv2.DIST_L2, 5) > 6
    ys, xs = np.nonzero(deep)
    holed = mask.copy()
    for k in np.random.default_rng(0).choice(len(ys), 12, replace=False):
        holed[ys[k] - 2 : ys[k] + 2, xs[k] - 2 : xs[k] + 2] = 0.0
    clean, _ = matte_classical(image, mask)
    with_holes, _ = matte_classical(image, holed)
    sad = lambda a: float(np.abs(a - frame.alpha).sum())  # noqa: E731
    assert sad(with_holes) <= 1.05 * sad(clean)
