"""Tests of the ``flow`` propagation backend and of the mask cleanup helpers.

The shot is synthetic with exact ground truth: a textured ellipse slides over a
static textured background by (2.5, 1.0) px per frame for 24 frames, its
texture moving with it. Measured on this shot (opencv 5.0, DIS medium, flow at
full resolution): IoU with the true mask >= 0.969 on every frame from keyframe
0, >= 0.977 from keyframe 12 both ways; Farnebäck >= 0.91 from keyframe 12;
flow at half resolution on a 192×256 version >= 0.95. The asserted bounds
below leave room for other OpenCV builds.
"""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from vfxmatte.config import param_specs
from vfxmatte.errors import ConfigError, InputError
from vfxmatte.propagate.cleanup import area_in_pixels, clean_mask, fill_holes, remove_islands
from vfxmatte.propagate.flow import FlowPropagateConfig, FlowPropagator, propagate_sequence

N_FRAMES = 24


def _noise(rng: np.random.Generator, h: int, w: int, sigma: float) -> np.ndarray:
    """Smooth noise, ``h×w`` float32 stretched to [0, 1]."""
    n = cv2.GaussianBlur(rng.random((h, w)).astype(np.float32), (0, 0), sigma)
    return (n - n.min()) / (n.max() - n.min())


def make_shot(
    h: int = 96, w: int = 128, scale: float = 1.0, seed: int = 0
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Frames (``h×w×3`` float32 in [0, 1]) and true masks (``h×w`` float32 0/1).

    ``scale`` enlarges the object, its path and its texture together, so that a
    shot at ``scale=2`` seen at half resolution looks like the ``scale=1`` shot.
    """
    rng = np.random.default_rng(seed)
    bg = (0.1 + 0.5 * _noise(rng, h, w, 2.0 * scale))[..., None] * np.float32([0.7, 0.85, 1.0])
    tex = (0.45 + 0.5 * _noise(rng, h, w, 1.5 * scale))[..., None] * np.float32([1.0, 0.9, 0.7])
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    a, b = 18.0 * scale, 13.0 * scale
    frames, masks = [], []
    for t in range(N_FRAMES):
        cx, cy = (30.0 + 2.5 * t) * scale, (28.0 + 1.0 * t) * scale
        inside = ((xs - cx) / a) ** 2 + ((ys - cy) / b) ** 2 <= 1.0
        # The texture is pinned to the object: sample it in object coordinates.
        obj = cv2.remap(tex, xs - cx + w / 2, ys - cy + h / 2, cv2.INTER_LINEAR)
        frames.append(np.where(inside[..., None], obj, bg).astype(np.float32))
        masks.append(inside.astype(np.float32))
    return frames, masks


def iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two masks thresholded at 0.5 (1.0 when both are empty)."""
    a, b = a >= 0.5, b >= 0.5
    union = np.count_nonzero(a | b)
    return 1.0 if union == 0 else np.count_nonzero(a & b) / union


def run(
    frames: list[np.ndarray],
    keys: dict[int, np.ndarray],
    config: FlowPropagateConfig | None = None,
    **kwargs,
) -> list[tuple[int, np.ndarray]]:
    return list(propagate_sequence(lambda i: frames[i], range(len(frames)), keys, config, **kwargs))


@pytest.fixture(scope="module")
def shot() -> tuple[list[np.ndarray], list[np.ndarray]]:
    return make_shot()


# -- accuracy ---------------------------------------------------------------------------


def test_forward_from_first_frame_follows_the_object(shot):
    frames, masks = shot
    out = run(frames, {0: masks[0]})
    assert [i for i, _ in out] == list(range(N_FRAMES))
    ious = [iou(m, masks[i]) for i, m in out]
    assert min(ious) > 0.9, np.round(ious, 3)
    for _, m in out:
        assert m.dtype == np.float32 and m.shape == (96, 128)
        assert set(np.unique(m)) <= {0.0, 1.0}


def test_middle_keyframe_goes_forward_then_backward(shot):
    frames, masks = shot
    out = run(frames, {12: masks[12]})
    assert [i for i, _ in out] == [12, *range(13, 24), *range(11, -1, -1)]
    ious = [iou(m, masks[i]) for i, m in out]
    assert min(ious) > 0.9, np.round(ious, 3)


def test_frames_are_read_lazily_and_once(shot):
    frames, masks = shot
    reads: list[int] = []

    def get_frame(i: int) -> np.ndarray:
        reads.append(i)
        return frames[i]

    gen = propagate_sequence(get_frame, range(N_FRAMES), {12: masks[12]})
    first = next(gen)
    assert first[0] == 12 and reads == [12]
    rest = [i for i, _ in gen]
    assert reads == [12, *rest]
    assert sorted(reads) == list(range(N_FRAMES))


def test_flow_at_reduced_working_resolution():
    # 192×256 plate, flow at 128×96: the flow is upsampled before the full-res warp.
    frames, masks = make_shot(192, 256, scale=2.0)
    out = run(frames, {12: masks[12]}, FlowPropagateConfig(work_long_side=128))
    ious = [iou(m, masks[i]) for i, m in out]
    assert min(ious) > 0.9, np.round(ious, 3)


def test_farneback_method(shot):
    frames, masks = shot
    out = run(frames, {12: masks[12]}, FlowPropagateConfig(method="farneback"))
    ious = [iou(m, masks[i]) for i, m in out]
    assert min(ious) > 0.85 and np.mean(ious) > 0.9, np.round(ious, 3)


@pytest.mark.parametrize("method", ["dis", "farneback"])
def test_deterministic(shot, method):
    frames, masks = shot
    config = FlowPropagateConfig(method=method)
    first = run(frames, {12: masks[12]}, config)
    second = run(frames, {12: masks[12]}, config)
    for (i, a), (j, b) in zip(first, second, strict=True):
        assert i == j and np.array_equal(a, b)


def test_working_box_gives_the_same_masks_as_the_whole_frame(shot, monkeypatch):
    # Full-res work is confined to the state's box grown by the largest flow;
    # warping the whole frame instead must give the same masks.
    frames, masks = shot
    boxed = run(frames, {0: masks[0]})
    monkeypatch.setattr(FlowPropagator, "_reach", lambda self, flow: (0, 96, 0, 128))
    whole = run(frames, {0: masks[0]})
    for (_, a), (_, b) in zip(boxed, whole, strict=True):
        assert np.count_nonzero(a != b) <= 3


# -- keyframes and feedback ---------------------------------------------------------------


def test_later_keyframe_reanchors(shot):
    frames, masks = shot
    wrong_start = np.roll(masks[0], 6, axis=1)  # a keyframe 6 px off
    single = run(frames, {0: wrong_start})
    both = run(frames, {0: wrong_start, 18: masks[18]})
    for (i, a), (_, b) in zip(single, both, strict=True):
        if i < 18:
            assert np.array_equal(a, b), i  # nothing before the second keyframe changes
    assert iou(both[17][1], masks[17]) < 0.85  # the wrong start is still visible
    assert min(iou(m, masks[i]) for i, m in both[18:]) > 0.9


def test_later_keyframe_on_the_static_background(shot):
    frames, masks = shot
    ys, xs = np.mgrid[0:96, 0:128]
    disk = ((xs - 105) ** 2 + (ys - 15) ** 2 <= 8**2).astype(np.float32)  # off the object's path
    out = dict(run(frames, {0: masks[0], 18: disk}))
    for i in range(18, N_FRAMES):
        assert iou(out[i], disk) > 0.9, i


def test_empty_later_keyframe_means_out_of_view(shot, caplog):
    frames, masks = shot
    with caplog.at_level(logging.WARNING, logger="vfxmatte.propagate.flow"):
        out = dict(run(frames, {0: masks[0], 10: np.zeros_like(masks[0])}))
    assert all(not out[i].any() for i in range(10, N_FRAMES))
    assert out[9].any()
    assert not caplog.records  # deliberate, so no "mask lost" warning


def test_matte_feedback_replaces_the_state(shot):
    frames, masks = shot
    wrong_start = np.roll(masks[0], 6, axis=1)
    calls: list[int] = []

    def matte_of(i: int) -> np.ndarray:
        calls.append(i)
        return masks[i]  # a perfect engine

    fed = run(frames, {12: wrong_start}, FlowPropagateConfig(feed="matte"), matte_of=matte_of)
    assert calls == [i for i, _ in fed]
    assert min(iou(m, masks[i]) for i, m in fed[1:]) > 0.9

    calls.clear()
    unfed = run(frames, {12: wrong_start}, FlowPropagateConfig(feed="mask"), matte_of=matte_of)
    assert calls == []  # feed == "mask": the engine is not asked
    assert iou(unfed[1][1], masks[13]) < 0.85


def test_correct_is_ignored_when_feeding_masks(shot):
    frames, masks = shot
    plain = FlowPropagator(FlowPropagateConfig(feed="mask"))
    plain.reset(frames[0], masks[0])
    plain.correct(np.zeros_like(masks[0]))
    assert plain.step(frames[1]).any()

    fed = FlowPropagator(FlowPropagateConfig(feed="matte"))
    fed.reset(frames[0], masks[0])
    fed.correct(np.zeros_like(masks[0]))
    assert not fed.step(frames[1]).any()


def test_lost_mask_warns_once(shot, caplog):
    frames, masks = shot

    def matte_of(i: int) -> np.ndarray:
        return masks[i] if i < 5 else np.zeros_like(masks[i])

    with caplog.at_level(logging.WARNING, logger="vfxmatte.propagate.flow"):
        out = run(frames, {0: masks[0]}, FlowPropagateConfig(feed="matte"), matte_of=matte_of)
    assert not out[6][1].any() and out[5][1].any()
    assert len(caplog.records) == 1
    assert "empty from frame 6" in caplog.records[0].getMessage()


def test_keep_soft_thresholds_to_the_binary_masks(shot):
    frames, masks = shot
    binary = run(frames, {0: masks[0]})
    soft = run(frames, {0: masks[0]}, FlowPropagateConfig(keep_soft=True))
    between = 0
    for (_, b), (_, s) in zip(binary, soft, strict=True):
        assert s.min() >= 0.0 and s.max() <= 1.0
        assert np.array_equal(s >= 0.5, b >= 0.5)
        between += np.count_nonzero((s > 0) & (s < 1))
    assert between > 0


def test_single_propagator_runs_backwards(shot):
    frames, masks = shot
    prop = FlowPropagator()
    key = prop.reset(frames[23], masks[23])
    assert iou(key, masks[23]) == 1.0
    for t in range(22, -1, -1):
        assert iou(prop.step(frames[t]), masks[t]) > 0.9, t


# -- cleanup ----------------------------------------------------------------------------------


def _blob_with_defects() -> np.ndarray:
    mask = np.zeros((64, 80), bool)
    mask[10:50, 10:60] = True
    mask[20:23, 20:23] = False  # tiny hole, 9 px
    mask[30:40, 40:52] = False  # large hole, 120 px
    mask[55:57, 70:72] = True  # tiny island, 4 px
    mask[0:6, 30:50] = True  # island of 120 px
    mask[45:50, 30:35] = False  # notch open to the outside
    return mask


def test_fill_holes_fills_only_small_enclosed_holes():
    mask = _blob_with_defects()
    out = fill_holes(mask, 20)
    assert out[20:23, 20:23].all()
    assert not out[30:40, 40:52].any()
    assert not out[45:50, 30:35].any()  # touches the background: no hole
    assert np.array_equal(out & ~mask, np.pad(np.ones((3, 3), bool), [(20, 41), (20, 57)]))


def test_fill_holes_ignores_background_touching_the_border():
    mask = np.zeros((20, 20), bool)
    mask[5:15, 0:10] = True
    mask[8:10, 0:3] = False  # opens on the left border
    assert np.array_equal(fill_holes(mask, 100), mask)


def test_remove_islands_keeps_large_ones_and_the_largest():
    mask = _blob_with_defects()
    out = remove_islands(mask, 20)
    assert not out[55:57, 70:72].any()
    assert out[0:6, 30:50].all()
    tiny = np.zeros((10, 10), bool)
    tiny[2:4, 2:4] = True
    tiny[7, 7] = True
    kept = remove_islands(tiny, 50)
    assert kept[2:4, 2:4].all() and not kept[7, 7]


def test_clean_mask_area_as_fraction_of_the_object():
    mask = _blob_with_defects()
    area = np.count_nonzero(mask)
    assert area_in_pixels(0.01, area) == pytest.approx(0.01 * area)
    assert area_in_pixels(20, area) == 20.0
    assert area_in_pixels(0, area) == 0.0
    out = clean_mask(mask, 0.01, 0.01)  # 1% of 1970 px: about 20 px
    assert out[20:23, 20:23].all() and not out[55:57, 70:72].any()
    assert not out[30:40, 40:52].any() and out[0:6, 30:50].all()
    assert np.array_equal(clean_mask(mask, 0, 0), mask)


def test_propagation_fills_a_hole_in_the_keyframe(shot):
    frames, masks = shot
    key = masks[0].copy()
    key[27:29, 29:32] = 0  # a 6 px pinhole; 1% of the 721 px left is 7.2 px
    out = FlowPropagator().reset(frames[0], key)
    assert np.array_equal(out, masks[0])


# -- errors and configuration -----------------------------------------------------------------


def test_mask_size_mismatch_names_both_shapes(shot):
    frames, masks = shot
    with pytest.raises(InputError) as err:
        FlowPropagator().reset(frames[0], np.ones((48, 64), np.float32))
    text = str(err.value)
    assert "(48, 64)" in text and "(96, 128)" in text and "--mask-resize" in text


def test_empty_first_keyframe_is_refused(shot):
    frames, masks = shot
    with pytest.raises(InputError, match="keyframe mask of frame 3 is empty"):
        run(frames, {3: np.full_like(masks[0], 0.2)})


def test_nan_is_refused(shot):
    frames, masks = shot
    bad = frames[1].copy()
    bad[40, 50, 1] = np.nan
    prop = FlowPropagator()
    with pytest.raises(InputError, match="keyframe image.*NaN"):
        prop.reset(bad, masks[1])
    prop.reset(frames[0], masks[0])
    with pytest.raises(InputError, match="frame contains NaN"):
        prop.step(bad)
    with pytest.raises(InputError, match="frame 1001 contains NaN"):
        prop.step(bad, index=1001)
    nan_mask = masks[0].copy()
    nan_mask[3, 3] = np.nan
    with pytest.raises(InputError, match="mask contains NaN"):
        prop.reset(frames[0], nan_mask)


@pytest.mark.parametrize(
    ("image", "mask", "match"),
    [
        ("uint8", None, r"must be float32 in \[0, 1\], got uint8"),
        ("planar", None, r"must be H×W×3 RGB, got shape \(3, 96, 128\)"),
        (None, "255", r"values in \[0, 255\]; expected \[0, 1\]"),
        (None, "rgb", r"single-channel H×W array, got shape \(96, 128, 3\)"),
    ],
)
def test_malformed_inputs(shot, image, mask, match):
    frames, masks = shot
    img, msk = frames[0], masks[0]
    if image == "uint8":
        img = (img * 255).astype(np.uint8)
    elif image == "planar":
        img = np.moveaxis(img, -1, 0)
    if mask == "255":
        msk = msk * 255
    elif mask == "rgb":
        msk = np.repeat(msk[..., None], 3, axis=2)
    with pytest.raises(InputError, match=match):
        FlowPropagator().reset(img, msk)


def test_frame_size_change_is_refused(shot):
    frames, masks = shot
    prop = FlowPropagator()
    prop.reset(frames[0], masks[0])
    with pytest.raises(InputError, match="Frame size changed"):
        prop.step(frames[1][:, :100])


def test_step_before_reset():
    with pytest.raises(RuntimeError, match="before reset"):
        FlowPropagator().step(np.zeros((8, 8, 3), np.float32))


@pytest.mark.parametrize(
    ("indices", "keys", "match"),
    [
        (range(24), {}, "No keyframe mask"),
        (range(24), {30: None}, r"Keyframe\(s\) \[30\] are not among the frames .*0-23, 24 frames"),
        ([0, 1, 1, 2], {0: None}, r"repeat in the shot: \[1\]"),
    ],
)
def test_bad_sequences(shot, indices, keys, match):
    frames, masks = shot
    keys = {k: masks[0] for k in keys}
    with pytest.raises(InputError, match=match):
        list(propagate_sequence(lambda i: frames[i], indices, keys))


def test_config_is_validated():
    with pytest.raises(ConfigError, match="valid choices: dis, farneback"):
        FlowPropagateConfig(method="raft")
    with pytest.raises(ConfigError, match="work_long_side"):
        FlowPropagateConfig(work_long_side=10)
    assert FlowPropagateConfig(keep_soft="yes").keep_soft is True
    specs = param_specs(FlowPropagateConfig)
    assert [s.name for s in specs] == [
        "method",
        "dis_preset",
        "work_long_side",
        "threshold",
        "fill_holes_area",
        "min_island_area",
        "feed",
        "keep_soft",
    ]
    assert all(s.help for s in specs)
