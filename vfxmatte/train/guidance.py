"""Guidance perturbation for training (MGMatting §3.1).

* :func:`perturb_guidance`: the coarse mask a network sees during training is
  made from the GT alpha: binarised at a threshold drawn from ``U(0, 1)``, then
  dilated and/or eroded in random order with random kernels from ``[1, 30]``,
  then (sometimes) CutMask: a random patch of 1/4 to 1/2 of the crop size is
  copied over another place, so the network learns not to trust the mask blindly.
* :func:`self_guidance`: the PRN's self-guidance at training time: the uncertain
  region ``1/255 < a < 1 - 1/255`` of the previous level's prediction dilated by
  an ellipse of random size (``[1, 30]`` from OS8, ``[1, 15]`` from OS4).
* :func:`gt_self_guidance`: the curriculum of the first iterations: the same
  masks made from the GT alpha instead of the (still meaningless) predictions.

Numpy functions take ``H x W`` float32 arrays; torch functions ``N x 1 x H x W``.
"""

from __future__ import annotations

import cv2
import numpy as np
import torch

from vfxmatte.matte.network.prn import dilate, ellipse_kernel, uncertain_mask
from vfxmatte.train.config import GuidanceConfig

__all__ = [
    "cut_mask",
    "gt_self_guidance",
    "morph",
    "perturb_guidance",
    "self_guidance",
]


def _ellipse(size: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (int(size), int(size)))


def morph(mask: np.ndarray, op: str, size: int) -> np.ndarray:
    """Dilate (``op='dilate'``) or erode (``'erode'``) ``mask`` with a ``size`` ellipse."""
    if size <= 1:
        return mask.copy()
    fn = cv2.dilate if op == "dilate" else cv2.erode
    return fn(mask, _ellipse(size), borderType=cv2.BORDER_REPLICATE)


def cut_mask(mask: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """CutMask: copy one random square patch (1/4-1/2 of the short side) onto another place."""
    h, w = mask.shape
    side = int(rng.integers(max(1, min(h, w) // 4), max(2, min(h, w) // 2 + 1)))
    y0, x0 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    y1, x1 = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    out = mask.copy()
    out[y1 : y1 + side, x1 : x1 + side] = mask[y0 : y0 + side, x0 : x0 + side]
    return out


def perturb_guidance(
    alpha: np.ndarray, rng: np.random.Generator, config: GuidanceConfig | None = None
) -> np.ndarray:
    """A perturbed coarse mask made from the GT ``alpha`` (``H x W`` float32 in [0,1]).

    Returns:
        ``H x W`` float32 in [0,1]: binary, or with probability ``soft_prob`` the
        binary mask blurred a little (soft masks come out of propagation backends).
    """
    cfg = config or GuidanceConfig()
    threshold = rng.uniform(cfg.threshold_min, cfg.threshold_max)
    mask = (alpha > threshold).astype(np.float32)
    ops = ["dilate", "erode"]
    rng.shuffle(ops)
    for op in ops:
        if rng.random() < 0.75:  # "and/or": each operation is applied most of the time
            mask = morph(mask, op, int(rng.integers(cfg.kernel_min, cfg.kernel_max + 1)))
    if rng.random() < cfg.cutmask_prob:
        mask = cut_mask(mask, rng)
    if rng.random() < cfg.soft_prob:
        sigma = float(rng.uniform(1.0, 4.0))
        mask = cv2.GaussianBlur(mask, (0, 0), sigma)
    return np.clip(mask, 0.0, 1.0).astype(np.float32)


def self_guidance(previous: torch.Tensor, size: int) -> torch.Tensor:
    """Uncertain region of ``previous`` (``N x 1 x H x W`` alpha) dilated by a ``size`` ellipse.

    Even sizes are rounded up to the next odd one, so the kernel has a centre.
    """
    size = max(1, int(size)) | 1
    kernel = ellipse_kernel(size).to(previous.device)
    return dilate(uncertain_mask(previous.detach()), kernel)


def gt_self_guidance(alpha_gt: torch.Tensor, size: int) -> torch.Tensor:
    """Curriculum self-guidance: the GT's uncertain region dilated by a ``size`` ellipse."""
    return self_guidance(alpha_gt, size)
