"""Composition, instance-wise recalibration, random alpha blending and the sample maker."""

from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.train.composition import (
    SampleMaker,
    compose_instances,
    composite,
    crop_padded,
    random_alpha_blend,
    to_display,
)
from vfxmatte.train.config import DataConfig, GuidanceConfig
from vfxmatte.train.sources import SyntheticBackgrounds, SyntheticForegrounds

RNG = np.random.default_rng(0)


def _layer(h: int = 8, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    return RNG.random((h, w, 3)).astype(np.float32), RNG.random((h, w)).astype(np.float32)


def test_composite_identity() -> None:
    fg, a = _layer()
    bg, _ = _layer()
    out = composite(fg, a, bg)
    assert np.allclose(out, a[..., None] * fg + (1 - a[..., None]) * bg)


@pytest.mark.parametrize("target", [1, 2])
def test_instance_recalibration(target: int) -> None:
    f1, a1 = _layer()
    f2, a2 = _layer()
    bg, _ = _layer()
    image, alpha, effective = compose_instances(f1, a1, f2, a2, bg, target)
    expected = composite(f1, a1, composite(f2, a2, bg))
    assert np.allclose(image, expected, atol=1e-6)
    if target == 1:
        assert np.allclose(alpha, a1)
        fg = f1
    else:
        assert np.allclose(alpha, a2 * (1 - a1))  # a2' = a2 (1 - a1), Eq. 2
        fg = f2
    # the composition identity holds for the target with the effective background
    assert np.allclose(composite(fg, alpha, effective), image, atol=1e-5)


def test_random_alpha_blending_supervises_everywhere() -> None:
    f, a = _layer()
    b, _ = _layer()
    image, target = random_alpha_blend(f, b, a)
    assert np.array_equal(target, f)
    assert np.allclose(image, composite(f, a, b))


def test_crop_padded_reaches_outside() -> None:
    arr = np.arange(16, dtype=np.float32).reshape(4, 4)
    out = crop_padded(arr, -2, 1, 4)
    assert out.shape == (4, 4)
    assert np.array_equal(out[2:, :3], arr[:2, 1:])
    assert not out[:2].any() and not out[:, 3].any()


@pytest.mark.parametrize("space", ["linear", "display"])
def test_sample_maker_gives_consistent_samples(space: str) -> None:
    data = DataConfig(crop_size=64, composite_space=space, realism_prob=0.0, instance_prob=0.5)
    maker = SampleMaker(SyntheticForegrounds(96), SyntheticBackgrounds(96), data, GuidanceConfig())
    for seed in range(4):
        s = maker.matting(np.random.default_rng(seed))
        assert s.image.shape == (64, 64, 3) and s.alpha.shape == (64, 64)
        assert s.guidance.shape == (64, 64) and s.comp_valid
        assert 0 <= s.image.min() and s.image.max() <= 1
        assert 0 <= s.alpha.min() and s.alpha.max() <= 1
        rebuilt = to_display(composite(s.fg, s.alpha, s.bg), space)
        assert np.abs(rebuilt - s.image).max() < 1e-4
    c = maker.colour(np.random.default_rng(9))
    assert c.image.shape == c.fg.shape == (64, 64, 3) and c.alpha.shape == (64, 64)


def test_samples_are_a_function_of_the_generator() -> None:
    data = DataConfig(crop_size=64)
    maker = SampleMaker(SyntheticForegrounds(96), SyntheticBackgrounds(96), data, GuidanceConfig())
    a = maker.matting(np.random.default_rng([3, 4]))
    b = maker.matting(np.random.default_rng([3, 4]))
    assert np.array_equal(a.image, b.image) and np.array_equal(a.guidance, b.guidance)


def test_realism_degradation_turns_off_composition() -> None:
    data = DataConfig(crop_size=64, realism_prob=1.0)
    maker = SampleMaker(SyntheticForegrounds(96), SyntheticBackgrounds(96), data, GuidanceConfig())
    assert not maker.matting(np.random.default_rng(1)).comp_valid
