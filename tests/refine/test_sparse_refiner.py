"""Tests of vfxmatte.refine.sparse.SparseRefiner and the refine registry."""

from __future__ import annotations

import importlib.util
import sys

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from vfxmatte.errors import ConfigError, InputError, WeightsError
from vfxmatte.refine import REFINE_BACKENDS
from vfxmatte.refine.none import NoRefine
from vfxmatte.refine.sparse import SparseRefineConfig, SparseRefiner
from vfxmatte.synth import ShotSpec, render_frame
from vfxmatte.weights import save_checkpoint

HAS_SPCONV = importlib.util.find_spec("spconv") is not None


def up(plane: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    t = torch.from_numpy(plane)[None, None]
    return F.interpolate(t, size=shape, mode="bilinear", align_corners=False)[0, 0].numpy()


def refiner(net, **options) -> SparseRefiner:
    return SparseRefiner(SparseRefineConfig(device="cpu", **options), network=net)


@pytest.mark.parametrize("dilate", [0, 2])
def test_threshold_selects_exactly_the_right_pixels(frame, dilate, constant_net):
    image, alpha, confidence = frame
    shape = image.shape[:2]
    base, error = up(alpha, shape), 1.0 - up(confidence, shape)
    expected = error > 0.5
    if dilate:
        kernel = np.ones((2 * dilate + 1, 2 * dilate + 1), np.uint8)
        expected = cv2.dilate(expected.astype(np.uint8), kernel).astype(bool)
    ref = refiner(constant_net(0.3), tau=0.5, dilate=dilate)
    out = ref(image, alpha, confidence)
    assert out.shape == shape and out.dtype == np.float32
    assert 0 < expected.sum() < expected.size
    np.testing.assert_allclose(out[expected], base[expected] + 0.3, atol=1e-6)  # base < 0.7
    np.testing.assert_array_equal(out[~expected], base[~expected])
    assert ref.last_stats.selected == ref.last_stats.active == expected.sum()
    np.testing.assert_array_equal(NoRefine()(image, alpha, confidence), base)


@pytest.mark.skipif(not HAS_SPCONV, reason="spconv is not installed")
def test_torch_and_spconv_refiners_agree_with_features(frame, make_net):
    image, alpha, confidence = frame
    net = make_net(width=32, feature_channels=3, seed=1)
    features = torch.randn(1, 3, 6, 9, generator=torch.Generator().manual_seed(0))
    outs = {}
    for impl in ("torch", "spconv"):
        outs[impl] = refiner(net, tau=0.5, impl=impl)(image, alpha, confidence, features)
    np.testing.assert_allclose(outs["spconv"], outs["torch"], atol=1e-5)
    # numpy h x w x F features are the same features.
    as_numpy = features[0].permute(1, 2, 0).numpy()
    np.testing.assert_array_equal(
        refiner(net, tau=0.5)(image, alpha, confidence, as_numpy), outs["torch"]
    )
    assert not np.array_equal(outs["torch"], up(alpha, image.shape[:2]))


def test_temporal_reuse_and_reset(frame, constant_net):
    image, alpha, confidence = frame
    ref = refiner(constant_net(0.3), tau=0.5, temporal=True)
    fresh = refiner(constant_net(0.3), tau=0.5)
    first = ref(image, alpha, confidence)
    # Same plate, another coarse alpha: every pixel is unchanged and keeps the first result.
    second = ref(image, alpha * 0.5, confidence)
    np.testing.assert_array_equal(second, first)
    assert (
        ref.last_stats.levels == [(1.0, 0)]
        and ref.last_stats.reused == image.shape[0] * image.shape[1]
    )
    # A changed block is refined again; far from it the previous result stays.
    moved = image.copy()
    moved[12:22, 30:44] = 1.0 - moved[12:22, 30:44]
    third = ref(moved, alpha * 0.5, confidence)
    expected = fresh(moved, alpha * 0.5, confidence)
    block = np.zeros(image.shape[:2], bool)
    block[12:22, 30:44] = True
    far = cv2.dilate(block.astype(np.uint8), np.ones((19, 19), np.uint8)) == 0
    np.testing.assert_array_equal(third[block], expected[block])
    np.testing.assert_array_equal(third[far], first[far])
    assert 0 < ref.last_stats.active < fresh.last_stats.active
    assert not np.array_equal(third[far], expected[far])  # reuse made a difference
    ref.reset()
    np.testing.assert_array_equal(ref(moved, alpha * 0.5, confidence), expected)
    # Another frame size starts again instead of failing.
    small = ref(image[:30, :45], alpha[:10, :15], confidence[:10, :15])
    assert small.shape == (30, 45) and ref.last_stats.reused == 0


def test_budget_cascade_bounds_every_pass(frame, make_net):
    image, alpha, confidence = frame
    selected = (1.0 - up(confidence, image.shape[:2])) > 0.5
    net = make_net(seed=2)
    ref = refiner(net, tau=0.5, max_active=60)
    out = ref(image, alpha, confidence)
    scales = [s for s, _ in ref.last_stats.levels]
    assert scales == [0.25, 0.5, 1.0]
    assert all(0 < n <= 60 for _, n in ref.last_stats.levels)
    assert np.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    base = up(alpha, image.shape[:2])
    np.testing.assert_array_equal(out[~selected], base[~selected])
    assert not np.array_equal(out[selected], base[selected])
    # Within the budget: one full-resolution pass, the same as an unbounded refiner.
    roomy = refiner(net, tau=0.5, max_active=int(selected.sum()))
    np.testing.assert_array_equal(
        roomy(image, alpha, confidence), refiner(net, tau=0.5)(image, alpha, confidence)
    )
    assert roomy.last_stats.levels == [(1.0, int(selected.sum()))]


@pytest.mark.parametrize(
    "size, working",
    [((37, 53), (37, 53)), ((37, 53), (13, 19)), ((1, 1), (1, 1)), ((9, 1), (9, 1))],
)
def test_odd_sizes(size, working, make_net):
    rng = np.random.default_rng(3)
    image = rng.random((*size, 3), dtype=np.float32)
    alpha = rng.random(working, dtype=np.float32)
    confidence = rng.random(working, dtype=np.float32)
    ref = refiner(make_net(seed=3), tau=0.3)
    out = ref(image, alpha, confidence)
    assert out.shape == size and np.isfinite(out).all()
    np.testing.assert_array_equal(out, ref(image, alpha, confidence))  # deterministic


def test_synthetic_frame_refines_only_the_uncertain_band(make_net):
    spec = ShotSpec(width=160, height=96, frames=1, seed=4, supersample=2)
    synth = render_frame(spec, 0)
    image = np.clip(synth.image, 0.0, 1.0)
    small = cv2.resize(synth.alpha, (80, 48), interpolation=cv2.INTER_AREA)
    error = np.abs(up(small, (96, 160)) - synth.alpha)
    confidence = 1.0 - cv2.resize(error, (80, 48), interpolation=cv2.INTER_AREA)
    ref = refiner(make_net(seed=4), tau=0.02)
    out = ref(image, small, confidence)
    stats = ref.last_stats
    assert 0 < stats.active_fraction < 0.5
    changed = out != up(small, (96, 160))
    assert changed.sum() <= stats.active and changed.any()


def test_checkpoint_round_trip(tmp_path, frame, make_net):
    image, alpha, confidence = frame
    net = make_net(seed=5)
    path = tmp_path / "refine.safetensors"
    save_checkpoint(path, "refine", net.arch, net.state_dict())
    loaded = SparseRefiner(SparseRefineConfig(weights=str(path), tau=0.5, device="cpu"))
    assert loaded.net.arch == net.arch
    np.testing.assert_array_equal(
        loaded(image, alpha, confidence), refiner(net, tau=0.5)(image, alpha, confidence)
    )
    with pytest.raises(WeightsError, match="not found"):
        SparseRefiner(SparseRefineConfig(weights=str(tmp_path / "missing.safetensors")))


def test_config_errors(monkeypatch):
    # No weights given and no starter weights found (shipped_weights finds none).
    monkeypatch.setattr("vfxmatte.weights.shipped_weights", lambda kind: "")
    with pytest.raises(ConfigError, match="refine.sparse.weights.*refine.safetensors"):
        SparseRefiner(SparseRefineConfig())
    with pytest.raises(ConfigError, match="Did you mean 'spconv'"):
        SparseRefineConfig(impl="spcov")
    with pytest.raises(ConfigError, match=r"refine.sparse.tau' got 1.5"):
        SparseRefineConfig(tau=1.5)


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda i, a, c: ((i * 255).astype(np.uint8), a, c), "image must be float"),
        (lambda i, a, c: (i[..., :2], a, c), r"H x W x 3 \(RGB\), got shape \(45, 67, 2\)"),
        (lambda i, a, c: (torch.from_numpy(i), a, c), "numpy array"),
        (
            lambda i, a, c: (i, np.where(a > 0.3, np.nan, a).astype(np.float32), c),
            "alpha contains NaN",
        ),
        (lambda i, a, c: (i, a, c[:-1]), "confidence is 23x14 but alpha is 23x15"),
        (
            lambda i, a, c: (i, np.zeros((50, 70), np.float32), np.zeros((50, 70), np.float32)),
            "smaller working resolution",
        ),
        (lambda i, a, c: (i, a[:, :10], c[:, :10]), "same aspect ratio"),
        (lambda i, a, c: (i, a[None], c), "alpha must be h x w"),
        (lambda i, a, c: (i, a, None), "needs a confidence map"),
    ],
)
def test_input_errors(frame, change, message, make_net):
    with pytest.raises(InputError, match=message):
        refiner(make_net(), tau=0.5)(*change(*frame))


def test_feature_errors(frame, make_net):
    with pytest.raises(InputError, match="expects 3 feature channels; pass"):
        refiner(make_net(feature_channels=3), tau=0.5)(*frame)
    with pytest.raises(InputError, match="expects 3 feature channels, got 2"):
        refiner(make_net(feature_channels=3), tau=0.5)(*frame, torch.zeros(1, 2, 4, 4))
    with pytest.raises(InputError, match="expects 0 feature channels, got 2"):
        refiner(make_net(), tau=0.5)(*frame, torch.zeros(1, 2, 4, 4))
    with pytest.raises(InputError, match="finite"):
        refiner(make_net(feature_channels=1), tau=0.5)(
            *frame, torch.full((1, 1, 4, 4), float("nan"))
        )


def test_registry_and_no_refine(frame):
    image, alpha, confidence = frame
    assert REFINE_BACKENDS.names() == ("none", "sparse")
    assert REFINE_BACKENDS.load("sparse") is SparseRefiner
    cls = REFINE_BACKENDS.load("none")
    assert cls is NoRefine
    with pytest.raises(ConfigError, match="Did you mean 'sparse'"):
        REFINE_BACKENDS.load("spars")
    none = cls(None)
    full = up(alpha, image.shape[:2])
    np.testing.assert_array_equal(none(image, alpha, confidence), full)
    np.testing.assert_array_equal(none(image, full, None), full)  # identity at full size
    none.reset()
    with pytest.raises(InputError, match="image must be float"):
        none(image.astype(np.float16).view(np.uint16), alpha, confidence)


def test_a_few_training_steps_reduce_the_error_at_the_active_pixels(make_net):
    # End-to-end gradient flow: the sparse path is trainable on a synthetic frame.
    from vfxmatte.refine.sparse_conv import ActiveSet
    from vfxmatte.refine.sparse_net import sparse_inputs

    synth = render_frame(ShotSpec(width=160, height=96, frames=1, seed=5, supersample=2), 0)
    gt = torch.from_numpy(synth.alpha)
    small = cv2.resize(synth.alpha, (40, 24), interpolation=cv2.INTER_AREA)
    coarse = torch.from_numpy(up(small, (96, 160)))
    error = (coarse - gt).abs()
    active = ActiveSet.from_mask(error > 0.02)
    image = torch.from_numpy(np.clip(synth.image, 0.0, 1.0))
    inputs = sparse_inputs(image, coarse, error, active)
    target = active.gather(gt)
    net = make_net(width=8, blocks=1, seed=6)
    optimiser = torch.optim.Adam(net.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = (net(inputs, active) - target).abs().mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert len(active) > 100 and losses[-1] < 0.8 * losses[0]


def test_missing_spconv_names_the_install(monkeypatch, make_net):
    from vfxmatte.errors import BackendUnavailableError

    monkeypatch.setitem(sys.modules, "spconv", None)
    monkeypatch.setitem(sys.modules, "spconv.pytorch", None)
    with pytest.raises(
        BackendUnavailableError, match="pip install spconv-cu121.*pip install spconv"
    ):
        refiner(make_net(), impl="spconv")
