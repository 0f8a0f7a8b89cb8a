from __future__ import annotations

import numpy as np
import pytest
import torch

from vfxmatte.refine.sparse_net import SparseRefineArch, SparseRefineNet


def _make_net(width: int = 8, blocks: int = 2, feature_channels: int = 0, seed: int = 0):
    """A small network with random weights."""
    torch.manual_seed(seed)
    return SparseRefineNet(
        SparseRefineArch(width=width, blocks=blocks, feature_channels=feature_channels)
    )


def _constant_net(shift: float, feature_channels: int = 0) -> SparseRefineNet:
    """A network whose output is exactly clamp(alpha + shift): head weight 0, head bias ``shift``."""
    net = _make_net(feature_channels=feature_channels)
    with torch.no_grad():
        net.layers[-1].weight.zero_()
        net.layers[-1].bias.fill_(shift)
    return net


@pytest.fixture
def frame():
    """A 45x67 display image, a 15x23 working-resolution alpha and its confidence."""
    rng = np.random.default_rng(0)
    image = rng.random((45, 67, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:15, 0:23]
    alpha = np.clip((xx - 8.0) / 6.0, 0.0, 1.0).astype(np.float32) * 0.6  # a soft ramp < 0.6
    confidence = np.where((xx > 6) & (xx < 16) & (yy > 2), 0.2, 0.95).astype(np.float32)
    return image, alpha, confidence


@pytest.fixture
def make_net():
    return _make_net


@pytest.fixture
def constant_net():
    return _constant_net
