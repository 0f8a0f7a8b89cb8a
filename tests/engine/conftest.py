from __future__ import annotations

import pytest

from vfxmatte.synth import ShotSpec, write_shot


@pytest.fixture(scope="session")
def small_shot(tmp_path_factory):
    """A 160x96, 6-frame synthetic shot with ground truth (frames 1001-1006)."""
    spec = ShotSpec(width=160, height=96, frames=6, seed=3, speed=2.0, supersample=2)
    return write_shot(tmp_path_factory.mktemp("shot"), spec)
