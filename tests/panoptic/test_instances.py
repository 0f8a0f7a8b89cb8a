"""Tests of vfxmatte.panoptic.instances: instance-mask folders as panoptic input."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError, MissingFramesError
from vfxmatte.io.image import write_image
from vfxmatte.panoptic.instances import limit_instances, scan_instances


def _png(path, mask: np.ndarray) -> None:
    cv2.imwrite(str(path), mask.astype(np.uint8) * 255)


def _boxes(h: int = 12, w: int = 16) -> dict[str, np.ndarray]:
    a = np.zeros((h, w), bool)
    a[2:9, 1:9] = True
    b = np.zeros((h, w), bool)
    b[4:11, 6:14] = True  # overlaps a at rows 4..8, columns 6..8
    return {"a": a, "b": b}


def test_names_sorted_back_to_front_and_background_first(tmp_path):
    for name in ("zebra", "apple", "background"):
        _png(tmp_path / f"{name}.png", np.ones((4, 4), bool))
    (tmp_path / "notes.txt").write_text("not a mask")
    folder = scan_instances(tmp_path)
    assert folder.names == ["background", "apple", "zebra"]
    assert folder.segment_names() == ["background", "apple", "zebra"]


def test_order_file_sets_occlusion(tmp_path):
    masks = _boxes()
    for name, mask in masks.items():
        _png(tmp_path / f"{name}.png", mask)
    front_b = scan_instances(tmp_path).label_map(0, (12, 16))
    (tmp_path / "order.txt").write_text("# back to front\nb\na  # a is in front\n")
    folder = scan_instances(tmp_path)
    assert folder.names == ["b", "a"]
    front_a = folder.label_map(0, (12, 16))
    overlap = masks["a"] & masks["b"]
    # ids: 0 background, then back to front; the front mask claims the overlap.
    assert (front_b[overlap] == 2).all() and (front_a[overlap] == 2).all()
    assert (front_b[masks["a"] & ~overlap] == 1).all() and (
        front_a[masks["b"] & ~overlap] == 1
    ).all()
    unclaimed = ~(masks["a"] | masks["b"])
    assert (front_a[unclaimed] == 0).all()
    segments = folder.segments(front_a)
    assert [(s.id, s.name) for s in segments] == [(0, "background"), (1, "b"), (2, "a")]
    assert sum(s.area for s in segments) == 12 * 16
    assert np.array_equal(segments[2].mask, masks["a"])


def test_rgba_roto_takes_alpha_and_soft_masks_cut_at_half(tmp_path):
    rgba = np.ones((6, 6, 4), np.float32)
    rgba[..., 3] = 0.0
    rgba[1:4, 1:4, 3] = 0.8
    rgba[4, 4, 3] = 0.4
    write_image(tmp_path / "roto.exr", rgba, list("RGBA"))
    label_map = scan_instances(tmp_path).label_map(0, (6, 6))
    assert label_map.sum() == 9 and label_map[4, 4] == 0


def test_sequences_and_a_still_instance(tmp_path):
    a = np.zeros((8, 8), bool)
    for number in (1001, 1002):
        a[:, :] = False
        a[number - 1001 : number - 999, :] = True
        _png(tmp_path / f"car.{number}.png", a)
    _png(tmp_path / "sign.png", np.eye(8, dtype=bool))
    folder = scan_instances(tmp_path)
    assert folder.names == ["car", "sign"]
    folder.check_frames([1001, 1002])
    maps = [folder.label_map(n, (8, 8)) for n in (1001, 1002)]
    assert (maps[0][0, 1:] == 1).all() and (maps[1][1, 2:] == 1).all()
    assert maps[0][5, 5] == maps[1][5, 5] == 2  # the still sign on every frame
    with pytest.raises(MissingFramesError, match=r"'car' .* no mask for frame\(s\) 1003"):
        folder.check_frames([1001, 1002, 1003])


def test_folder_errors(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        scan_instances(tmp_path / "nope")
    (tmp_path / "readme.txt").write_text("x")
    with pytest.raises(InputError, match=r"holds no mask image; expected one file per instance"):
        scan_instances(tmp_path)
    _png(tmp_path / "car.png", np.ones((4, 4), bool))
    _png(tmp_path / "car.0001.png", np.ones((4, 4), bool))
    with pytest.raises(InputError, match="both a still mask and a sequence"):
        scan_instances(tmp_path)


def test_order_file_errors(tmp_path):
    for name in ("person", "car"):
        _png(tmp_path / f"{name}.png", np.ones((4, 4), bool))
    (tmp_path / "order.txt").write_text("car\npersn\n")
    with pytest.raises(InputError, match=r"lists persn, which has no mask.*Did you mean 'person'"):
        scan_instances(tmp_path)
    (tmp_path / "order.txt").write_text("car\n")
    with pytest.raises(InputError, match="must list every instance once.*missing: person"):
        scan_instances(tmp_path)
    (tmp_path / "order.txt").write_text("car\nperson\ncar\n")
    with pytest.raises(InputError, match="repeated: car"):
        scan_instances(tmp_path)


def test_mask_size_and_nan_errors(tmp_path):
    _png(tmp_path / "car.png", np.ones((4, 5), bool))
    folder = scan_instances(tmp_path)
    with pytest.raises(InputError, match=r"instance 'car' .* is 5x4 but the plate is 6x4"):
        folder.label_map(0, (4, 6))
    nan = np.zeros((4, 5, 1), np.float32)
    nan[1, 2] = np.nan
    write_image(tmp_path / "car.png", np.zeros((4, 5, 1), np.float32), ["Y"], dtype="uint8")
    write_image(tmp_path / "smoke.exr", nan, ["Y"])
    with pytest.raises(
        InputError, match=r"'smoke' .* 1 NaN/infinite value\(s\) \(first at x=2, y=1\)"
    ):
        scan_instances(tmp_path).label_map(0, (4, 5))


def test_limit_instances(tmp_path, caplog):
    sizes = [1, 5, 3, 8]
    label_map = np.zeros((10, 10), np.int64)
    for i, n in enumerate(sizes):
        mask = np.zeros((10, 10), bool)
        mask.ravel()[i * 10 : i * 10 + n] = True
        _png(tmp_path / f"obj{i}.png", mask)
        label_map[mask] = i + 1
    folder = scan_instances(tmp_path)
    assert limit_instances(folder, label_map, 5, "error") is None
    with pytest.raises(ConfigError, match=r"has 5 segments .* more than max_segments=3"):
        limit_instances(folder, label_map, 3, "error")
    with caplog.at_level(logging.WARNING):
        keep = limit_instances(folder, label_map, 3, "merge")
    assert keep == {"background", "obj1", "obj3"}
    assert "skipped the 2 smallest instances" in caplog.text
    kept = folder.label_map(0, (10, 10), keep=keep)
    assert set(np.unique(kept).tolist()) == {0, 2, 4}
    assert [s.name for s in folder.segments(kept, keep=keep)] == ["background", "obj1", "obj3"]
