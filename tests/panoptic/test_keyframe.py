"""Tests of vfxmatte.panoptic.keyframe: a shot from one keyframe label map."""

from __future__ import annotations

import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.image import read_image
from vfxmatte.panoptic.keyframe import KeyframeSegments, label_map_from_masks
from vfxmatte.panoptic.labels import segments_from_label_map
from vfxmatte.panoptic.matte import PanopticConfig
from vfxmatte.panoptic.run import PanopticJob, run_panoptic
from vfxmatte.synth import ShotSpec, write_shot


def _key() -> KeyframeSegments:
    ids = np.full((10, 12), 5, np.int64)  # id 5: the background, largest
    ids[1:5, 1:6] = 7
    ids[5:9, 6:11] = 9
    segments = segments_from_label_map(ids, min_area=0)
    return KeyframeSegments.from_segments(segments, [0, 1, 2])


def test_back_segment_takes_the_remainder_and_front_wins():
    key = _key()
    assert key.back == 0 and key.objects == [1, 2]
    a = np.zeros((10, 12), np.float32)
    a[0:6, 0:8] = 1.0
    b = np.zeros((10, 12), np.float32)
    b[4:10, 4:12] = 0.8
    label_map, segments = label_map_from_masks(key, {2: a, 3: b}, (10, 12))
    assert label_map[0, 0] == 7 and label_map[5, 5] == 9  # 9 is in front of 7
    assert label_map[9, 0] == 5  # claimed by no mask: the back segment
    assert [s.name for s in segments] == ["segment5", "segment7", "segment9"]
    assert sum(s.area for s in segments) == 120
    assert all(s.label_map is label_map for s in segments)
    _, gone = label_map_from_masks(key, {2: a}, (10, 12))
    assert gone[2].area == 0 and gone[2].name == "segment9"  # out of view: kept, empty


def test_without_order_the_largest_is_at_the_back():
    key = _key()
    unordered = KeyframeSegments.from_segments(key.segments, None)
    assert unordered.back == 0 and unordered.order is None
    with pytest.raises(InputError, match=r"propagated mask of 'segment7' is 3x2"):
        label_map_from_masks(unordered, {2: np.ones((2, 3), np.float32)}, (10, 12))


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    spec = ShotSpec(width=192, height=108, frames=4, objects=2, seed=3, speed=3.0)
    return spec, write_shot(tmp_path_factory.mktemp("shot"), spec)


def test_shot_from_one_keyframe(shot, tmp_path):
    spec, paths = shot
    key = spec.first_frame + 1
    seen: dict[int, tuple] = {}

    def on_frame(number, result):
        exact = np.moveaxis(read_image(paths.frame(paths.layers, number)).pixels, -1, 0)
        seen[number] = (list(result.names), result.layers, exact)

    job = PanopticJob(
        plate=paths.plate, output=str(tmp_path / "pan.####.exr"),
        labels=paths.frame(paths.labels, key), key_frame=key, propagate="flow",
    )  # fmt: skip
    written = run_panoptic(job, PanopticConfig(order="ids"), on_frame=on_frame)
    assert written == list(range(spec.first_frame, spec.last_frame + 1))
    assert list(seen)[0] == key  # the keyframe first, then forward, then backward
    key_labels = read_image(paths.frame(paths.labels, key)).pixels[..., 0] * 65535
    static = (np.arange(3)[:, None, None] == np.round(key_labels)[None]).astype(np.float32)
    for number, (names, layers, exact) in seen.items():
        assert names == ["segment0", "segment1", "segment2"]
        assert np.abs(layers.sum(axis=0) - 1.0).max() < 1e-4 and layers.min() >= 0.0
        sad = np.abs(layers - exact).sum()
        sad_static = np.abs(static - exact).sum()
        print(number, f"SAD {sad:.0f}, keyframe labels left in place {sad_static:.0f}")
        if number != key:  # the objects move: carrying the labels beats leaving them
            assert sad < sad_static, number
        assert (tmp_path / "preview" / f"pan.{number}.png").is_file()
    names, layers, exact = seen[key]
    hard = (np.arange(3)[:, None, None] == layers.argmax(axis=0)[None]).astype(np.float32)
    assert np.abs(layers - exact).sum() <= np.abs(hard - exact).sum()


def test_keyframe_outside_the_plate(shot, tmp_path):
    _, paths = shot
    job = PanopticJob(
        plate=paths.plate,
        output=str(tmp_path / "p.####.exr"),
        labels=paths.frame(paths.labels, 1001),
        key_frame=2000,
        propagate="flow",
    )
    with pytest.raises(ConfigError, match=r"keyframe 2000 is not among the plate's frames"):
        run_panoptic(job)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of them"),
        ({"labels": "l.png", "instances": "dir"}, "exactly one of them"),
        (
            {"labels": "l.png", "propagate": "flwo"},
            r"flow, snapcut or sam2, got 'flwo'.*Did you mean 'flow'",
        ),
        ({"labels": "l.####.png", "propagate": "flow"}, "a single file, not a pattern"),
        ({"instances": "dir", "propagate": "flow"}, "a single file, not a pattern or --instances"),
        ({"labels": "l.png", "key_frame": 3}, "--key-frame is the frame of the label map"),
    ],
)
def test_job_combinations(fields, message):
    job = PanopticJob(plate="p.####.exr", output="o.####.exr", **fields)
    with pytest.raises(ConfigError, match=message):
        job.check()
