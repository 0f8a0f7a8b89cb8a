"""``vfxmatte panoptic`` with instance folders, keyframe propagation and bad input."""

from __future__ import annotations

import logging

import cv2
import numpy as np
import pytest

from vfxmatte.cli import main
from vfxmatte.io.image import probe_image, read_image, write_image
from vfxmatte.panoptic.cryptomatte import read_cryptomatte
from vfxmatte.synth import ShotSpec, render_frame, write_shot


@pytest.fixture(scope="module")
def frame():
    return render_frame(ShotSpec(width=160, height=96, objects=2, seed=1, frames=4), 2)


def _instance_folder(frame, folder) -> None:
    """Masks of the two objects, grown by 3 px so that they overlap; no background file."""
    folder.mkdir()
    kernel = np.ones((7, 7), np.uint8)
    for k, name in ((1, "02_front"), (0, "01_back")):  # written out of order on purpose
        mask = (frame.layers[..., k + 1] > 0.5).astype(np.uint8)
        cv2.imwrite(str(folder / f"{name}.png"), cv2.dilate(mask, kernel) * 255)


def test_instance_folder_still(frame, tmp_path, capsys):
    write_image(tmp_path / "plate.exr", frame.image, list("RGB"))
    _instance_folder(frame, tmp_path / "masks")
    out = tmp_path / "pan.exr"
    code = main(["panoptic", str(tmp_path / "plate.exr"), "--instances", str(tmp_path / "masks"),
                 "-o", str(out)])  # fmt: skip
    assert code == 0 and "wrote 1 frame(s)" in capsys.readouterr().out
    names = ["background", "01_back", "02_front"]
    layers = np.stack([read_image(out, [f"{n}.A"]).pixels[..., 0] for n in names])
    assert np.abs(layers.sum(axis=0) - 1.0).max() < 1e-4
    exact = np.moveaxis(frame.layers, -1, 0)
    hard = np.zeros_like(exact)
    assert np.abs(layers - exact).sum() < np.abs(hard - exact).sum()
    assert set(read_cryptomatte(out)) == set(names)
    assert "02_front.R" in probe_image(out).channels


def test_instance_sequences_for_a_shot(tmp_path, capsys):
    spec = ShotSpec(width=128, height=72, frames=3, objects=1, seed=4)
    paths = write_shot(tmp_path / "shot", spec)
    masks = tmp_path / "masks"
    masks.mkdir()
    for number in range(spec.first_frame, spec.last_frame + 1):
        labels = cv2.imread(paths.frame(paths.labels, number), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(masks / f"blob.{number}.png"), (labels == 1).astype(np.uint8) * 255)
    out = tmp_path / "out" / "pan.####.exr"
    assert main(["panoptic", paths.plate, "--instances", str(masks), "-o", str(out)]) == 0
    assert "wrote 3 frame(s)" in capsys.readouterr().out
    for number in range(spec.first_frame, spec.last_frame + 1):
        assert set(read_cryptomatte(str(out).replace("####", str(number)))) == {
            "background",
            "blob",
        }
    (masks / f"blob.{spec.last_frame}.png").unlink()
    assert main(["panoptic", paths.plate, "--instances", str(masks), "-o", str(out)]) == 2
    assert "'blob'" in capsys.readouterr().err


def test_keyframe_propagation_cli(tmp_path, capsys):
    spec = ShotSpec(width=128, height=72, frames=3, objects=2, seed=2, speed=2.0)
    paths = write_shot(tmp_path / "shot", spec)
    out = tmp_path / "out" / "pan.####.exr"
    args = ["panoptic", paths.plate, "--labels", paths.frame(paths.labels, 1002),
            "--key-frame", "1002", "--propagate", "flow", "-o", str(out),
            "--propagate.flow.work-long-side", "128"]  # fmt: skip
    assert main(args) == 0 and "wrote 3 frame(s)" in capsys.readouterr().out
    for number in (1001, 1002, 1003):
        path = str(out).replace("####", str(number))
        names = {"segment0", "segment1", "segment2"}
        assert set(read_cryptomatte(path)) == names
        assert {f"{n}.A" for n in names} <= set(probe_image(path).channels)


def test_keyframe_propagation_cli_with_snapcut(tmp_path, capsys):
    spec = ShotSpec(width=128, height=72, frames=3, objects=2, seed=2, speed=2.0)
    paths = write_shot(tmp_path / "shot", spec)
    out = tmp_path / "out" / "pan.####.exr"
    args = ["panoptic", paths.plate, "--labels", paths.frame(paths.labels, 1002),
            "--key-frame", "1002", "--propagate", "snapcut", "-o", str(out),
            "--propagate.snapcut.work-long-side", "128"]  # fmt: skip
    assert main(args) == 0 and "wrote 3 frame(s)" in capsys.readouterr().out
    names = {"segment0", "segment1", "segment2"}
    for number in (1001, 1002, 1003):
        path = str(out).replace("####", str(number))
        assert set(read_cryptomatte(path)) == names
        layers = read_image(path, [f"{n}.A" for n in sorted(names)]).pixels
        assert np.abs(layers.sum(axis=-1) - 1.0).max() < 1e-3


def test_one_label_map_for_a_shot_needs_propagation(tmp_path, capsys):
    paths = write_shot(tmp_path / "shot", ShotSpec(width=64, height=36, frames=2, objects=1))
    code = main(["panoptic", paths.plate, "--labels", paths.frame(paths.labels, 1001),
                 "-o", str(tmp_path / "o.####.exr")])  # fmt: skip
    assert code == 2 and "--propagate flow" in capsys.readouterr().err
    code = main(["panoptic", paths.plate, "--labels", paths.frame(paths.labels, 1001),
                 "--key-frame", "1001", "-o", str(tmp_path / "o.####.exr")])  # fmt: skip
    assert code == 2 and "--key-frame is the frame of the label map" in capsys.readouterr().err


def test_empty_instance_folder_and_mismatched_masks(frame, tmp_path, capsys):
    write_image(tmp_path / "plate.exr", frame.image, list("RGB"))
    (tmp_path / "empty").mkdir()
    code = main(["panoptic", str(tmp_path / "plate.exr"), "--instances", str(tmp_path / "empty"),
                 "-o", str(tmp_path / "o.exr")])  # fmt: skip
    assert code == 2 and "holds no mask image" in capsys.readouterr().err
    (tmp_path / "small").mkdir()
    cv2.imwrite(str(tmp_path / "small" / "car.png"), np.full((48, 80), 255, np.uint8))
    code = main(["panoptic", str(tmp_path / "plate.exr"), "--instances", str(tmp_path / "small"),
                 "-o", str(tmp_path / "o.exr")])  # fmt: skip
    assert code == 2 and "is 80x48 but the plate is 160x96" in capsys.readouterr().err


def test_thousands_of_tiny_segments(frame, tmp_path, capsys, caplog):
    """Speckle is merged away; a map still over the limit errs, or is merged on request."""
    write_image(tmp_path / "plate.exr", frame.image, list("RGB"))
    rng = np.random.default_rng(0)
    ids = frame.labels.astype(np.uint16).copy()
    ys, xs = rng.integers(0, 94, 3000), rng.integers(0, 158, 3000)
    for i, (y, x) in enumerate(zip(ys, xs, strict=True)):
        ids[y : y + 2, x : x + 2] = 10 + i  # 3000 specks of at most 4 px
    cv2.imwrite(str(tmp_path / "speckle.png"), ids)
    plate = str(tmp_path / "plate.exr")
    with caplog.at_level(logging.WARNING, logger="vfxmatte.panoptic.labels"):
        code = main(["panoptic", plate, "--labels", str(tmp_path / "speckle.png"),
                     "-o", str(tmp_path / "a.exr")])  # fmt: skip
    assert code == 0
    assert "smaller than min_area=16 px" in caplog.text and "more)." in caplog.text
    assert set(read_cryptomatte(tmp_path / "a.exr")) == {"segment0", "segment1", "segment2"}

    grid = (np.arange(96)[:, None] // 8) * 20 + np.arange(160)[None] // 8  # 240 cells of 64 px
    cv2.imwrite(str(tmp_path / "grid.png"), grid.astype(np.uint16))
    base = ["panoptic", plate, "--labels", str(tmp_path / "grid.png"), "-o",
            str(tmp_path / "b.exr"), "--panoptic.max-segments", "40"]  # fmt: skip
    assert main(base) == 2
    assert "240 segments" in capsys.readouterr().err
    assert main([*base, "--panoptic.over-limit", "merge", "--no-panoptic.layer-rgb"]) == 0
    assert len(read_cryptomatte(tmp_path / "b.exr")) == 40
    assert "segment0.R" not in probe_image(tmp_path / "b.exr").channels
    with pytest.raises(SystemExit):
        main([*base, "--panoptic.over-limit", "merg"])
    assert "invalid choice: 'merg'" in capsys.readouterr().err
