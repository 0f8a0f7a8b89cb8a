"""Tests of vfxmatte.panoptic.labels: label-map files, COCO names, segment splitting."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.image import write_image
from vfxmatte.panoptic.labels import (
    read_coco_segments_info,
    read_coco_thing_ids,
    read_label_map,
    segments_from_label_map,
)


def _ids(h: int = 8, w: int = 12) -> np.ndarray:
    ids = np.zeros((h, w), np.int64)
    ids[:, 4:8] = 7
    ids[:, 8:] = 300
    return ids


def test_read_8bit_png(tmp_path):
    ids = _ids() % 256
    cv2.imwrite(str(tmp_path / "l.png"), ids.astype(np.uint8))
    got = read_label_map(tmp_path / "l.png")
    assert got.dtype == np.int64 and np.array_equal(got, ids)


def test_read_16bit_png(tmp_path):
    ids = _ids() * 100  # up to 30000
    cv2.imwrite(str(tmp_path / "l.png"), ids.astype(np.uint16))
    assert np.array_equal(read_label_map(str(tmp_path / "l.png")), ids)


def test_read_coco_png_and_json(tmp_path):
    ids = np.zeros((6, 9), np.int64)
    ids[:, 3:6] = 1 + 2 * 256 + 3 * 256**2
    ids[:, 6:] = 5000
    rgb = np.stack([ids % 256, ids // 256 % 256, ids // 256**2], axis=-1).astype(np.uint8)
    cv2.imwrite(str(tmp_path / "img1.png"), rgb[:, :, ::-1])  # OpenCV writes BGR
    coco = {
        "annotations": [
            {"file_name": "img0.png", "segments_info": []},
            {
                "file_name": "img1.png",
                "segments_info": [
                    {"id": int(ids[0, 3]), "category_id": 1},
                    {"id": 5000, "category_id": 184},
                ],
            },
        ],
        "categories": [
            {"id": 1, "name": "person", "isthing": 1},
            {"id": 184, "name": "sky other", "isthing": 0},
        ],
    }
    (tmp_path / "p.json").write_text(json.dumps(coco))
    got = read_label_map(tmp_path / "img1.png")
    assert np.array_equal(got, ids)
    info = read_coco_segments_info(tmp_path / "p.json", "some/dir/img1.png")
    assert info == {int(ids[0, 3]): "person_1", 5000: "sky_other_1", 0: "void"}
    things = read_coco_thing_ids(tmp_path / "p.json", "img1.png")
    segs = segments_from_label_map(got, info=info, things=things, min_area=0)
    assert [(s.name, s.area, s.isthing) for s in segs] == [
        ("void", 18, False),
        ("sky_other_1", 18, False),
        ("person_1", 18, True),
    ]
    with pytest.raises(InputError, match="pass png_name"):
        read_coco_segments_info(tmp_path / "p.json")
    with pytest.raises(InputError, match="no annotation for 'img9.png'"):
        read_coco_segments_info(tmp_path / "p.json", "img9.png")


def test_read_exr_integer_and_non_integer(tmp_path):
    ids = _ids().astype(np.float32)[:, :, None]
    write_image(tmp_path / "l.exr", ids, ("Y",), dtype="float")
    assert np.array_equal(read_label_map(tmp_path / "l.exr"), _ids())
    ids[5, 2, 0] = 3.5
    write_image(tmp_path / "bad.exr", ids, ("Y",), dtype="float")
    with pytest.raises(InputError, match=r"bad\.exr.*3\.5 at x=2, y=5"):
        read_label_map(tmp_path / "bad.exr")


def test_missing_file():
    with pytest.raises(InputError, match="does not exist"):
        read_label_map("/nonexistent/labels.png")


def test_segments_default_names_and_partition():
    segs = segments_from_label_map(_ids())
    assert [(s.id, s.name, s.area, s.isthing) for s in segs] == [
        (0, "segment0", 32, None),
        (7, "segment7", 32, None),
        (300, "segment300", 32, None),
    ]
    assert np.array_equal(sum(s.mask.astype(int) for s in segs), np.ones((8, 12), int))


def test_tiny_segment_merged_into_most_touching_neighbour(caplog):
    ids = _ids(16, 24)
    ids[:, 8:12] = 7  # id 7 now covers x 4..11
    # 6 px across the 0|7 border (x 2..4): 6 pixel pairs touch 0, 4 touch the larger 7.
    ids[6:8, 2:5] = 42
    ids[0, 0] = 99  # 1 px in the corner of 0
    with caplog.at_level(logging.WARNING, logger="vfxmatte.panoptic.labels"):
        segs = segments_from_label_map(ids, min_area=16)
    assert [s.id for s in segs] == [0, 7, 300]
    assert {s.id: s.area for s in segs} == {0: 66, 7: 126, 300: 192}
    assert "min_area=16" in caplog.text and "42->0" in caplog.text and "99->0" in caplog.text
    assert segs[0].mask[6:8, 2:5].all() and segs[0].mask[0, 0]


def test_chained_merge_follows_to_final_target(caplog):
    ids = np.zeros((10, 10), np.int64)
    ids[4:6, 4:6] = 5  # 4 px inside a 10 px ring of 6, inside 0
    ids[3, 3:7] = 6
    ids[6, 3:7] = 6
    ids[4:6, 3] = 6
    with caplog.at_level(logging.WARNING):
        segs = segments_from_label_map(ids, min_area=16)
    assert [(s.id, s.area) for s in segs] == [(0, 100)]
    assert "5->0" in caplog.text and "6->0" in caplog.text


def test_too_many_segments():
    ids = np.arange(20 * 20).reshape(20, 20) // 20  # 20 rows of 20 px
    with pytest.raises(ConfigError, match=r"has 20 segments.*max_segments=10"):
        segments_from_label_map(ids, max_segments=10)
    assert len(segments_from_label_map(ids, max_segments=20)) == 20


def test_ids_missing_from_info():
    with pytest.raises(InputError, match=r"Label ids 7, 300 are in the label map but not"):
        segments_from_label_map(_ids(), info={0: "bg"})
    segs = segments_from_label_map(_ids(), info={0: "bg", 7: "a", 300: "b", 8: "unused"})
    assert [s.name for s in segs] == ["bg", "a", "b"]


def test_over_limit_merges_the_smallest(caplog):
    ids = np.arange(20 * 20).reshape(20, 20) // 20  # 20 rows of 20 px
    ids[0, :] = 100  # ... one row made of a single larger id
    ids[1, :5] = 100
    with caplog.at_level(logging.WARNING):
        segs = segments_from_label_map(ids, max_segments=5, over_limit="merge")
    assert len(segs) == 5 and sum(s.area for s in segs) == 400
    assert "beyond max_segments=5" in caplog.text
    with pytest.raises(ConfigError, match=r"over_limit must be 'error' or 'merge'.*'merge'"):
        segments_from_label_map(ids, over_limit="merg")


def test_thousands_of_specks_merge_quickly_with_a_short_warning(caplog):
    rng = np.random.default_rng(0)
    ids = np.zeros((200, 300), np.int64)
    ids[:, 150:] = 1
    specks = zip(rng.integers(0, 198, 4000), rng.integers(0, 298, 4000), strict=True)
    for i, (y, x) in enumerate(specks):
        ids[y : y + 2, x : x + 2] = 2 + i
    with caplog.at_level(logging.WARNING):
        segs = segments_from_label_map(ids, min_area=16)
    assert [s.id for s in segs] == [0, 1]
    assert sum(s.area for s in segs) == ids.size
    assert "(and " in caplog.text and len(caplog.text) < 1000  # the list is cut short
