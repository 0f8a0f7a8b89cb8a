"""Every bad input of ``vfxmatte matte`` is one sentence (exit 2) or a warning, never a
traceback: the cases of issue 15's bad-input table, and the OpenEXR project's damaged
corpus as plates and as masks, all through :func:`vfxmatte.cli.main` in this process."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from vfxmatte.cli import main
from vfxmatte.io.image import write_image

CORPUS = Path(__file__).resolve().parents[3] / "shared" / "corpus"
H, W = 24, 32


@pytest.fixture(scope="module")
def shot(tmp_path_factory) -> Path:
    """A 3-frame linear plate, its keyframe mask and a gallery of bad masks and files."""
    root = tmp_path_factory.mktemp("bad")
    yy, xx = np.mgrid[0:H, 0:W] / W
    plate = np.stack([xx, yy, 0.5 + 0.3 * np.sin(9 * xx)], 2).astype(np.float32)
    for f in (1001, 1002, 1003):
        write_image(root / f"p.{f}.exr", np.roll(plate, f - 1001, axis=1), list("RGB"))
    m = np.zeros((H, W, 1), np.float32)
    m[6:18, 8:24] = 1
    write_image(root / "m.png", m, ["Y"], dtype="uint8")
    write_image(root / "ones.png", np.ones_like(m), ["Y"], dtype="uint8")
    write_image(root / "zeros.png", np.zeros_like(m), ["Y"], dtype="uint8")
    write_image(root / "small.png", m[::2, ::2], ["Y"], dtype="uint8")
    write_image(root / "tall.png", np.ones((40, 10, 1), np.float32), ["Y"], dtype="uint8")
    colour = np.concatenate([np.repeat(xx[..., None], 2, 2), m], 2).astype(np.float32)
    write_image(root / "colour.png", colour, list("RGB"), dtype="uint8")
    for name, value in (("nan", np.nan), ("inf", np.inf)):
        bad = m.copy()
        bad[3, 4] = value
        write_image(root / f"{name}.exr", bad, ["Y"], dtype="float")
    for f in (1001, 1002, 1003):
        g = m.copy()
        g[5, 5] = np.nan if f == 1002 else g[5, 5]
        write_image(root / f"g.{f}.exr", g, ["Y"], dtype="float")
    write_image(root / "grey.1001.exr", plate[..., :1], ["Y"])
    for n in (4, 11, 12):
        for f in (1001, 1002, 1003):
            rng = np.random.default_rng(f)
            write_image(root / f"t{n}.{f}.exr", rng.random((n, n, 3), np.float32), list("RGB"))
        small = np.zeros((n, n, 1), np.float32)
        small[n // 4 : n // 4 + max(1, n // 2), n // 4 : n // 4 + max(1, n // 2)] = 1
        write_image(root / f"t{n}m.png", small, ["Y"], dtype="uint8")
    for f in (1001, 1002, 1003):  # frame 1002 of another size
        frame = np.zeros((H + 8, W, 3), np.float32) if f == 1002 else plate
        write_image(root / f"sz.{f}.exr", frame, list("RGB"))
    (root / "somedir").mkdir()
    (root / "noframes").mkdir()
    (root / "notvideo.mp4").write_text("this is not a video\n")
    (root / "empty.mov").write_bytes(b"")
    (root / "empty.1001.exr").write_bytes(b"")
    (root / "text.ocio").write_text("hello\n")
    return root


def _run(shot: Path, args: list[str], caplog, monkeypatch, capsys) -> tuple[int, str, str]:
    monkeypatch.chdir(shot)
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        code = main(["matte", *args, "-o", "out/o.####.exr", "--set", "engine.progress=false",
                     "--overwrite"])
    return code, capsys.readouterr().err, " ".join(r.getMessage() for r in caplog.records)


P = "p.####.exr"
# (case, arguments, exit code, text expected in the error (code 2) or in a warning (code 0))
CASES = [
    ("keyframes entry without a path", [P, "-m", "m.png", "--keyframes", "1003="], 2,
     "The keyframes entry '1003=' names no mask file; write FRAME=PATH"),
    ("keyframes entry with a missing file", [P, "-m", "m.png", "--keyframes", "1003=nope.png"], 2,
     "The mask 'nope.png' (frame 1003) does not exist."),
    ("keyframe outside the plate", [P, "-m", "m.png", "--key-frame", "5000"], 2,
     "The keyframe 5000 is not among the frames to process (1001-1003); give --key-frame"),
    ("mask with a NaN pixel", [P, "-m", "nan.exr"], 2,
     "The mask 'nan.exr' (frame 1001) has 1 pixel(s) with NaN or infinite values (first at x=4, "
     "y=3); fix the mask, or pass --nonfinite zero"),
    ("mask with an inf pixel", [P, "-m", "inf.exr"], 2, "The mask 'inf.exr' (frame 1001) has 1"),
    ("mask with a NaN pixel, --nonfinite zero", [P, "-m", "nan.exr", "--nonfinite", "zero"], 0,
     "read 1 NaN/inf pixel(s) as 0"),
    ("given mask sequence with a NaN frame", [P, "-m", "g.####.exr", "--propagate.backend",
     "given"], 2, "The mask 'g.1002.exr' (frame 1002) has 1 pixel(s) with NaN"),
    ("given mask sequence, --nonfinite zero", [P, "-m", "g.####.exr", "--propagate.backend",
     "given", "--nonfinite", "zero"], 0, "The mask 'g.1002.exr' (frame 1002): read 1 NaN/inf"),
    ("mask is a folder", [P, "-m", "somedir"], 2,
     "The mask 'somedir' (frame 1001) is a folder, not an image file"),
    ("mask all one", [P, "-m", "ones.png"], 0,
     "The mask 'ones.png' (frame 1001) covers the whole frame"),
    ("keyframe mask all one", [P, "-m", "m.png", "--keyframes", "1003=ones.png"], 0,
     "The mask 'ones.png' (frame 1003) covers the whole frame"),
    ("mask all zero", [P, "-m", "zeros.png"], 2,
     "The mask 'zeros.png' (frame 1001) is empty (no pixel above 0.5; largest value 0)"),
    ("mask of another size", [P, "-m", "small.png"], 2,
     "The mask 'small.png' is 16x12 but the plate is 32x24; give a mask of the plate's size, or "
     "pass --mask-resize"),
    ("mask of another aspect ratio, resized", [P, "-m", "tall.png", "--mask-resize"], 0,
     "has another aspect ratio than the plate (32x24): --mask-resize stretches it"),
    ("mask in colour", [P, "-m", "colour.png"], 0, "is a colour image (R, G and B differ)"),
    ("mask channel unknown", [P, "-m", "m.png", "--mask-channel", "Z"], 2,
     "The mask 'm.png' has no channel 'Z'; it has: Y."),
    ("mask given as a pattern without given", [P, "-m", "g.####.exr"], 2,
     "The mask 'g.####.exr' is a pattern, but only propagate.backend=given reads a mask per frame"),
    ("frame of another size mid-shot", ["sz.####.exr", "-m", "m.png", "--propagate.backend",
     "static"], 2, "Frame 1002 ('sz.1002.exr') is 32x32 but the shot's first frame is 32x24"),
    ("plate folder without frames", ["noframes/p.####.exr", "-m", "m.png"], 2,
     "No file matches 'noframes/p.####.exr'; check the path and the frame token"),
    ("plate is a folder", [".", "-m", "m.png"], 2,
     "error: '.' is a folder; give a pattern of the frames inside it, e.g. "),
    ("plate pattern misspelt", ["q.####.exr", "-m", "m.png"], 2,
     "p.####.exr (1001-1003)"),
    ("frames outside the plate", [P, "-m", "m.png", "--frames", "2001-2010"], 2,
     "None of the frames asked for (2001-2010) is on disk for 'p.####.exr', which has frames "
     "1001-1003"),
    ("frames partly outside", [P, "-m", "m.png", "--frames", "1002-1005"], 2,
     "2 frame(s) of 'p.####.exr' are missing: 1004-1005 (on disk: 1001-1003)"),
    ("unknown colourspace", [P, "-m", "m.png", "--colourspace", "ACEScgg"], 2,
     "Unknown colourspace 'ACEScgg' in the OCIO config 'ocio://default'. Did you mean 'ACEScg'?"),
    ("OCIO config that is not one", [P, "-m", "m.png", "--ocio", "text.ocio"], 2,
     "Cannot read the OCIO config 'text.ocio'"),
    ("video that is not a video", ["notvideo.mp4", "-m", "m.png"], 2,
     "Could not decode video file 'notvideo.mp4'"),
    ("empty video file", ["empty.mov", "-m", "m.png"], 2,
     "The video file 'empty.mov' is empty (0 bytes)"),
    ("empty EXR", ["empty.1001.exr", "-m", "m.png"], 2,
     "The image 'empty.1001.exr' is empty (0 bytes)"),
    ("one plate channel", ["grey.1001.exr", "-m", "m.png", "--channels", "Y"], 2,
     "The plate 'grey.1001.exr' is read as 1 channel(s) (Y); vfxmatte mattes colour plates"),
    ("unknown plate channel", [P, "-m", "m.png", "--channels", "beauty"], 2,
     "'p.1001.exr' has no channel 'beauty'; it has: R, G, B."),
    ("4x4 plate, flow", ["t4.####.exr", "-m", "t4m.png", "--propagate.backend", "flow"], 2,
     "The plate 't4.####.exr' is 4x4 pixels; propagate.backend=flow needs at least 12x12"),
    ("11x11 plate, flow", ["t11.####.exr", "-m", "t11m.png", "--propagate.backend", "flow"], 2,
     "is 11x11 pixels"),
]


@pytest.mark.parametrize(("case", "args", "code", "text"), CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_sentence(shot, caplog, monkeypatch, capsys, case, args, code, text):
    got, err, warnings = _run(shot, args, caplog, monkeypatch, capsys)
    assert got == code, err
    if code == 2:
        assert err.startswith("vfxmatte matte: error: ") and err.count("\n") == 1, err
        assert text in err, err
    else:
        assert text in warnings, warnings


@pytest.mark.parametrize("args", [
    ["t12.####.exr", "-m", "t12m.png"],  # the smallest plate flow takes
    ["t4.####.exr", "-m", "t4m.png", "--propagate.backend", "static"],
    ["grey.1001.exr", "-m", "m.png"],  # luminance-only EXR: read as grey
    ["grey.1001.exr", "-m", "m.png", "--channels", "Y,Y,Y"],
], ids=["12x12 flow", "4x4 static", "luminance plate", "one channel three times"])
def test_edge_inputs_that_work(shot, caplog, monkeypatch, capsys, args) -> None:
    got, err, _ = _run(shot, args, caplog, monkeypatch, capsys)
    assert got == 0, err


def test_damaged_corpus_through_the_cli(tmp_path, monkeypatch, capsys) -> None:
    """Every damaged EXR as the plate, then as the mask: exit 2 and one sentence each."""
    folder = CORPUS / "exr-damaged"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found (../shared beside the repository)")
    files = sorted(p for p in folder.iterdir() if p.name not in ("LICENSE", "README.rst"))
    plate = np.full((16, 16, 3), 0.5, np.float32)
    write_image(tmp_path / "p.1001.exr", plate, list("RGB"))
    mask = np.zeros((16, 16, 1), np.float32)
    mask[4:12, 4:12] = 1
    write_image(tmp_path / "m.png", mask, ["Y"], dtype="uint8")
    monkeypatch.chdir(tmp_path)
    out = ["-o", "out/o.####.exr", "--set", "engine.progress=false"]
    for source in files:
        link = tmp_path / (source.name + ".exr")
        link.symlink_to(source)
        for args in ([str(link), "-m", "m.png"], ["p.1001.exr", "-m", str(link)]):
            assert main(["matte", *args, *out]) == 2, source.name
            err = capsys.readouterr().err
            assert err.startswith("vfxmatte matte: error: ") and err.count("\n") == 1, err
            assert source.name in err, err
    assert not (tmp_path / "out").exists()


def test_valid_corpus_through_the_cli(tmp_path, monkeypatch, capsys) -> None:
    """Display/data window cases matte at the display window's size; NaN/Inf plates and a
    lone G channel are refused by design (the 800x800 charts are read in tests/io only)."""
    folder = CORPUS / "exr-valid"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found (../shared beside the repository)")
    from vfxmatte.io.image import probe_image, read_image

    monkeypatch.chdir(tmp_path)
    refused = {"AllHalfValues.exr": "NaN or infinite values", "BrightRingsNanInf.exr":
               "NaN or infinite values", "WideFloatRange.exr": "has no channel 'R'; it has: G."}
    names = [f"t{i:02d}.exr" for i in range(1, 17)] + ["stripes.exr", *refused]
    for name in names:
        plate = probe_image(folder / name)
        mask = np.zeros((plate.height, plate.width, 1), np.float32)
        mask[plate.height // 4 : plate.height // 2, plate.width // 4 : plate.width // 2] = 1
        write_image(tmp_path / "m.png", mask, ["Y"], dtype="uint8")
        code = main(["matte", str(folder / name), "-m", "m.png", "-o", f"{name}.####.exr",
                     "--set", "engine.progress=false"])
        err = capsys.readouterr().err
        if name in refused:
            assert code == 2 and refused[name] in err, err
        else:
            assert code == 0, err
            (written,) = tmp_path.glob(f"{name}.*.exr")  # numbered as the file name says
            alpha = read_image(written, "A").pixels
            assert alpha.shape[:2] == (plate.height, plate.width), name
