"""The OpenEXR project's test images through the reader.

``../shared/corpus/exr-damaged``: 185 damaged and fuzzer-minimised files (heap overflows,
NULL dereferences, absurd sizes, truncations of earlier OpenEXR releases). Each must end
in an :class:`InputError` sentence naming the file, never in another exception.
``../shared/corpus/exr-valid``: valid edge cases (display/data windows, NaN/Inf, all half
values, a wide float range). Each reads as the official ``openexr`` bindings read it, or
is refused with a sentence by design (NaN/Inf with ``nonfinite="error"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from vfxmatte.errors import InputError, VfxMatteError
from vfxmatte.io.image import probe_image, read_image, write_image
from vfxmatte.io.image_checks import MAX_SIDE, clean_text, oiio_error
from vfxmatte.io.mask import read_mask

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
NOT_IMAGES = ("LICENSE", "README.rst")


def _files(kind: str, suffix: str = "") -> list[Path]:
    folder = CORPUS / kind
    if not folder.is_dir():
        pytest.skip(f"{folder} not found (../shared beside the repository)")
    return sorted(p for p in folder.glob("*" + suffix) if p.name not in NOT_IMAGES)


@pytest.fixture(scope="module")
def damaged(tmp_path_factory) -> list[Path]:
    """Every damaged file under a ``.exr`` name (as a user would have it), by symlink."""
    folder = tmp_path_factory.mktemp("damaged")
    links = []
    for source in _files("exr-damaged"):
        link = folder / (source.name + ".exr")
        link.symlink_to(source)
        links.append(link)
    return links


def _outcome(call) -> str:
    try:
        call()
    except VfxMatteError as exc:
        text = str(exc)
        assert "\n" not in text and text.endswith("."), text
        assert not any(ord(c) < 32 for c in text), text
        return "sentence"
    except Exception as exc:  # noqa: BLE001 - what the test counts
        return f"traceback {type(exc).__name__}: {exc}"
    return "read"


def test_every_damaged_file_is_a_sentence(damaged) -> None:
    """185 files x (header probe, all channels, RGB, mask) and their original names."""
    assert len(damaged) >= 180
    results: dict[str, list[str]] = {}
    originals = [CORPUS / "exr-damaged" / p.name[: -len(".exr")] for p in damaged]
    for path in [*damaged, *originals]:
        name = str(path)
        results[name] = [
            _outcome(lambda n=name: probe_image(n)),
            _outcome(lambda n=name: read_image(n)),
            _outcome(lambda n=name: read_image(n, "RGB")),
            _outcome(lambda n=name: read_mask(n)),
        ]
    tracebacks = {k: v for k, v in results.items() if any(r.startswith("traceback") for r in v)}
    assert not tracebacks, f"{len(tracebacks)} file(s) raised: {list(tracebacks.items())[:3]}"
    # No damaged file is taken for an image (the deep one is refused, not read flat).
    assert all(r[1] == "sentence" for r in results.values())


def test_damaged_sentences_name_the_file_and_what_to_do(damaged) -> None:
    for path in damaged:
        with pytest.raises(InputError) as info:
            read_image(path)
        text = str(info.value)
        assert f"'{path}'" in text, text
        assert any(w in text for w in ("re-render or re-copy", "flatten", "write it again")), text


def test_deep_image_is_refused(damaged) -> None:
    deep = next(p for p in damaged if "deep_tile" in p.name)
    with pytest.raises(InputError, match="is a deep image .*flatten it first"):
        read_image(deep)


def test_error_text_that_is_not_utf8() -> None:
    raw = b"EXR Error (x.exr): bad channel '\xff\x1e'\nEXR Error (x.exr): bad channel '\xff\x1e'"

    def get() -> str:
        return raw.decode("utf-8")  # raises as OpenImageIO's binding does

    text = oiio_error(get)
    assert "\ufffd" in text
    assert clean_text(text, "x.exr") == "bad channel ' '"  # once, no prefix, no control bytes


def test_non_utf8_channel_names_and_metadata(tmp_path) -> None:
    """A header whose strings are not UTF-8 (bytes patched in a valid file)."""
    write_image(tmp_path / "a.exr", np.ones((4, 4, 3), np.float32), ["R", "G", "QQ"],
                metadata={"comments": "abcd"})
    data = (tmp_path / "a.exr").read_bytes().replace(b"QQ\x00", b"Q\xff\x00")
    (tmp_path / "b.exr").write_bytes(data.replace(b"abcd", b"a\xfe\xffd"))
    assert read_image(tmp_path / "b.exr", "R,G").pixels.shape == (4, 4, 2)
    with pytest.raises(InputError, match=r"has no channel 'B'; it has: R, G, Q\ufffd\.") as info:
        read_image(tmp_path / "b.exr", "RGB")
    str(info.value).encode("utf-8")  # printable, no lone surrogates


def _write_windows(path, data, x, y, full_w, full_h) -> None:
    spec = oiio.ImageSpec(data.shape[1], data.shape[0], data.shape[2], "half")
    spec.x, spec.y, spec.full_width, spec.full_height = x, y, full_w, full_h
    out = oiio.ImageOutput.create(str(path))
    assert out.open(str(path), spec) and out.write_image(data)
    out.close()


def test_absurd_windows_are_refused_before_allocating(tmp_path) -> None:
    """A one-pixel data window inside a display window the reader would have to fill."""
    _write_windows(tmp_path / "wide.exr", np.ones((1, 1, 3), np.float32), 0, 0, MAX_SIDE + 1, 4)
    for call in (probe_image, read_image):
        with pytest.raises(InputError, match=rf"claims a display window of {MAX_SIDE + 1}x4"):
            call(tmp_path / "wide.exr")
    _write_windows(tmp_path / "big.exr", np.ones((1, 1, 3), np.float32), 0, 0, 3000, 3000)
    old = oiio.get_int_attribute("limits:imagesize_MB")
    oiio.attribute("limits:imagesize_MB", 64)
    try:
        with pytest.raises(InputError, match=r"would need 0\.1 GiB to read .* limit of 0\.1 GiB"):
            read_image(tmp_path / "big.exr")
        assert read_image(tmp_path / "big.exr", "R").pixels.shape == (3000, 3000, 1)
    finally:
        oiio.attribute("limits:imagesize_MB", old)


def test_only_the_requested_channels_are_read(tmp_path) -> None:
    pixels = np.arange(2 * 3 * 6, dtype=np.float32).reshape(2, 3, 6)
    names = ["R", "G", "B", "A", "depth.Z", "spare.Y"]
    write_image(tmp_path / "m.exr", pixels, names, dtype="float")
    frame = read_image(tmp_path / "m.exr", "depth.Z,R")
    assert frame.channels == ("depth.Z", "R")
    np.testing.assert_array_equal(frame.pixels, pixels[..., [4, 0]])


def test_folder_and_empty_file_are_sentences(tmp_path) -> None:
    (tmp_path / "empty.exr").write_bytes(b"")
    with pytest.raises(InputError, match=r"'.*empty\.exr' \(frame 3\) is empty \(0 bytes\)"):
        read_image(tmp_path / "empty.exr", number=3)
    with pytest.raises(InputError, match="is a folder, not an image file"):
        read_image(tmp_path)
    with pytest.raises(InputError, match=r"The mask '.*' is a folder"):
        read_mask(tmp_path)


# ------------------------------------------------------------------------- valid corpus


def _openexr_display_window(path: Path) -> np.ndarray:
    """The display window composed from the ``openexr`` bindings' data window."""
    openexr = pytest.importorskip("OpenEXR")
    with openexr.File(str(path)) as f:
        header, channels = f.header(), f.channels()
        (dx0, dy0), (dx1, dy1) = header["dataWindow"]
        (wx0, wy0), (wx1, wy1) = header["displayWindow"]
        data = next(iter(channels.values())).pixels.astype(np.float32)
    data = data[..., None] if data.ndim == 2 else data
    out = np.zeros((wy1 - wy0 + 1, wx1 - wx0 + 1, data.shape[2]), np.float32)
    for y in range(max(wy0, dy0), min(wy1, dy1) + 1):
        for x in range(max(wx0, dx0), min(wx1, dx1) + 1):
            out[y - wy0, x - wx0] = data[y - dy0, x - dx0]
    return out


VALID = [
    *[f"t{i:02d}.exr" for i in range(1, 17)],
    "AllHalfValues.exr", "BrightRings.exr", "BrightRingsNanInf.exr", "GammaChart.exr",
    "GrayRampsDiagonal.exr", "GrayRampsHorizontal.exr", "RgbRampsDiagonal.exr",
    "SquaresSwirls.exr", "WideColorGamut.exr", "WideFloatRange.exr", "stripes.exr",
]


@pytest.mark.parametrize("name", VALID)
def test_valid_files_read_as_openexr_reads_them(name) -> None:
    path = next(p for p in _files("exr-valid", ".exr") if p.name == name)
    expected = _openexr_display_window(path)
    got = read_image(path, nonfinite="keep").pixels
    assert got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)  # NaN == NaN for assert_array_equal


def test_valid_corpus_is_all_listed() -> None:
    assert sorted(p.name for p in _files("exr-valid", ".exr")) == sorted(VALID)


@pytest.mark.parametrize(("name", "count"), [("AllHalfValues.exr", 2048), ("BrightRingsNanInf.exr", 12)])
def test_nan_and_inf_are_refused_by_design(name, count) -> None:
    path = CORPUS / "exr-valid" / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    with pytest.raises(InputError, match=rf"has {count} pixel\(s\) with NaN or infinite values.*--nonfinite zero"):
        read_image(path)
    fixed = read_image(path, nonfinite="zero").pixels
    assert np.isfinite(fixed).all()


def test_windows_pixel_aspect_and_luminance() -> None:
    files = {p.name: p for p in _files("exr-valid", ".exr")}
    # t09-t12: the data window misses the display window: a black frame of the display size.
    assert read_image(files["t09.exr"]).pixels.shape == (300, 200, 3)
    assert read_image(files["t09.exr"]).pixels.max() == 0
    # t13/t14: one pixel in common, at the display window's upper left / lower right.
    t13, t14 = read_image(files["t13.exr"]).pixels, read_image(files["t14.exr"]).pixels
    assert np.count_nonzero(t13.any(axis=2)) == 1 and t13[0, 0].any()
    assert np.count_nonzero(t14.any(axis=2)) == 1 and t14[-1, -1].any()
    assert read_image(files["t15.exr"]).metadata["PixelAspectRatio"] == pytest.approx(1.5)
    assert read_image(files["t16.exr"]).metadata["PixelAspectRatio"] == pytest.approx(2 / 3, 1e-6)
    # A luminance-only plate reads as grey RGB; a lone G channel is refused with a sentence.
    grey = read_image(files["GrayRampsHorizontal.exr"], "RGB")
    assert grey.channels == ("R", "G", "B")
    np.testing.assert_array_equal(grey.pixels[..., 0], grey.pixels[..., 2])
    np.testing.assert_array_equal(grey.pixels[..., 1], read_image(files["GrayRampsHorizontal.exr"]).pixels[..., 0])
    with pytest.raises(InputError, match=r"has no channel 'R'; it has: G\."):
        read_image(files["WideFloatRange.exr"], "RGB")


def test_malformed_carried_attributes_are_dropped() -> None:
    from vfxmatte.io.image_checks import carried_value

    assert carried_value("framesPerSecond", (24000, 1001)) == (24000, 1001)
    for bad in ((24, 0), (24,), "24", (24.5, "x")):
        assert carried_value("framesPerSecond", bad) is None
    assert carried_value("smpte:TimeCode", (1, 2, 3)) is None
    assert carried_value("PixelAspectRatio", float("inf")) is None
    assert carried_value("PixelAspectRatio", 2) == 2.0
    assert carried_value("comments", ("a", "b")) is None and carried_value("owner", "me") == "me"
