"""Tests of vfxmatte.io.video: probe, frame-accurate reads, writes, errors.

Every file is generated here: tiny 64x48 clips whose frame ``i`` carries ``i`` in
its red level (``8 * i / 255``) and a block in green, so a decoded frame tells
which frame it is even through a lossy 8-bit YUV round trip (error <= 3 levels).
"""

from __future__ import annotations

import inspect
import logging
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from vfxmatte.errors import ConfigError, InputError, MissingFramesError
from vfxmatte.io.video import VideoInfo, probe_video, read_video
from vfxmatte.io.video_write import write_video

H, W, N = 48, 64, 30
TOLERANCE = 3.0 / 255.0  # 8-bit YUV <-> RGB round trip, in [0,1] units


def pattern(i: int) -> np.ndarray:
    """Frame ``i``: ``H x W x 3`` float32 in [0,1]; R = 8i/255, a G block of 1 - 8i/255."""
    image = np.empty((H, W, 3), np.float32)
    image[..., 0] = 8 * i / 255
    image[..., 1] = 0.25
    image[:24, :32, 1] = 1 - 8 * i / 255
    image[..., 2] = 0.5
    return image


def which(pixels: np.ndarray) -> int:
    """The frame index a decoded :func:`pattern` frame carries."""
    return int(round(float(pixels[..., 0].mean()) * 255 / 8))


def gradient(i: int) -> np.ndarray:
    """A smooth ramp (values between the 8-bit levels) shifted by ``i``."""
    ramp = np.linspace(0.1, 0.9, W, dtype=np.float32) + 0.001 * i
    return np.repeat(np.repeat(ramp[None, :, None], H, axis=0), 3, axis=2)


@pytest.fixture(scope="module")
def clips(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("video")
    paths = {
        "mp4": root / "plate.mp4",  # x264, a keyframe every 5 frames, 24 fps
        "mkv": root / "plate.mkv",  # x264 in mkv (no frame count stored), 5 fps
        "mov": root / "plate.mov",  # ProRes 422 HQ, 10-bit
    }
    # qp 0 is lossless in YUV; B-frames make decode order differ from display order.
    write_video(paths["mp4"], (pattern(i) for i in range(N)), 24, pix_fmt="yuv444p",
                options={"qp": "0", "g": "5", "bf": "2"}, timecode="01:00:00:00")
    write_video(paths["mkv"], (pattern(i) for i in range(N)), 5, pix_fmt="yuv444p",
                options={"qp": "0", "g": "4", "bf": "2"})
    write_video(paths["mov"], (gradient(i) for i in range(8)), Fraction(24000, 1001),
                codec="prores_ks", options={"profile": "3"}, timecode="00:59:59:12")
    return paths


def check_frame(frame, number: int, index: int | None = None) -> None:
    index = number if index is None else index
    assert frame.number == number
    assert frame.pixels.shape == (H, W, 3)
    assert frame.pixels.dtype == np.float32
    assert frame.channels == ("R", "G", "B")
    assert which(frame.pixels) == index
    assert np.abs(frame.pixels - pattern(index)).max() <= TOLERANCE


# ------------------------------------------------------------------------ probe


def test_probe_reports_size_rate_count_and_codec(clips: dict[str, Path]) -> None:
    info = probe_video(clips["mp4"])
    assert isinstance(info, VideoInfo)
    assert (info.width, info.height, info.frame_count) == (W, H, N)
    assert info.fps == Fraction(24) and isinstance(info.fps, Fraction)
    assert (info.codec, info.pix_fmt, info.bit_depth) == ("h264", "yuv444p", 8)
    assert info.duration == pytest.approx(N / 24)


def test_probe_counts_frames_when_the_container_does_not_store_them(clips) -> None:
    info = probe_video(clips["mkv"])
    assert (info.frame_count, info.fps, info.codec) == (N, Fraction(5), "h264")


def test_probe_prores_is_10_bit_ntsc_rate(clips) -> None:
    info = probe_video(clips["mov"])
    assert (info.codec, info.pix_fmt, info.bit_depth) == ("prores", "yuv422p10le", 10)
    assert info.fps == Fraction(24000, 1001) and info.frame_count == 8


# ------------------------------------------------------------------------- read


def test_read_all_frames_in_order(clips) -> None:
    frames = list(read_video(clips["mp4"]))
    assert len(frames) == N
    for i, frame in enumerate(frames):
        check_frame(frame, i)
        assert 0.0 <= frame.pixels.min() and frame.pixels.max() <= 1.0
    meta = frames[0].metadata
    assert meta["framesPerSecond"] == "24/1"
    assert meta["oiio:ColorSpace"] == "sRGB"
    assert meta["vfxmatte:source"] == str(clips["mp4"])
    assert frames[0].path == str(clips["mp4"])


@pytest.mark.parametrize("wanted", [[5, 6, 7], [0], [29], [3, 20], [4, 5, 24, 28]])
def test_read_ranges_gives_exactly_the_requested_frames(clips, wanted) -> None:
    frames = list(read_video(clips["mp4"], wanted))
    assert [f.number for f in frames] == wanted
    for frame in frames:
        check_frame(frame, frame.number)


def test_read_numbers_frames_from_first_frame(clips) -> None:
    frames = list(read_video(clips["mp4"], [1029, 1001, 1010, 1010], first_frame=1001))
    assert [f.number for f in frames] == [1001, 1010, 1029]
    for frame in frames:
        check_frame(frame, frame.number, frame.number - 1001)


@pytest.mark.parametrize("wanted", [[29], [3, 20], [2, 13, 27, 28], [17]])
def test_far_frames_are_reached_by_seeking(clips, wanted, caplog) -> None:
    # At 5 fps "far" is more than 10 frames ahead; keyframes every 4 frames.
    caplog.set_level(logging.DEBUG, logger="vfxmatte.io.video")
    frames = list(read_video(clips["mkv"], wanted))
    assert [f.number for f in frames] == wanted
    for frame in frames:
        check_frame(frame, frame.number)
    assert any("seeking" in record.getMessage() for record in caplog.records)


def test_all_intra_prores_seek_and_16_bit_precision(clips) -> None:
    frames = list(read_video(clips["mov"], [0, 6]))
    assert [f.number for f in frames] == [0, 6]
    for frame in frames:
        assert frame.pixels.dtype == np.float32
        # 10-bit 4:2:2 of a grey ramp comes back within ~1 10-bit code ...
        assert np.abs(frame.pixels - gradient(frame.number)).max() < 2.0 / 1023
        # ... and not quantised to 8 bits.
        off_grid = np.abs(frame.pixels * 255 - np.round(frame.pixels * 255))
        assert off_grid.max() > 0.1
    raw = next(read_video(clips["mov"], [0], bit_depth_float=False))
    assert raw.pixels.dtype == np.uint16
    np.testing.assert_allclose(raw.pixels / 65535.0, frames[0].pixels, atol=1e-6)


def test_8_bit_integers_round_trip_exactly_with_lossless_rgb(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (H, W, 3), dtype=np.uint8) for _ in range(3)]
    path = tmp_path / "noise.mkv"
    write_video(path, images, 24, codec="libx264rgb", pix_fmt="rgb24", options={"qp": "0"})
    decoded = [f.pixels for f in read_video(path, bit_depth_float=False)]
    assert all(d.dtype == np.uint8 for d in decoded)
    for image, back in zip(images, decoded, strict=True):
        np.testing.assert_array_equal(back, image)


def test_timecode_round_trips(clips) -> None:
    assert probe_video(clips["mp4"]).timecode == "01:00:00:00"
    assert probe_video(clips["mov"]).timecode == "00:59:59:12"
    frame = next(read_video(clips["mov"]))
    assert frame.metadata["smpte:TimeCode"] == "00:59:59:12"
    assert frame.metadata["framesPerSecond"] == "24000/1001"
    assert probe_video(clips["mkv"]).timecode is None


def test_read_is_lazy(clips) -> None:
    frames = read_video(clips["mp4"])
    assert inspect.isgenerator(frames)
    assert next(frames).number == 0
    assert next(frames).number == 1
    frames.close()


# ----------------------------------------------------------------------- errors


def test_frames_past_the_end_raise_before_decoding(clips) -> None:
    with pytest.raises(MissingFramesError, match="plate.mp4") as caught:
        read_video(clips["mp4"], [28, 29, 30, 31])
    assert caught.value.frames == [30, 31]
    with pytest.raises(MissingFramesError) as caught:
        read_video(clips["mp4"], [1000, 1001], first_frame=1001)
    assert caught.value.frames == [1000]


@pytest.mark.parametrize("wanted", [[28, 29, 30], [3, 500], [500]])
def test_frames_past_the_end_are_found_while_decoding_when_the_count_is_not_stored(
    clips, wanted
) -> None:
    # mkv stores no frame count, so the reader finds the end by decoding to it.
    numbers = []
    with pytest.raises(MissingFramesError, match="plate.mkv") as caught:
        for frame in read_video(clips["mkv"], wanted):
            numbers.append(frame.number)
    assert numbers == [n for n in wanted if n < N]
    assert caught.value.frames == [n for n in wanted if n >= N]


def test_truncated_file_raises_input_error(clips, tmp_path) -> None:
    data = clips["mp4"].read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputError, match="cut.mp4") as caught:
        list(read_video(cut))
    assert "Traceback" not in str(caught.value)


def test_garbage_and_missing_files_raise_input_error(tmp_path) -> None:
    garbage = tmp_path / "garbage.mov"
    garbage.write_bytes(np.random.default_rng(1).bytes(4096))
    with pytest.raises(InputError, match="garbage.mov"):
        probe_video(garbage)
    with pytest.raises(InputError, match="garbage.mov"):
        read_video(garbage)
    with pytest.raises(InputError, match="does not exist"):
        probe_video(tmp_path / "nope.mp4")


def test_bad_frame_numbers_raise_input_error(clips) -> None:
    with pytest.raises(InputError, match="integers"):
        read_video(clips["mp4"], [1.5])  # type: ignore[list-item]
    with pytest.raises(InputError, match="no frames"):
        read_video(clips["mp4"], [])


# ------------------------------------------------------------------------ write


def test_write_pads_odd_sizes_for_420(tmp_path) -> None:
    odd = np.full((H - 1, W - 1, 3), 0.5, np.float32)
    info = write_video(tmp_path / "odd.mp4", [odd, odd], 24)
    assert (info.width, info.height, info.pix_fmt) == (W, H, "yuv420p")
    with pytest.raises(InputError, match="even"):
        write_video(tmp_path / "odd2.mp4", [odd], 24, pad_odd=False)
    assert not (tmp_path / "odd2.mp4").exists()


def test_write_accepts_ntsc_rates_and_grey_frames(tmp_path) -> None:
    grey = np.full((H, W), 0.5, np.float32)
    assert write_video(tmp_path / "a.mp4", [grey], 23.976).fps == Fraction(24000, 1001)
    assert write_video(tmp_path / "b.mp4", [grey], "30000/1001").fps == Fraction(30000, 1001)
    info = write_video(tmp_path / "c.mov", [grey], 25, codec="mjpeg")
    assert (info.codec, info.fps) == ("mjpeg", Fraction(25))
    back = next(read_video(tmp_path / "c.mov")).pixels
    assert np.abs(back - 0.5).max() <= TOLERANCE


def test_failed_write_keeps_the_old_file_and_leaves_no_temp(tmp_path) -> None:
    target = tmp_path / "out.mp4"
    target.write_bytes(b"previous render")

    def broken():
        yield pattern(0)
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError):
        write_video(target, broken(), 24)
    with pytest.raises(InputError, match="one size"):
        write_video(target, [pattern(0), pattern(1)[:24]], 24)
    with pytest.raises(InputError, match="no frames"):
        write_video(target, [], 24)
    assert target.read_bytes() == b"previous render"
    assert sorted(os.listdir(tmp_path)) == ["out.mp4"]


def test_write_rejects_unknown_codec_bad_timecode_and_bad_arrays(tmp_path) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'prores_ks'"):
        write_video(tmp_path / "a.mov", [pattern(0)], 24, codec="prores_kx")
    with pytest.raises(ConfigError, match="HH:MM:SS:FF"):
        write_video(tmp_path / "a.mp4", [pattern(0)], 24, timecode="1h")
    with pytest.raises(ConfigError, match="pix_fmt"):
        write_video(tmp_path / "a.mp4", [pattern(0)], 24, pix_fmt="yuv999p")
    with pytest.raises(ConfigError, match="fps"):
        write_video(tmp_path / "a.mp4", [pattern(0)], "fast")
    with pytest.raises(InputError, match="H x W x 3"):
        write_video(tmp_path / "a.mp4", [np.zeros((H, W, 4), np.float32)], 24)
    with pytest.raises(InputError, match="int32"):
        write_video(tmp_path / "a.mp4", [np.zeros((H, W, 3), np.int32)], 24)
    assert os.listdir(tmp_path) == []
