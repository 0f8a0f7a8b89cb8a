"""Tests of the real-photograph library and of photo backdrops/textures in shots."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.synth import photos
from vfxmatte.synth.photos import PHOTO_ROLES, find_photos, load_photo, photo_crop
from vfxmatte.synth.shot import ShotSpec, render_frame

SHARED_REAL = Path(__file__).resolve().parents[3] / "shared" / "real"

needs_wheel_photos = pytest.mark.skipif(
    not any(p.encoding == "sRGB" for p in find_photos()),
    reason="no sample photographs installed (pip install scikit-image)",
)
needs_exr_photos = pytest.mark.skipif(
    not SHARED_REAL.is_dir(), reason="../shared/real (scene-linear photographs) is absent"
)


def test_rec709_primaries_give_the_identity() -> None:
    m = photos.to_rec709_matrix(photos._REC709)
    np.testing.assert_allclose(m, np.eye(3), atol=1e-9)


def test_aces_ap0_matrix_matches_the_published_one() -> None:
    # ACES2065-1 (AP0, D60) -> linear Rec.709 (D65), Bradford, as in the ACES/OCIO configs.
    ap0 = (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.077, 0.32168, 0.33767)
    expected = np.array(
        [
            [2.52169, -1.13413, -0.38756],
            [-0.27648, 1.37272, -0.09624],
            [-0.01538, -0.15298, 1.16835],
        ]
    )
    np.testing.assert_allclose(photos.to_rec709_matrix(ap0), expected, atol=2e-4)


def test_unknown_role_names_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="valid: train, heldout, eyeball"):
        find_photos("test")


def test_roles_are_disjoint_and_complete() -> None:
    found = find_photos()
    by_role = {role: {p.name for p in find_photos(role)} for role in PHOTO_ROLES}
    assert set().union(*by_role.values()) == {p.name for p in found}
    assert sum(len(v) for v in by_role.values()) == len(found)


@needs_wheel_photos
def test_srgb_photo_is_linearised_and_read_only() -> None:
    img = load_photo("coffee")
    assert img.dtype == np.float32 and img.ndim == 3 and img.shape[2] == 3
    assert 0.0 <= img.min() and img.max() <= 1.0
    # An 8-bit sRGB mid grey of 0.5 is about 0.214 linear: the mean must be well below
    # the mean of the encoded values.
    assert img.mean() < 0.35
    with pytest.raises(ValueError):
        img[0, 0, 0] = 1.0


@needs_wheel_photos
def test_max_side_shrinks_and_unknown_name_is_a_sentence() -> None:
    small = load_photo("coffee", max_side=100)
    assert max(small.shape[:2]) == 100
    with pytest.raises(InputError, match="No photograph named 'cofee'.*Did you mean 'coffee'"):
        load_photo("cofee")


@needs_exr_photos
def test_exr_photos_are_scene_linear_with_a_normalised_key() -> None:
    for name in ("Desk", "Carrots"):
        img = load_photo(name, max_side=256)
        lum = img @ np.float32([0.2126, 0.7152, 0.0722])
        key = float(np.exp(np.mean(np.log(lum + 1e-4))))
        assert 0.1 < key < 0.3, (name, key)
    assert load_photo("Desk").max() > 1.0  # highlights survive


def test_photo_crop_covers_and_is_deterministic() -> None:
    image = np.random.default_rng(0).random((40, 60, 3), dtype=np.float32)
    a = photo_crop(image, 30, 80, np.random.default_rng(5), zoom=(1.0, 2.0))
    b = photo_crop(image, 30, 80, np.random.default_rng(5), zoom=(1.0, 2.0))
    assert a.shape == (30, 80, 3) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert image.min() <= a.min() and a.max() <= image.max()


@needs_wheel_photos
def test_photo_shot_keeps_the_composite_identity() -> None:
    spec = ShotSpec(
        width=160, height=90, frames=4, background="photo", textures="photo", turn=5.0, seed=3
    )
    f = render_frame(spec, 2)
    a = f.alpha[..., None]
    np.testing.assert_allclose(f.image, a * f.fg + (1 - a) * f.background, atol=2e-5)
    assert 0.0 < f.alpha.mean() < 0.5
    other = render_frame(ShotSpec(width=160, height=90, frames=4, seed=3), 2)
    assert not np.allclose(other.background, f.background)


def test_turn_rotates_the_object_steadily() -> None:
    base = {
        "width": 160,
        "height": 160,
        "frames": 6,
        "speed": 0.0,
        "hair": False,
        "translucent": False,
        "motion_blur_samples": 1,
        "seed": 1,
    }
    still = [render_frame(ShotSpec(**base), i).alpha for i in (0, 5)]
    turned = [render_frame(ShotSpec(**base, turn=10.0), i).alpha for i in (0, 5)]
    np.testing.assert_array_equal(turned[0], still[0])  # no rotation at frame 0
    assert np.abs(turned[1] - still[1]).sum() > 20.0
