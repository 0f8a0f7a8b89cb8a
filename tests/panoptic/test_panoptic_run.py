from __future__ import annotations

import cv2
import numpy as np
import pytest

from vfxmatte.cli import main
from vfxmatte.errors import InputError
from vfxmatte.io.image import probe_image, read_image, write_image
from vfxmatte.panoptic.aggregate import recompose
from vfxmatte.panoptic.cryptomatte import read_cryptomatte
from vfxmatte.panoptic.labels import segments_from_label_map
from vfxmatte.panoptic.matte import PanopticConfig, matte_segments
from vfxmatte.synth import ShotSpec, render_frame


@pytest.fixture(scope="module")
def frame():
    return render_frame(ShotSpec(width=240, height=136, objects=3, seed=1, frames=4), 2)


def test_layers_partition_unity_and_recompose_the_plate(frame) -> None:
    segments = segments_from_label_map(frame.labels.astype(np.int64))
    display = np.clip(frame.image, 0, 1) ** (1 / 2.2)
    result = matte_segments(display, frame.image, segments, PanopticConfig())
    assert result.layers.shape == (len(segments), 136, 240)
    assert result.layers.min() >= 0.0
    assert np.abs(result.layers.sum(axis=0) - 1.0).max() < 1e-4
    plate = recompose(result.layers, result.fgs)
    # sum_k a_k F_k reproduces the plate: layers partition it and each F_k is fitted to it.
    assert np.abs(plate - frame.image).mean() < 0.02


def test_cli_writes_layers_cryptomatte_and_preview(frame, tmp_path, capsys) -> None:
    write_image(tmp_path / "plate.exr", frame.image, list("RGB"))
    cv2.imwrite(str(tmp_path / "labels.png"), frame.labels.astype(np.uint16))
    out = tmp_path / "out" / "pan.exr"
    assert (
        main(
            [
                "panoptic",
                str(tmp_path / "plate.exr"),
                "--labels",
                str(tmp_path / "labels.png"),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    assert "wrote 1 frame(s)" in capsys.readouterr().out
    channels = probe_image(out).channels
    for name in ("segment0.A", "segment3.A", "segment1.R", "CryptoObject00.R", "R"):
        assert name in channels
    coverage = read_cryptomatte(out)
    layers = np.stack([read_image(out, [f"segment{k}.A"]).pixels[..., 0] for k in range(4)])
    for k in range(4):
        np.testing.assert_allclose(coverage[f"segment{k}"], layers[k], atol=1e-6)
    assert (tmp_path / "out" / "preview" / "pan.png").is_file()


def test_label_map_of_the_wrong_size(frame, tmp_path, capsys) -> None:
    write_image(tmp_path / "plate.exr", frame.image, list("RGB"))
    cv2.imwrite(str(tmp_path / "labels.png"), np.zeros((10, 10), np.uint16))
    code = main(
        [
            "panoptic",
            str(tmp_path / "plate.exr"),
            "--labels",
            str(tmp_path / "labels.png"),
            "-o",
            str(tmp_path / "o.exr"),
        ]
    )
    assert code == 2 and "is 10x10 but the plate is 240x136" in capsys.readouterr().err


def test_foregrounds_are_kept_in_each_layers_box(frame) -> None:
    segments = segments_from_label_map(frame.labels.astype(np.int64))
    display = np.clip(frame.image, 0, 1) ** (1 / 2.2)
    result = matte_segments(display, frame.image, segments, PanopticConfig())
    for k in range(len(segments)):
        ys, xs = result.fg_boxes[k]
        outside = np.ones(result.layers[k].shape, bool)
        outside[ys, xs] = False
        assert not result.layers[k][outside].any()  # the box holds the whole layer
        fg = result.foreground(k)
        assert not fg[outside].any() and np.array_equal(result.fgs[k], fg)
        premult = result.premultiplied(k)
        np.testing.assert_allclose(premult, fg * result.layers[k][..., None], atol=1e-7)
        np.testing.assert_array_equal(result.premultiplied(k, 1), premult[..., 1])


def test_segments_must_cover_the_label_map() -> None:
    ids = np.zeros((6, 8), np.int64)
    ids[:, 4:] = 3
    segments = segments_from_label_map(ids, min_area=0)
    image = np.full((6, 8, 3), 0.5, np.float32)
    with pytest.raises(InputError, match=r"ids \[3\] that no segment has"):
        matte_segments(image, image, segments[:1])
    with pytest.raises(InputError, match="is 8x6 but the frame is 7x6"):
        matte_segments(image[:, :7], image[:, :7], segments)
