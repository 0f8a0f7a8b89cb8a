"""Guidance perturbation (MGMatting §3.1) and training-time self-guidance."""

from __future__ import annotations

import numpy as np
import torch

from vfxmatte.matte.network.prn import uncertain_mask
from vfxmatte.train.config import GuidanceConfig
from vfxmatte.train.guidance import (
    cut_mask,
    gt_self_guidance,
    morph,
    perturb_guidance,
    self_guidance,
)


def _disc(size: int = 64, radius: float = 18.0) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size] + 0.5
    r = np.hypot(yy - size / 2, xx - size / 2)
    return np.clip(radius + 0.5 - r, 0.0, 1.0).astype(np.float32)  # 1-px soft edge


def test_threshold_only_gives_the_binarised_alpha() -> None:
    alpha = _disc()
    cfg = GuidanceConfig(
        threshold_min=0.5,
        threshold_max=0.5,
        kernel_min=1,
        kernel_max=1,
        cutmask_prob=0.0,
        soft_prob=0.0,
    )
    out = perturb_guidance(alpha, np.random.default_rng(0), cfg)
    assert out.dtype == np.float32
    assert np.array_equal(out, (alpha > 0.5).astype(np.float32))


def test_perturbed_guidance_is_binary_and_stays_near_the_object() -> None:
    alpha = _disc()
    cfg = GuidanceConfig(cutmask_prob=0.0, soft_prob=0.0)
    changed = 0
    for seed in range(20):
        out = perturb_guidance(alpha, np.random.default_rng(seed), cfg)
        assert set(np.unique(out)) <= {0.0, 1.0}
        # at most a 30-px dilation: nothing farther than that from the object
        far = morph((alpha > 0).astype(np.float32), "dilate", 31) == 0
        assert not out[far].any()
        changed += int(not np.array_equal(out, (alpha > 0.5).astype(np.float32)))
    assert changed >= 15  # the perturbation does perturb


def test_dilation_grows_and_erosion_shrinks() -> None:
    mask = (_disc() > 0.5).astype(np.float32)
    grown, shrunk = morph(mask, "dilate", 9), morph(mask, "erode", 9)
    assert (grown >= mask).all() and grown.sum() > mask.sum()
    assert (shrunk <= mask).all() and shrunk.sum() < mask.sum()
    assert np.array_equal(morph(mask, "dilate", 1), mask)


def test_cut_mask_copies_one_square_patch() -> None:
    rng = np.random.default_rng(3)
    mask = (rng.random((64, 64)) > 0.5).astype(np.float32)
    out = cut_mask(mask, np.random.default_rng(5))
    diff = np.argwhere(out != mask)
    assert diff.size  # something moved
    (y0, x0), (y1, x1) = diff.min(0), diff.max(0)
    assert y1 - y0 < 33 and x1 - x0 < 33  # inside one patch of at most half the side
    # the changed region is a copy of another place of the input
    found = False
    rng2 = np.random.default_rng(5)
    side = int(rng2.integers(16, 33))
    ys, xs, yd, xd = (int(rng2.integers(0, 64 - side + 1)) for _ in range(4))
    found = np.array_equal(
        out[yd : yd + side, xd : xd + side], mask[ys : ys + side, xs : xs + side]
    )
    assert found


def test_soft_guidance_is_in_range() -> None:
    cfg = GuidanceConfig(soft_prob=1.0, cutmask_prob=0.0)
    out = perturb_guidance(_disc(), np.random.default_rng(1), cfg)
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert ((out > 0) & (out < 1)).any()


def test_self_guidance_covers_the_uncertain_region_and_grows_with_size() -> None:
    alpha = torch.from_numpy(_disc())[None, None]
    unknown = uncertain_mask(alpha)
    small, large = self_guidance(alpha, 3), self_guidance(alpha, 30)
    assert small.shape == alpha.shape and large.shape == alpha.shape  # even sizes too
    assert (small >= unknown).all() and (large >= small).all()
    assert large.sum() > small.sum() > unknown.sum()
    assert torch.equal(gt_self_guidance(alpha, 7), self_guidance(alpha, 7))


def test_decode_mix_mixes_coarse_and_fine() -> None:
    from vfxmatte.train.tasks import decode_mix

    coarse = torch.zeros(3, 1, 32, 32)
    fine = torch.ones(3, 1, 32, 32)
    out = decode_mix(coarse, fine, np.random.default_rng(0))
    assert out.shape == coarse.shape
    assert set(torch.unique(out).tolist()) <= {0.0, 1.0}
    shares = out.mean(dim=(1, 2, 3))
    assert (shares > 0).any() and (shares < 1).any()  # t differs per sample
    # m_t is exactly one of the two masks at every pixel
    mixed = decode_mix(
        torch.full((1, 1, 8, 8), 0.25), torch.full((1, 1, 8, 8), 0.75), np.random.default_rng(1)
    )
    assert set(torch.unique(mixed).tolist()) <= {0.25, 0.75}
