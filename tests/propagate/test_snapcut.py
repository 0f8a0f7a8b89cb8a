"""Tests of the ``snapcut`` propagation backend and its parts (motion, colour, edges, drift).

The accuracy shot is the one of ``test_flow.py`` (a textured ellipse sliding
over a static textured background) plus a harder one from :mod:`vfxmatte.synth`:
a furry object with a veil over a real photograph, moving 2% of the frame width
and turning 3 degrees per frame. Bounds leave room below what was measured
(noted at each test).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.propagate.colour_models import GlobalColourModel, local_models, quantise
from vfxmatte.propagate.drift import DriftReport, DriftSample, frame_confidence
from vfxmatte.propagate.edges import guided_filter
from vfxmatte.propagate.flow import FlowPropagator
from vfxmatte.propagate.motion import consistency, object_motion, warp_affine
from vfxmatte.propagate.snapcut import SnapCutPropagateConfig, SnapCutPropagator

from .test_flow import _noise, iou, make_shot


def _run(prop, frames, key_mask):
    out = [prop.reset(frames[0], key_mask)]
    out += [prop.step(f) for f in frames[1:]]
    return out


@pytest.fixture(scope="module")
def shot():
    return make_shot()


def test_follows_the_sliding_object(shot):
    frames, masks = shot
    out = _run(SnapCutPropagator(), frames, masks[0])
    scores = [iou(m, t) for m, t in zip(out, masks, strict=True)]
    assert min(scores) >= 0.9, scores  # measured 0.95


def test_small_plates_are_worked_on_enlarged():
    """A 64x48 plate is worked on at 4x (windows, kernels and flow are sized for tens of
    working pixels); a disc of radius 7 px is followed and the masks are the plate's size."""
    rng = np.random.default_rng(4)
    h, w = 48, 64
    bg = (0.1 + 0.5 * _noise(rng, h, w, 1.0))[..., None] * np.float32([0.7, 0.85, 1.0])
    tex = (0.45 + 0.5 * _noise(rng, h, w, 0.7))[..., None] * np.float32([1.0, 0.9, 0.7])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frames, masks = [], []
    for t in range(10):
        cx, cy = 16 + 2.0 * t, 20 + 0.5 * t
        inside = (xs - cx) ** 2 + (ys - cy) ** 2 <= 7.0**2
        obj = cv2.remap(tex, xs - cx + w / 2, ys - cy + h / 2, cv2.INTER_LINEAR)
        frames.append(np.where(inside[..., None], obj, bg).astype(np.float32))
        masks.append(inside.astype(np.float32))
    prop = SnapCutPropagator()
    out = _run(prop, frames, masks[0])
    assert prop._work == (256, 192)
    assert all(m.shape == (h, w) for m in out)
    scores = [iou(m, t) for m, t in zip(out, masks, strict=True)]
    assert min(scores) >= 0.9, scores  # measured 0.99


def test_trailing_edge_leaves_the_mask(shot):
    """Background the object uncovers (inside the first mask, outside the last) is not kept."""
    frames, masks = shot
    out = _run(SnapCutPropagator(), frames, masks[0])
    uncovered = (masks[0] >= 0.5) & (masks[-1] < 0.5)
    assert uncovered.sum() > 200
    assert (out[-1][uncovered] >= 0.5).mean() < 0.05


@pytest.fixture(scope="module")
def photo_shot():
    pytest.importorskip("skimage")
    from vfxmatte.synth import ShotSpec

    spec = ShotSpec(
        width=480, height=270, frames=16, background="photo", textures="photo",
        speed=9.6, turn=3.0, seed=12,
    )  # fmt: skip
    return display_frames(spec)


def test_holds_on_a_turning_object_over_a_photograph_better_than_flow(photo_shot):
    frames, masks = photo_shot
    snap = _run(SnapCutPropagator(), frames, masks[0])
    flow = _run(FlowPropagator(), frames, masks[0])
    snap_iou = [iou(m, t) for m, t in zip(snap, masks, strict=True)]
    flow_iou = [iou(m, t) for m, t in zip(flow, masks, strict=True)]
    assert min(snap_iou) >= 0.8, snap_iou
    assert snap_iou[-1] > flow_iou[-1] + 0.05, (snap_iou, flow_iou)


def test_colour_drop_tells_a_changed_background_from_a_mask_gone_wrong():
    """The colour sign of the drift report, on posteriors made by hand: a background
    that looks more like the object (both rings alike) is not a sign; a mask slid onto
    background, or an object leaking out of its mask, is."""
    from vfxmatte.propagate.snapcut_object import ObjectTracker

    mask = np.zeros((100, 100), np.float32)
    mask[30:70, 30:70] = 1.0
    key = np.where(mask > 0, 0.9, 0.1).astype(np.float32)
    tracker = ObjectTracker(SnapCutPropagateConfig())
    tracker._key_rings = tracker._separation(key, mask)
    binary = mask > 0
    assert tracker._colour_drop(key, binary) == 0.0
    alike = np.where(mask > 0, 0.9, 0.6).astype(np.float32)  # background turned object-like
    assert tracker._colour_drop(alike, binary) < 0.05
    slid = key.copy()
    slid[30:70, 30:50] = 0.1  # half the mask on background
    assert tracker._colour_drop(slid, binary) > 0.4
    leak = key.copy()
    leak[25:75, 25:75] = np.maximum(leak[25:75, 25:75], 0.9)  # the object is larger
    assert tracker._colour_drop(leak, binary) > 0.4


def _two_keys(shot, blend: bool):
    """The sliding shot with a second keyframe at the end that is 5 px larger all round."""
    from vfxmatte.propagate.snapcut import propagate_sequence

    frames, masks = shot
    last = len(frames) - 1
    larger = cv2.dilate(masks[last], np.ones((11, 11), np.uint8))
    keys = {0: masks[0], last: larger}
    config = SnapCutPropagateConfig(blend_keys=blend)
    out = dict(propagate_sequence(lambda i: frames[i], list(range(len(frames))), keys, config))
    return [out[i] for i in range(len(frames))], masks, larger


def test_two_keyframes_are_cross_faded_not_switched(shot):
    """Between two keyframes the propagation from the first is blended with one run back
    from the second: the frames grow towards the larger second keyframe step by step
    (without blending they keep the first's size until the switch)."""
    switched, masks, larger = _two_keys(shot, blend=False)
    blended, _, _ = _two_keys(shot, blend=True)
    last = len(masks) - 1
    assert (blended[last] == switched[last]).all()  # the keyframe itself
    excess = [
        float((b >= 0.5).sum() - (t >= 0.5).sum()) for b, t in zip(blended, masks, strict=True)
    ]
    plain = [
        float((b >= 0.5).sum() - (t >= 0.5).sum()) for b, t in zip(switched, masks, strict=True)
    ]
    target = float(larger.sum() - masks[last].sum())
    assert excess[last - 1] > 0.6 * target, excess  # next to the second keyframe: like it
    assert abs(plain[last - 1]) < 0.2 * target, plain  # without blending: like the first
    middle = excess[1 : last - 1]
    assert all(b >= a - 0.05 * target for a, b in zip(middle[:-1], middle[1:], strict=True))
    assert iou(blended[1], masks[1]) >= 0.9  # next to the first keyframe: like it


def test_drift_sample_after_each_frame(shot):
    frames, masks = shot
    prop = SnapCutPropagator()
    prop.reset(frames[0], masks[0])
    assert prop.drift.keyframe and prop.drift.confidence == 1.0
    prop.step(frames[1])
    assert 0.0 <= prop.drift.confidence <= 1.0 and not prop.drift.keyframe
    assert prop.drift.confidence > 0.5  # an easy frame is reliable


def test_matte_feed_moves_the_state(shot):
    frames, masks = shot
    prop = SnapCutPropagator(SnapCutPropagateConfig(feed="matte"))
    prop.reset(frames[0], masks[0])
    prop.step(frames[1])
    prop.correct(np.zeros_like(masks[0]))  # the engine says: nothing there
    assert prop._soft.max() < 1.0
    prop_mask = SnapCutPropagator()
    prop_mask.reset(frames[0], masks[0])
    prop_mask.step(frames[1])
    before = prop_mask._soft.copy()
    prop_mask.correct(np.zeros_like(masks[0]))
    np.testing.assert_array_equal(prop_mask._soft, before)


def test_fork_is_independent(shot):
    frames, masks = shot
    prop = SnapCutPropagator()
    prop.reset(frames[0], masks[0])
    other = prop.fork()
    a = prop.step(frames[1])
    b = other.step(frames[1])
    np.testing.assert_array_equal(a, b)


def test_errors(shot):
    frames, masks = shot
    prop = SnapCutPropagator()
    with pytest.raises(RuntimeError):
        prop.step(frames[0])
    with pytest.raises(InputError, match="empty"):
        prop.reset(frames[0], np.zeros_like(masks[0]))
    prop.reset(frames[0], masks[0])
    with pytest.raises(InputError, match="size changed"):
        prop.step(frames[1][:-2])
    bad = frames[1].copy()
    bad[5, 5] = np.nan
    with pytest.raises(InputError, match="NaN"):
        prop.step(bad)
    with pytest.raises(ConfigError):
        SnapCutPropagateConfig(threshold=2.0)


# -- parts -------------------------------------------------------------------------------


def test_consistency_closes_for_opposite_flows_only():
    f = np.zeros((20, 30, 2), np.float32)
    f[..., 0] = 2.0
    assert consistency(f, -f, 1.0)[5:15, 5:25].min() > 0.99
    assert consistency(f, f, 1.0)[5:15, 5:25].max() < 0.01


def test_object_motion_recovers_a_rotation_and_shift():
    rng = np.random.default_rng(0)
    h, w = 120, 160
    mask = np.zeros((h, w), np.float32)
    mask[30:90, 40:120] = 1.0
    angle, tx, ty = np.radians(3.0), 4.0, -2.0
    true = np.float64([[np.cos(angle), -np.sin(angle), tx], [np.sin(angle), np.cos(angle), ty]])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    fwd = np.stack(
        [true[0, 0] * xs + true[0, 1] * ys + tx - xs, true[1, 0] * xs + true[1, 1] * ys + ty - ys],
        axis=-1,
    ).astype(np.float32)
    model, inliers = object_motion(mask, fwd, np.ones((h, w), np.float32), None, rng)
    assert inliers > 100
    np.testing.assert_allclose(model, true, atol=1e-3)
    # too little in view: the previous motion goes on (without its zoom)
    kept, n = object_motion(mask, fwd, np.ones((h, w), np.float32), true, rng, reliable=False)
    assert n == 0
    np.testing.assert_allclose(kept, true, atol=1e-9)
    moved = warp_affine(mask, np.float64([[1, 0, 5], [0, 1, 0]]))
    assert moved[50, 42] == 0.0 and moved[50, 122] == 1.0


def test_global_colour_model_separates_and_keyframes_anchor():
    rng = np.random.default_rng(1)
    image = np.zeros((60, 80, 3), np.float32)
    image[...] = (0.1, 0.2, 0.8)  # blue background
    image[20:40, 30:50] = (0.9, 0.3, 0.1)  # orange object
    image += rng.normal(0, 0.01, image.shape).astype(np.float32)
    mask = np.zeros((60, 80), np.float32)
    mask[20:40, 30:50] = 1.0
    cells = quantise(np.clip(image, 0, 1), 16)
    model = GlobalColourModel(16)
    model.learn(cells, mask, keyframe=True, rate=1.0)
    post = model.posterior(cells)
    assert post[30, 40] > 0.9 and post[5, 5] < 0.1
    # a (wrong) confident frame calling everything object cannot flip the keyframe's view
    model.learn(cells, np.ones_like(mask), keyframe=False, rate=1.0)
    assert model.posterior(cells)[5, 5] < 0.5


def test_local_windows_cover_the_band_and_learn_from_the_previous_frame():
    image = np.full((64, 64, 3), 0.2, np.float32)
    image[:, 32:] = 0.8
    cells = quantise(image, 8)
    mask = np.zeros((64, 64), np.float32)
    mask[:, 32:] = 1.0
    band = np.zeros((64, 64), bool)
    band[:, 24:40] = True
    local = local_models(cells, cells, mask, band, np.float64([[1, 0, 0], [0, 1, 0]]), 16, 8)
    assert local.weight[:, 28:36].min() > 0.5  # one-sided windows (all object) add nothing
    assert local.posterior[10, 34] > 0.9 and local.posterior[10, 28] < 0.1
    assert local.confidence[10, 30] > 0.9
    assert local.weight[:, :8].max() == 0.0


def test_guided_filter_keeps_an_edge_of_the_guide():
    guide = np.zeros((40, 40), np.float32)
    guide[:, 20:] = 1.0
    noisy = guide + np.random.default_rng(2).normal(0, 0.2, guide.shape).astype(np.float32)
    out = guided_filter(guide, np.clip(noisy, 0, 1), 4, 1e-3)
    assert (out[:, 22:] > 0.5).all() and (out[:, :18] < 0.5).all()


def test_drift_report_runs_and_sentences():
    report = DriftReport()
    for n in range(1001, 1013):
        bad = 1004 <= n <= 1008 or n == 1011
        report.add(n, DriftSample(confidence=0.2 if bad else 0.9))
    assert report.unreliable() == [(1004, 1008, 1006), (1011, 1011, 1011)]
    assert report.sentences() == [
        "frames 1004-1008 look unreliable: add a keyframe near 1006",
        "frame 1011 looks unreliable: add a keyframe near 1011",
    ]
    report.add(1001, DriftSample(confidence=0.1))  # the lower of two samples is kept
    assert report.confidence()[1001] == 0.1
    assert report.to_dict()["unreliable"][0] == [1001, 1001, 1001]
    assert frame_confidence(0, 0, 0) == 1.0
    assert frame_confidence(0.5, 0, 0) < frame_confidence(0.1, 0, 0)
    assert "reliable" in DriftReport({1: DriftSample(0.9)}).summary()


def display_frames(spec):
    """The display-referred frames of a synthetic shot and its masks (truth alpha > 0.5)."""
    from vfxmatte.io.colour import to_display
    from vfxmatte.synth import render_frame

    rendered = [render_frame(spec, i) for i in range(spec.frames)]
    frames = [np.clip(to_display(f.image), 0, 1).astype(np.float32) for f in rendered]
    return frames, [(f.alpha > 0.5).astype(np.float32) for f in rendered]
