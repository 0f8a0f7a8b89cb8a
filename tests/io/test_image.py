from __future__ import annotations

import os

import numpy as np
import OpenImageIO as oiio
import pytest

from vfxmatte.errors import ConfigError, InputError
from vfxmatte.io.colour import resolve_colourspace
from vfxmatte.io.image import read_image, write_image


@pytest.fixture
def rgba() -> np.ndarray:
    rng = np.random.default_rng(0)
    img = rng.uniform(0, 1, (12, 16, 4)).astype(np.float32)
    img[0, 0, :3] = [4.0, 12.5, 0.0]  # highlights above 1.0 must survive EXR
    return img


@pytest.mark.parametrize(("dtype", "tol"), [("half", 2e-3), ("float", 0.0)])
@pytest.mark.parametrize("compression", ["zip", "piz", "none"])
def test_exr_round_trip(tmp_path, rgba, dtype, tol, compression) -> None:
    path = tmp_path / "a.exr"
    write_image(path, rgba, ["R", "G", "B", "A"], dtype=dtype, compression=compression)
    frame = read_image(path)
    assert frame.channels == ("R", "G", "B", "A")
    assert frame.pixels.dtype == np.float32 and frame.pixels.shape == (12, 16, 4)
    np.testing.assert_allclose(frame.pixels, rgba, rtol=tol, atol=tol)
    spec = oiio.ImageInput.open(str(path)).spec()
    assert spec.format == oiio.TypeDesc(dtype)
    assert spec.get_string_attribute("compression") == compression


def test_exr_dwaa_is_lossy_but_close(tmp_path, rgba) -> None:
    write_image(tmp_path / "d.exr", rgba, ["R", "G", "B", "A"], compression="dwaa:45")
    out = read_image(tmp_path / "d.exr").pixels
    assert np.abs(out - rgba).mean() < 0.05


def test_layers_and_channel_selection(tmp_path, rgba) -> None:
    names = ["R", "G", "B", "A", "fg.B", "fg.R", "fg.G", "confidence.Y"]
    pixels = np.concatenate([rgba, rgba[..., :3] * 2, rgba[..., :1]], axis=2)
    write_image(tmp_path / "m.exr", pixels, names, dtype="float")
    fg = read_image(tmp_path / "m.exr", "fg")
    assert fg.channels == ("fg.R", "fg.G", "fg.B")
    np.testing.assert_array_equal(fg.pixels[..., 0], pixels[..., 5])
    assert read_image(tmp_path / "m.exr", "R,G,B").channels == ("R", "G", "B")
    assert read_image(tmp_path / "m.exr", "RGBA").pixels.shape[2] == 4
    assert read_image(tmp_path / "m.exr", ["confidence.Y"]).pixels.shape[2] == 1
    with pytest.raises(InputError, match=r"has no channel 'fg\.X'; it has: R, G, B, A, confidence\.Y, fg\.R"):
        read_image(tmp_path / "m.exr", "fg.X,R")
    with pytest.raises(InputError, match="Did you mean 'confidence.Y'"):
        read_image(tmp_path / "m.exr", "confidence.y")


def _write_windowed(path, data, x, y, full_w, full_h) -> None:
    spec = oiio.ImageSpec(data.shape[1], data.shape[0], data.shape[2], "float")
    spec.x, spec.y, spec.full_width, spec.full_height = x, y, full_w, full_h
    out = oiio.ImageOutput.create(str(path))
    out.open(str(path), spec)
    out.write_image(data)
    out.close()


def test_data_window_smaller_than_display(tmp_path) -> None:
    data = np.ones((4, 5, 3), np.float32)
    _write_windowed(tmp_path / "dw.exr", data, 3, 2, 10, 8)
    px = read_image(tmp_path / "dw.exr").pixels
    assert px.shape == (8, 10, 3)
    assert px.sum() == 4 * 5 * 3
    assert px[2:6, 3:8].min() == 1.0


def test_data_window_larger_than_display(tmp_path) -> None:
    data = np.arange(12 * 14, dtype=np.float32).reshape(12, 14, 1)
    _write_windowed(tmp_path / "os.exr", data, -2, -1, 10, 8)  # overscan
    px = read_image(tmp_path / "os.exr").pixels
    assert px.shape == (8, 10, 1)
    np.testing.assert_array_equal(px[..., 0], data[1:9, 2:12, 0])


def test_multipart_exr(tmp_path) -> None:
    path = str(tmp_path / "mp.exr")
    s1 = oiio.ImageSpec(6, 4, 3, "half")
    s1.attribute("name", "beauty")
    s2 = oiio.ImageSpec(6, 4, 1, "half")
    s2.channelnames = ("matte.A",)
    s2.attribute("name", "matte")
    out = oiio.ImageOutput.create(path)
    assert out.open(path, (s1, s2))
    out.write_image(np.full((4, 6, 3), 0.25, np.float32))
    assert out.open(path, s2, "AppendSubimage")
    out.write_image(np.full((4, 6, 1), 0.75, np.float32))
    out.close()
    assert read_image(path, "R,G,B").pixels.mean() == 0.25
    assert read_image(path, "matte.A").pixels.mean() == 0.75
    with pytest.raises(InputError, match=r"it has: R, G, B, matte\.A"):
        read_image(path, "fg.R")


def test_metadata_carried(tmp_path, rgba) -> None:
    meta = {
        "framesPerSecond": (24000, 1001),
        "smpte:TimeCode": (0x01020304, 0),
        "PixelAspectRatio": 2.0,
        "oiio:ColorSpace": "ACEScg",
        "vfxmatte:source": "not written",
    }
    write_image(tmp_path / "m.exr", rgba, list("RGBA"), metadata=meta)
    got = read_image(tmp_path / "m.exr").metadata
    assert got["framesPerSecond"] == (24000, 1001)
    assert got["smpte:TimeCode"] == (0x01020304, 0)
    assert got["PixelAspectRatio"] == 2.0
    # OpenImageIO stores the colour interop id; it resolves to the same space.
    assert resolve_colourspace(got["oiio:ColorSpace"]) == "ACEScg"
    assert got["vfxmatte:source"] == str(tmp_path / "m.exr")


@pytest.mark.parametrize(
    ("name", "dtype", "tol"),
    [
        ("a.tif", "uint16", 1 / 65535),
        ("a.tif", "uint8", 1 / 255),
        ("a.tif", "float", 0.0),
        ("a.png", "uint16", 1 / 65535),
        ("a.png", "uint8", 1 / 255),
        ("a.dpx", "uint16", 1 / 65535),
    ],
)
def test_integer_and_other_formats(tmp_path, rgba, name, dtype, tol) -> None:
    img = np.clip(rgba[..., :3], 0, 1)
    write_image(tmp_path / name, img, list("RGB"), dtype=dtype)
    frame = read_image(tmp_path / name)
    assert frame.pixels.dtype == np.float32
    np.testing.assert_allclose(frame.pixels, img, atol=tol * 0.51 + 1e-7)
    spec = oiio.ImageInput.open(str(tmp_path / name)).spec()
    assert spec.format == oiio.TypeDesc(dtype)


def test_jpeg_reads(tmp_path) -> None:
    img = np.full((8, 8, 3), 0.5, np.float32)
    write_image(tmp_path / "a.jpg", img, list("RGB"), dtype="uint8")
    assert abs(read_image(tmp_path / "a.jpg").pixels.mean() - 0.5) < 0.01


def test_nonfinite_pixels(tmp_path, rgba) -> None:
    rgba[3, 5, 1] = np.nan
    rgba[7, 2, 0] = np.inf
    write_image(tmp_path / "n.exr", rgba, list("RGBA"), dtype="float")
    with pytest.raises(InputError, match=r"Frame 1004 .*has 2 pixel\(s\) with NaN or infinite values \(first at x=5, y=3\).*--nonfinite zero"):
        read_image(tmp_path / "n.exr", number=1004)
    fixed = read_image(tmp_path / "n.exr", nonfinite="zero").pixels
    assert np.isfinite(fixed).all() and fixed[3, 5, 1] == 0
    assert np.isnan(read_image(tmp_path / "n.exr", nonfinite="keep").pixels[3, 5, 1])


def test_truncated_and_garbage_files(tmp_path, rgba) -> None:
    write_image(tmp_path / "a.exr", rgba, list("RGBA"))
    data = (tmp_path / "a.exr").read_bytes()
    (tmp_path / "cut.exr").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.exr").write_bytes(b"not an exr at all" * 10)
    for name in ("cut.exr", "junk.exr"):
        with pytest.raises(InputError, match=rf"Cannot read the image '.*{name}' .*(damaged or truncated|not an image)"):
            read_image(tmp_path / name)
    with pytest.raises(InputError, match=r"'.*gone\.exr' \(frame 7\) does not exist"):
        read_image(tmp_path / "gone.exr", number=7)


def test_write_is_atomic_and_failure_keeps_old_file(tmp_path, rgba, monkeypatch) -> None:
    path = tmp_path / "out.exr"
    write_image(path, rgba, list("RGBA"))
    before = path.read_bytes()

    class Boom(RuntimeError):
        pass

    def fail(*args, **kwargs):
        raise Boom("disk full")

    monkeypatch.setattr(np, "ascontiguousarray", fail)
    with pytest.raises(Boom):
        write_image(path, rgba * 2, list("RGBA"))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.exr"]


def test_write_errors(tmp_path, rgba) -> None:
    with pytest.raises(InputError, match=r"expected an H x W x 3 array for channels R, G, B, got shape \(12, 16, 4\)"):
        write_image(tmp_path / "a.exr", rgba, list("RGB"))
    with pytest.raises(ConfigError, match="Unknown EXR compression 'zipp'.*Did you mean 'zip'"):
        write_image(tmp_path / "a.exr", rgba, list("RGBA"), compression="zipp")
    with pytest.raises(ConfigError, match="Unknown pixel type 'half16'"):
        write_image(tmp_path / "a.exr", rgba, list("RGBA"), dtype="half16")
    assert not list(tmp_path.iterdir())
