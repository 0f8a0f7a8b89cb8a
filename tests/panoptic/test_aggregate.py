"""Tests of vfxmatte.panoptic.aggregate against the synthetic shot's exact layers."""

from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.panoptic.aggregate import (
    aggregate_layers,
    alphas_from_layers,
    recompose,
    soft_layers_from_labels,
)
from vfxmatte.synth.shot import ShotSpec, render_frame


@pytest.fixture(scope="module")
def frame():
    return render_frame(ShotSpec(width=160, height=96, objects=3, seed=1, frames=4), 2)


def _random(k: int = 4, h: int = 12, w: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    alphas = rng.random((k, h, w)).astype(np.float32)
    alphas[:, rng.random((h, w)) < 0.2] = 0.0  # pixels no alpha covers
    alphas[:, rng.random((h, w)) < 0.1] *= 0.1  # sums below 1
    labels = rng.integers(0, k, (h, w))
    return alphas, labels


def test_order_reproduces_exact_layers(frame):
    exact = np.moveaxis(frame.layers, -1, 0)  # [K+1, H, W], background first
    order = list(range(exact.shape[0]))  # background at the back, objects back to front
    alphas = alphas_from_layers(exact, order)
    seen = exact[0] > 1e-4  # where the background is not hidden, its alpha is 1
    np.testing.assert_allclose(alphas[0][seen], 1.0, atol=1e-4)
    layers = aggregate_layers(alphas, frame.labels, order=order)
    assert layers.dtype == np.float32 and layers.shape == exact.shape
    assert np.abs(layers - exact).max() < 1e-5


def test_one_hot_baseline_sad(frame):
    exact = np.moveaxis(frame.layers, -1, 0)
    hard = soft_layers_from_labels(frame.labels, exact.shape[0])
    assert np.array_equal(hard.sum(axis=0), np.ones(frame.labels.shape, np.float32))
    sad = np.abs(hard - exact).sum(axis=(1, 2))
    print("per-segment SAD of one-hot labels vs exact layers:", np.round(sad, 2).tolist())
    assert (sad > 0).all()  # soft edges exist in every layer the frame shows


@pytest.mark.parametrize("order", [None, [2, 0, 3, 1]])
def test_partition_of_unity(order):
    alphas, labels = _random()
    layers = aggregate_layers(alphas, labels, order=order)
    assert layers.min() >= 0.0
    assert np.abs(layers.astype(np.float64).sum(axis=0) - 1.0).max() < 1e-6


def test_remainder_goes_to_label_segment():
    alphas = np.zeros((3, 1, 3), np.float32)
    alphas[1, 0, 1] = 0.25
    labels = np.array([[2, 0, 1]])
    for order in (None, [0, 1, 2]):
        layers = aggregate_layers(alphas, labels, order=order)
        np.testing.assert_allclose(layers[:, 0, 0], [0, 0, 1])  # sum 0 -> all to label 2
        np.testing.assert_allclose(layers[:, 0, 1], [0.75, 0.25, 0])  # 1 - 0.25 to label 0
        np.testing.assert_allclose(layers[:, 0, 2], [0, 1, 0])


def test_no_order_divides_sums_above_one():
    alphas = np.array([[[0.6]], [[0.9]]], np.float32)
    layers = aggregate_layers(alphas, np.array([[0]]))
    np.testing.assert_allclose(layers[:, 0, 0], [0.4, 0.6], atol=1e-7)


def test_order_front_occludes_back():
    alphas = np.array([[[1.0]], [[0.5]], [[0.5]]], np.float32)  # bg, back, front
    layers = aggregate_layers(alphas, np.array([[2]]), order=[0, 1, 2])
    np.testing.assert_allclose(layers[:, 0, 0], [0.25, 0.25, 0.5], atol=1e-7)


def test_recompose_matches_plate(frame):
    exact = np.moveaxis(frame.layers, -1, 0)
    fgs = np.repeat(frame.background[None], exact.shape[0], axis=0)
    out = recompose(exact, fgs)  # every layer the same colour -> the background
    np.testing.assert_allclose(out, frame.background, atol=1e-5)


def test_errors_name_the_problem():
    alphas, labels = _random()
    with pytest.raises(ConfigError, match="exactly once"):
        aggregate_layers(alphas, labels, order=[0, 1, 1, 3])
    with pytest.raises(InputError, match=r"\[0, 4\)"):
        aggregate_layers(alphas, labels + 1)
    with pytest.raises(InputError, match=r"in \[0, 1\]"):
        aggregate_layers(alphas * 2.0, labels)
    with pytest.raises(InputError, match="H x W"):
        aggregate_layers(alphas, labels[:, :5])
    with pytest.raises(InputError, match="K x H x W x 3"):
        recompose(alphas, np.zeros(alphas.shape))


def test_settled_pixels_take_the_short_path():
    """Pixels with one alpha of 1 (or none) give the same layers as the full composition."""
    alphas, labels = _random(k=3, h=20, w=30, seed=4)
    alphas[:, :10] = 0.0
    alphas[1, :5] = 1.0  # one opaque alpha: settled
    alphas[2, 5:8, :3] = 1.0
    for order in (None, [1, 0, 2]):
        got = aggregate_layers(alphas, labels, order=order)
        # Reference: the composition of the docstring, on every pixel.
        a = alphas.astype(np.float64)
        if order is None:
            total = a.sum(axis=0)
            want = np.where(total > 1, a / np.maximum(total, 1e-12), a)
            rest = np.where(total > 1, 0.0, 1.0 - total)
        else:
            want, trans = np.zeros_like(a), np.ones(a.shape[1:])
            for k in reversed(order):
                want[k], trans = a[k] * trans, trans * (1 - a[k])
            rest = trans
        rows, cols = np.indices(labels.shape)
        want[labels, rows, cols] += rest
        np.testing.assert_allclose(got, want / want.sum(axis=0), atol=1e-6)
