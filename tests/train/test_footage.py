"""Footage-like training data: photo sources, instance unions, tone matching, the sample maker."""

from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.train.composition import composite, to_display
from vfxmatte.train.config import DataConfig, GuidanceConfig
from vfxmatte.train.footage import (
    FootageSampleMaker,
    PhotoBackgrounds,
    PhotoForegrounds,
    train_photos,
    union_instances,
)

RNG = np.random.default_rng(0)


def _layer(h: int = 8, w: int = 8) -> tuple[np.ndarray, np.ndarray]:
    return RNG.random((h, w, 3)).astype(np.float32), RNG.random((h, w)).astype(np.float32)


def test_union_of_two_instances_keeps_the_composition_identity() -> None:
    f1, a1 = _layer()
    f2, a2 = _layer()
    bg, _ = _layer()
    a2[0, 0], a1[0, 0] = 1.0, 0.0  # a pixel of the back object only
    image, alpha, fg = union_instances(f1, a1, f2, a2, bg)
    assert np.allclose(image, composite(f1, a1, composite(f2, a2, bg)), atol=1e-6)
    assert np.allclose(alpha, 1 - (1 - a1) * (1 - a2))
    assert np.allclose(composite(fg, alpha, bg), image, atol=1e-5)
    assert np.allclose(fg[0, 0], f2[0, 0]) and alpha[0, 0] == 1.0


def test_photo_sources_are_real_photographs_and_pure_functions_of_the_index() -> None:
    photos = train_photos()
    assert len(photos) >= 5
    fgs = PhotoForegrounds(canvas=96, supersample=2)
    fg, alpha = fgs[3]
    again, alpha2 = fgs[3]
    assert np.array_equal(fg, again) and np.array_equal(alpha, alpha2)
    assert fg.shape[:2] == alpha.shape and fg.dtype == np.float32 and fg.std() > 0.01
    bgs = PhotoBackgrounds(96)
    assert np.array_equal(bgs[5], bgs[5]) and not np.array_equal(bgs[5], bgs[6])


def _maker(**data: object) -> FootageSampleMaker:
    config = DataConfig(crop_size=64, synth_canvas=96, **data)  # type: ignore[arg-type]
    return FootageSampleMaker(PhotoForegrounds(96, 2), PhotoBackgrounds(96), config,
                              GuidanceConfig())  # fmt: skip


@pytest.mark.parametrize("instance_prob", [0.0, 1.0])
def test_samples_compose_exactly_when_not_degraded(instance_prob: float) -> None:
    maker = _maker(realism_prob=0.0, instance_prob=instance_prob, union_prob=0.5)
    for k in range(4):
        s = maker.matting(np.random.default_rng([1, k]))
        assert s.comp_valid and s.image.shape == (64, 64, 3) and s.guidance.shape == (64, 64)
        rebuilt = to_display(composite(s.fg, s.alpha, s.bg), "linear")
        assert np.abs(rebuilt - s.image).max() < 2e-3


def test_union_samples_keep_the_dimmer_object_in_mask_and_target() -> None:
    maker = _maker(realism_prob=0.0, instance_prob=1.0, union_prob=1.0, tone_match_prob=0.0)
    grew = 0
    for k in range(4):
        # the first draw of matting() is the centred object: replay it with the same seed
        _, a1 = maker._foreground(np.random.default_rng([9, k]), 64, centred=True)
        s = maker.matting(np.random.default_rng([9, k]))
        assert (s.alpha >= a1 - 1e-6).all()  # the front object is all there
        grew += int(s.alpha.sum() > a1.sum() + 1.0)  # and the second one is added to it
    assert grew >= 2


def test_tone_matching_gives_both_sides_the_same_brightness() -> None:
    maker = _maker()
    fg, alpha = _layer(32, 32)
    alpha[:] = 1.0
    bg = np.full((32, 32, 3), 0.05, np.float32)
    out_fg, out_bg = maker._tone_match(np.random.default_rng(2), fg * 10, alpha, bg)
    ratio = (out_fg @ [0.2126, 0.7152, 0.0722]).mean() / (out_bg @ [0.2126, 0.7152, 0.0722]).mean()
    assert 0.69 < ratio < 1.41
