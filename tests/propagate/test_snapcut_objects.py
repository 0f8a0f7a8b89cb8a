"""Tests of ``snapcut``'s objects: one tracker per object, occlusion and re-acquisition.

Shots: two textured discs moving apart over a static textured background (one
motion cannot carry both), a mask with a piece of background attached beside a
moving object (the piece must not stay), and a synthetic photo shot whose object
passes behind an occluder card for six frames and comes out again. Bounds leave
room below what was measured (noted at each test).
"""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from vfxmatte.propagate.flow import FlowPropagator
from vfxmatte.propagate.snapcut import SnapCutPropagateConfig, SnapCutPropagator, split_objects
from vfxmatte.propagate.snapcut_object import ObjectTracker, _grow, _uncovered

from .test_flow import _noise, iou
from .test_snapcut import display_frames


def _run(prop, frames, key_mask):
    out = [prop.reset(frames[0], key_mask)]
    out += [prop.step(f) for f in frames[1:]]
    return out


def _discs(
    n: int = 14,
    h: int = 120,
    w: int = 200,
    seed: int = 1,
    centres=((80, 50), (125, 60)),
    velocities=((-4, 0), (4, 1.5)),
    radius: float = 18.0,
):
    """Two textured discs; by default starting near each other, moving apart (+-4 px/frame,
    one also down)."""
    rng = np.random.default_rng(seed)
    bg = (0.1 + 0.5 * _noise(rng, h, w, 2.0))[..., None] * np.float32([0.7, 0.85, 1.0])
    tex = [
        (0.45 + 0.5 * _noise(rng, h, w, 1.5))[..., None] * np.float32(c)
        for c in ([1.0, 0.8, 0.5], [0.6, 1.0, 0.6])
    ]
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    frames, masks = [], []
    for t in range(n):
        image, mask = bg.copy(), np.zeros((h, w), np.float32)
        for (cx, cy), vel, tx in zip(centres, velocities, tex, strict=True):
            x, y = cx + vel[0] * t, cy + vel[1] * t
            inside = (xs - x) ** 2 + (ys - y) ** 2 <= radius**2
            obj = cv2.remap(tx, xs - x + w / 2, ys - y + h / 2, cv2.INTER_LINEAR)
            image = np.where(inside[..., None], obj, image)
            mask[inside] = 1.0
        frames.append(image.astype(np.float32))
        masks.append(mask)
    return frames, masks


def test_split_objects_gives_one_mask_per_large_part():
    mask = np.zeros((60, 100), np.float32)
    cv2.circle(mask, (25, 30), 12, 1.0, -1)
    cv2.circle(mask, (75, 30), 12, 1.0, -1)
    mask[28:31, 44:46] = 1.0  # a speck next to the first disc: goes with it
    soft = cv2.GaussianBlur(mask, (5, 5), 1.0)
    parts = split_objects(soft, 0.5)
    assert len(parts) == 2
    np.testing.assert_allclose(np.maximum(parts[0], parts[1]), soft)  # nothing lost
    assert all((p >= 0.5).sum() > 300 for p in parts)
    first = next(p for p in parts if p[30, 25] > 0.5)
    assert first[29, 44] > 0  # the speck
    one = np.zeros_like(mask)
    cv2.circle(one, (50, 30), 12, 1.0, -1)
    (whole,) = split_objects(one, 0.5)
    assert whole is one


def test_objects_moving_apart_keep_their_own_motion():
    frames, masks = _discs()
    out = _run(SnapCutPropagator(), frames, masks[0])
    scores = [iou(m, t) for m, t in zip(out, masks, strict=True)]
    assert min(scores) >= 0.85, scores  # measured 0.95


def test_a_piece_of_background_in_the_mask_does_not_stay():
    frames, masks = _discs()
    key = masks[0].copy()
    key[64:85, 65:95] = 1.0  # background attached below the left disc (which moves left)
    piece = (key > 0.5) & (masks[0] < 0.5)
    out = _run(SnapCutPropagator(), frames, key)
    left_alone = piece & (masks[-1] < 0.5)
    assert left_alone.sum() > 300
    assert (out[-1][left_alone] >= 0.5).mean() < 0.1  # measured 0.0


def test_grow_keeps_the_candidates_connected_to_the_seed():
    seed = np.zeros((40, 60), bool)
    seed[10:20, 10:20] = True
    cand = np.zeros_like(seed)
    cand[12:18, 19:35] = True  # touches the seed, reaches far
    cand[25:35, 45:55] = True  # elsewhere
    grown = _grow(seed, cand)
    assert grown[15, 33] and not grown[30, 50]


def test_uncovered_hidden_pixels_come_back_only_where_new_and_object_coloured():
    amodal = np.zeros((40, 60), np.float32)
    amodal[5:35, 5:55] = 1.0
    shape = np.zeros_like(amodal)
    shape[5:35, 5:20] = 1.0  # in view; the rest of the extent is hidden
    ok = np.ones_like(amodal)  # consistent flow: was visible on the last frame
    ok[5:35, 20:30] = 0.0  # no match on the last frame: came out from behind something
    ok[10, 40] = 0.0  # a speck of unreliable flow
    colour = np.full_like(amodal, 0.8)
    colour[20:35, 20:30] = 0.1  # background colours
    back = _uncovered(amodal, shape, ok, colour, 0.5)
    assert back[8:18, 21:29].all()  # new, object-coloured, in the hidden extent
    assert not back[22:33, 21:29].any()  # new but of background colour
    assert not back[:, 31:].any() and not back[10, 40]  # consistent, or a speck
    assert not back[:, :20].any()  # already in view


def test_only_what_was_covered_stays_hidden():
    tracker = ObjectTracker(SnapCutPropagateConfig())
    soft = np.zeros((40, 60), np.float32)
    soft[10:30, 10:40] = 1.0  # the object on the last frame
    amodal = soft.copy()
    amodal[10:30, 40:50] = 1.0  # and a part of its extent hidden then
    soft[30:36, 10:40] = 1.0  # a rim of background in the mask (matched on this frame)
    amodal[30:36, 10:40] = 1.0
    tracker._soft, tracker._amodal = soft, amodal
    tracker._motion = np.float64([[1, 0, 2], [0, 1, 0]])  # 2 px to the right
    ok_prev = np.ones_like(soft)
    ok_prev[10:30, 34:40] = 0.0  # the strip of the object an occluder swept over
    covered = tracker._covered_now(ok_prev)
    assert covered[12:28, 43:51].all()  # hidden before, moved along
    assert covered[12:28, 37:41].all()  # just swept over
    assert not covered[12:36, 14:32].any()  # in view and matched, the rim too


def _crossing():
    """Two textured discs crossing (+-8 px/frame): the first passes behind the second."""
    return _discs(16, 120, 220, 2, ((40, 55), (180, 65)), ((8, 0), (-8, 0)), 22.0)


def test_an_object_coming_out_from_behind_another_is_claimed_as_it_comes():
    frames, masks = _crossing()
    out = _run(SnapCutPropagator(), frames, masks[0])
    scores = [iou(m, t) for m, t in zip(out, masks, strict=True)]
    # The back disc's side that comes out is claimed on the frame it comes out (measured
    # worst 0.86, frames 9-12 mean 0.93; before the rule 0.81 and 0.89).
    assert min(scores) >= 0.84, scores
    assert np.mean(scores[9:13]) >= 0.91, scores


@pytest.fixture(scope="module")
def occluder_shot():
    pytest.importorskip("skimage")
    from vfxmatte.synth import ShotSpec

    spec = ShotSpec(
        width=480, height=270, frames=48, background="photo", textures="photo", seed=13,
        occluder=True, speed=9.6, turn=3.0, occluder_speed=-4.0, supersample=2,
    )  # fmt: skip
    return display_frames(spec)


def test_an_object_hidden_behind_an_occluder_comes_back(occluder_shot):
    frames, masks = occluder_shot
    hidden = [i for i, m in enumerate(masks) if not m.any()]
    assert len(hidden) >= 5  # the object is out of view for 5+ frames
    snap = _run(SnapCutPropagator(), frames, masks[0])
    flow = _run(FlowPropagator(), frames, masks[0])
    snap_iou = [iou(m, t) for m, t in zip(snap, masks, strict=True)]
    flow_iou = [iou(m, t) for m, t in zip(flow, masks, strict=True)]
    claimed = [float((snap[i] >= 0.5).sum()) for i in hidden]
    assert max(claimed) < 0.05 * masks[0].sum(), claimed  # next to nothing while hidden
    assert snap_iou[-1] >= 0.8, snap_iou  # measured 0.87
    assert flow_iou[-1] < 0.1  # flow loses it for good
    after = snap_iou[hidden[-1] + 8 :]
    assert np.mean(after) >= 0.6, snap_iou  # measured 0.73
