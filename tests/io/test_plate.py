from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from vfxmatte.errors import InputError, MissingFramesError
from vfxmatte.io.image import write_image
from vfxmatte.io.mask import read_mask
from vfxmatte.io.plate import SequencePlate, VideoPlate, open_plate
from vfxmatte.io.video_write import write_video


def _sequence(folder, frames, size=(24, 32)) -> str:
    for f in frames:
        img = np.full((*size, 3), f / 2000.0, np.float32)
        write_image(folder / f"shot.{f:04d}.exr", img, list("RGB"),
                    metadata={"framesPerSecond": (25, 1)})
    return str(folder / "shot.####.exr")


def test_sequence_plate_iterates_lazily_in_order(tmp_path) -> None:
    pattern = _sequence(tmp_path, range(1001, 1006))
    plate = open_plate(pattern)
    assert isinstance(plate, SequencePlate) and plate.frames == [1001, 1002, 1003, 1004, 1005]
    it = iter(plate)
    first = next(it)
    assert first.number == 1001 and first.pixels.shape == (24, 32, 3)
    assert [f.number for f in it] == [1002, 1003, 1004, 1005]
    assert plate.read(1003).pixels[0, 0, 0] == pytest.approx(1003 / 2000.0, abs=1e-3)
    info = plate.info
    assert (info.width, info.height, info.fps) == (32, 24, "25/1")


def test_sequence_plate_ranges_and_missing(tmp_path) -> None:
    pattern = _sequence(tmp_path, [1001, 1002, 1004])
    assert open_plate(pattern, "1001-1002").frames == [1001, 1002]
    with pytest.raises(MissingFramesError, match="missing: 1003"):
        open_plate(pattern)
    plate = open_plate(pattern, "1001-1002")
    with pytest.raises(MissingFramesError, match="Frame 1004 is not in the plate"):
        plate.read(1004)


def test_video_plate_numbering(tmp_path) -> None:
    frames = [np.full((32, 48, 3), i / 20.0, np.float32) for i in range(12)]
    write_video(tmp_path / "clip.mp4", frames, fps=24, codec="libx264", crf=0)
    plate = open_plate(tmp_path / "clip.mp4", first_frame=1001)
    assert isinstance(plate, VideoPlate) and plate.frames[0] == 1001 and len(plate) == 12
    assert plate.info.fps == "24/1"
    got = [f.number for f in open_plate(tmp_path / "clip.mp4", "1003-1005", first_frame=1001)]
    assert got == [1003, 1004, 1005]
    assert plate.read(1006).pixels.mean() == pytest.approx(5 / 20.0, abs=0.02)
    with pytest.raises(MissingFramesError, match="past the ends"):
        open_plate(tmp_path / "clip.mp4", "1010-1020", first_frame=1001)
    with pytest.raises(InputError, match="does not exist"):
        open_plate(tmp_path / "gone.mov")


def test_reading_a_long_sequence_does_not_grow_memory(tmp_path) -> None:
    pattern = _sequence(tmp_path, range(1, 301), size=(64, 64))
    frame_bytes = 64 * 64 * 3 * 4
    tracemalloc.start()
    for i, _frame in enumerate(open_plate(pattern)):
        if i == 20:
            _, peak_early = tracemalloc.get_traced_memory()
            tracemalloc.reset_peak()
    _, peak_late = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # 280 more frames must not add more than a couple of frames' worth of memory.
    assert peak_late < peak_early + 4 * frame_bytes


def test_read_mask_channels_sizes_and_errors(tmp_path) -> None:
    m = np.zeros((24, 32, 1), np.float32)
    m[5:15, 8:20] = 1.0
    write_image(tmp_path / "m.png", np.repeat(m, 3, axis=2), list("RGB"), dtype="uint8")
    got = read_mask(tmp_path / "m.png", shape=(24, 32))
    assert got.dtype == np.float32 and got.sum() == 120
    rgba = np.concatenate([np.ones((24, 32, 3), np.float32), m], axis=2)
    write_image(tmp_path / "roto.exr", rgba, list("RGBA"))
    assert read_mask(tmp_path / "roto.exr").sum() == 120  # alpha of RGBA roto
    with pytest.raises(InputError, match=r"is 32x24 but the plate is 64x48; .*--mask-resize"):
        read_mask(tmp_path / "m.png", shape=(48, 64))
    assert read_mask(tmp_path / "m.png", shape=(48, 64), resize=True).shape == (48, 64)
    write_image(tmp_path / "empty.png", np.zeros((24, 32, 3), np.float32), list("RGB"))
    with pytest.raises(InputError, match="is empty"):
        read_mask(tmp_path / "empty.png")
    with pytest.raises(InputError, match="has no channel 'Q'"):
        read_mask(tmp_path / "m.png", channel="Q")
