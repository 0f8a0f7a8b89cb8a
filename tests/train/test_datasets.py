"""Folder matting datasets, COCO weak masks and self-training (EMA teacher)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest
import torch

from vfxmatte.errors import InputError
from vfxmatte.train.coco import CocoWeakMasks, decode_rle, polygons_to_mask, rle_from_string
from vfxmatte.train.config import load_train_config
from vfxmatte.train.selftrain import ema_update, strong_perturb, weak_view
from vfxmatte.train.sources import FolderBackgrounds, FolderForegrounds, find_matting_folders
from vfxmatte.train.trainer import Trainer


def _png(path, array) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), array)


def _matting_folder(root, names=("fg", "alpha", "bg"), count=2):
    rng = np.random.default_rng(0)
    for i in range(count):
        _png(root / names[0] / f"img{i}.png", rng.integers(0, 255, (80, 96, 3), dtype=np.uint8))
        alpha = np.zeros((80, 96), np.uint8)
        cv2.circle(alpha, (48, 40), 25, 255, -1, cv2.LINE_AA)
        _png(root / names[1] / f"img{i}.png", alpha)
        if len(names) > 2:
            _png(root / names[2] / f"b{i}.jpg", rng.integers(0, 255, (70, 90, 3), dtype=np.uint8))
    return root


@pytest.mark.parametrize("names", [("fg", "alpha", "bg"), ("FG", "GT"), ("original", "mask")])
def test_folder_layouts_are_recognised(tmp_path, names) -> None:
    root = _matting_folder(tmp_path / "ds", names)
    fg_dir, alpha_dir, bg_dir = find_matting_folders(root)
    assert fg_dir.name == names[0] and alpha_dir.name == names[1]
    assert (bg_dir is not None) == (len(names) > 2)
    source = FolderForegrounds([root])
    assert len(source) == 2
    fg, alpha = source[1]
    assert fg.shape == (80, 96, 3) and alpha.shape == (80, 96)
    assert alpha.max() == pytest.approx(1.0) and alpha.min() == 0.0
    assert fg.dtype == np.float32 and fg.max() <= 1.0  # linearised 8-bit sRGB


def test_folder_errors_name_what_is_expected(tmp_path) -> None:
    (tmp_path / "x" / "images_only").mkdir(parents=True)
    with pytest.raises(InputError, match="expected one of fg"):
        FolderForegrounds([tmp_path / "x"])
    with pytest.raises(InputError, match="not found"):
        FolderBackgrounds([tmp_path / "nope"])


def test_training_on_folders(tmp_path) -> None:
    root = _matting_folder(tmp_path / "ds")
    config = load_train_config(
        None,
        [
            "arch=tiny", "threads=1", "steps=2", "data.source=folders",
            f"data.matting_dirs=[{root}]", "data.crop_size=64", "data.batch_size=2",
            "eval_samples=1", "eval_size=64", f"out_dir={tmp_path / 'run'}",
        ],
    )  # fmt: skip
    trainer = Trainer(config)
    assert isinstance(trainer.task.maker.backgrounds, FolderBackgrounds)  # the dataset's bg/
    terms = trainer.train_step()
    assert np.isfinite(terms["total"])


def _rle_to_string(counts: list[int]) -> str:
    """pycocotools' rleToString, written independently for the round trip."""
    out = []
    for i, x in enumerate(counts):
        if i > 2:
            x -= counts[i - 2]
        more = True
        while more:
            c = x & 0x1F
            x >>= 5
            more = (x != -1) if (c & 0x10) else (x != 0)
            if more:
                c |= 0x20
            out.append(chr(c + 48))
    return "".join(out)


def test_rle_decoding_uncompressed_and_compressed() -> None:
    mask = np.zeros((5, 4), bool)
    mask[1:4, 1:3] = True
    flat = mask.T.reshape(-1)  # column-major
    counts, value, run = [], False, 0
    for v in flat:
        if v == value:
            run += 1
        else:
            counts.append(run)
            value, run = v, 1
    counts.append(run)
    assert np.array_equal(decode_rle(counts, 5, 4), mask)
    text = _rle_to_string(counts)
    assert rle_from_string(text) == counts
    assert np.array_equal(decode_rle(text, 5, 4), mask)
    with pytest.raises(InputError, match="RLE covers"):
        decode_rle([3, 2], 5, 4)


def test_polygon_mask_area() -> None:
    mask = polygons_to_mask([[10, 10, 30, 10, 30, 20, 10, 20]], 40, 40)
    assert abs(int(mask.sum()) - 20 * 10) <= 31  # edge pixels of an exact 20x10 box


def _coco(tmp_path):
    rng = np.random.default_rng(1)
    _png(tmp_path / "images" / "a.png", rng.integers(0, 255, (72, 88, 3), dtype=np.uint8))
    data = {
        "images": [{"id": 1, "file_name": "a.png", "height": 72, "width": 88}],
        "annotations": [
            {"id": 5, "image_id": 1, "iscrowd": 0, "area": 600.0, "bbox": [20, 16, 40, 30],
             "segmentation": [[20, 16, 60, 16, 60, 46, 20, 46]]},
            {"id": 6, "image_id": 1, "iscrowd": 1, "area": 10.0, "bbox": [0, 0, 2, 2],
             "segmentation": {"counts": [0, 72 * 88], "size": [72, 88]}},
        ],
    }  # fmt: skip
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_weak_masks(tmp_path) -> None:
    ds = CocoWeakMasks(_coco(tmp_path), tmp_path / "images")
    assert len(ds) == 1  # the crowd annotation is skipped
    sample = ds[0]
    assert sample.image.shape == (72, 88, 3) and sample.mask.shape == (72, 88)
    assert sample.mask[30, 40] and not sample.mask[5, 5]
    view = weak_view(sample, 64, 0.2, np.random.default_rng(0))
    assert view.image.shape == view.strong_image.shape == (64, 64, 3)
    assert set(np.unique(view.mask)) <= {0.0, 1.0}
    grown = (view.strong_guidance >= view.mask).all()
    shrunk = (view.strong_guidance <= view.mask).all()
    assert grown or shrunk  # dilated or eroded, never both
    assert not np.array_equal(view.strong_guidance, view.mask)
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InputError, match="not a COCO"):
        CocoWeakMasks(bad, tmp_path)


def test_strong_perturbation_is_pixelwise_linear_without_blur() -> None:
    image = np.zeros((32, 32, 3), np.float32)
    image[:, 16:] = 0.8
    out = strong_perturb(image, np.random.default_rng(0))
    left, right = out[:, :16].mean(), out[:, 16:].mean()
    assert right - left > 0.4  # the edge keeps its contrast (no blur)
    assert not np.array_equal(out, image)


def test_ema_update() -> None:
    teacher, student = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    torch.nn.init.constant_(teacher.weight, 1.0)
    torch.nn.init.constant_(student.weight, 3.0)
    ema_update(teacher, student, 0.75)
    assert torch.allclose(teacher.weight, torch.full((1, 2), 1.5))


def test_self_training_step_and_resume_of_the_teacher(tmp_path) -> None:
    path = _coco(tmp_path)
    overrides = [
        "arch=tiny", "threads=1", "steps=2", "data.crop_size=64", "data.batch_size=2",
        "data.synth_canvas=96", "eval_samples=1", "eval_size=64", f"out_dir={tmp_path / 'run'}",
        "selftrain.enabled=true", f"selftrain.coco_json={path}",
        f"selftrain.coco_images={tmp_path / 'images'}", "selftrain.ema_decay=0.5",
        "selftrain.min_area=100",
    ]  # fmt: skip
    trainer = Trainer(load_train_config(None, overrides))
    start = {k: v.clone() for k, v in trainer.task.teacher.state_dict().items()}
    terms = trainer.train_step()
    assert "self_training" in terms and np.isfinite(terms["self_training"])
    moved = trainer.task.teacher.state_dict()
    assert any(not torch.equal(start[k], moved[k]) for k in start)  # EMA moved the teacher
    trainer.save()
    again = Trainer(load_train_config(None, overrides))
    again.load()
    restored = again.task.teacher.state_dict()
    assert all(torch.equal(moved[k], restored[k]) for k in moved)


def test_report_on_a_dataset_folder(tmp_path, capsys) -> None:
    from vfxmatte.train.evaluation import folder_frames
    from vfxmatte.train.report import main as report_main

    root = tmp_path / "eval"
    rng = np.random.default_rng(2)
    for i in range(2):
        alpha = np.zeros((60, 80), np.uint8)
        cv2.circle(alpha, (40, 30), 18, 255, -1, cv2.LINE_AA)
        _png(root / "merged" / f"f{i}.png", rng.integers(0, 255, (60, 80, 3), dtype=np.uint8))
        _png(root / "alpha" / f"f{i}.png", alpha)
    trimap = np.zeros((60, 80), np.uint8)
    cv2.circle(trimap, (40, 30), 24, 128, -1)
    cv2.circle(trimap, (40, 30), 12, 255, -1)
    _png(root / "trimaps" / "f0.png", trimap)
    frames = folder_frames(root, long_side=40)
    assert len(frames) == 2 and frames[0].image.shape == (30, 40, 3)
    assert frames[0].guidance.sum() > (frames[0].alpha > 0.5).sum()  # trimap fg + unknown
    # a checkpoint to evaluate: two steps of the tiny network
    config = load_train_config(
        None,
        ["arch=tiny", "threads=1", "steps=1", "data.crop_size=64", "data.synth_canvas=96",
         "eval_samples=1", "eval_size=64", f"out_dir={tmp_path / 'run'}"],
    )  # fmt: skip
    trainer = Trainer(config)
    trainer.train_step()
    weights = trainer.export()
    out = tmp_path / "report"
    assert report_main(["--matte", str(weights), "--dataset", str(root), "--out", str(out)]) == 0
    table = capsys.readouterr().out
    assert (
        "guidance mask" in table and "classical (default)" in table and "network, 1 pass" in table
    )
    report = json.loads((out / "heldout.json").read_text())
    assert report["frames"] == 2 and set(report["alpha"]["network, 1 pass"]) >= {"SAD", "Conn"}
    assert (out / "heldout_0.png").is_file()
    with pytest.raises(InputError, match="composite folder"):
        folder_frames(tmp_path / "run")


def test_read_colour_linearises_integer_files_only(tmp_path) -> None:
    from vfxmatte.io.image import write_image
    from vfxmatte.train.sources import read_colour

    cv2.imwrite(str(tmp_path / "a.png"), np.full((4, 4, 3), 128, np.uint8))
    write_image(str(tmp_path / "b.exr"), np.full((4, 4, 3), 0.5, np.float32), ("R", "G", "B"))
    assert read_colour(tmp_path / "a.png")[0, 0, 0] == pytest.approx(0.2158605, abs=1e-5)
    assert read_colour(tmp_path / "b.exr")[0, 0, 0] == pytest.approx(0.5)
