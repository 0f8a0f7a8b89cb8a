"""Tests of vfxmatte.panoptic.scene: synthetic frames with stuff strata and exact layers."""

from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.errors import ConfigError
from vfxmatte.panoptic.scene import panoptic_scene, stuff_coverage
from vfxmatte.synth import ShotSpec, render_frame


def test_stuff_coverage_partitions_the_frame():
    cover = stuff_coverage(64, 48, 5, seed=3)
    assert cover.shape == (5, 48, 64) and cover.dtype == np.float32
    assert cover.min() >= 0.0 and np.abs(cover.sum(axis=0) - 1.0).max() < 1e-6
    assert cover[0, 0].min() == 1.0 and cover[-1, -1].min() == 1.0  # top and bottom strata
    soft = (cover > 0.01) & (cover < 0.99)
    assert soft.any()  # anti-aliased borders
    assert np.argmax(cover.sum(axis=(1, 2))) == 0  # the top stratum is the largest
    with pytest.raises(ConfigError, match="stuff must be between 1 and 32"):
        stuff_coverage(64, 48, 0, seed=0)


def test_scene_keeps_the_exact_composite():
    spec = ShotSpec(width=96, height=64, objects=2, seed=2, frames=2)
    plain = render_frame(spec, 1)
    one = panoptic_scene(spec, 1, stuff=1)
    np.testing.assert_array_equal(one.image, plain.image)  # one stratum: the plain frame
    scene = panoptic_scene(spec, 1, stuff=4)
    assert scene.names == ["background", "object1", "object2", "stuff1", "stuff2", "stuff3"]
    assert scene.ids == [0, 1, 2, 3, 4, 5]
    assert np.abs(scene.layers.sum(axis=0) - 1.0).max() < 1e-5
    np.testing.assert_allclose(scene.layers[1:3], np.moveaxis(plain.layers[..., 1:], -1, 0))
    np.testing.assert_array_equal(scene.labels, np.argmax(scene.layers, axis=0))
    # Where only the background shows, the plate is the tinted background of the strata.
    tinted = scene.image != plain.image
    assert tinted.any() and not tinted[plain.layers[..., 0] == 0.0].any()
