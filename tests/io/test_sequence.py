from __future__ import annotations

import os

import pytest

from vfxmatte.errors import ConfigError, InputError, MissingFramesError
from vfxmatte.io.sequence import FramePattern, compress_frames, parse_frame_range, resolve_frames


@pytest.mark.parametrize(
    ("pattern", "frame", "expected"),
    [
        ("shot.####.exr", 1001, "shot.1001.exr"),
        ("shot.####.exr", 7, "shot.0007.exr"),
        ("shot.%04d.exr", 42, "shot.0042.exr"),
        ("shot.%d.exr", 42, "shot.42.exr"),
        ("shot.@@@@.exr", 3, "shot.0003.exr"),
        ("shot.$F4.exr", 12, "shot.0012.exr"),
        ("shot.$F.exr", 12, "shot.12.exr"),
        ("/a/b#c/shot_v2.##.dpx", 5, "/a/b#c/shot_v2.05.dpx"),
        ("shot.####.exr", 12345, "shot.12345.exr"),
        ("shot.####.exr", -3, "shot.-0003.exr"),
    ],
)
def test_pattern_forms(pattern: str, frame: int, expected: str) -> None:
    assert FramePattern.parse(pattern).path(frame) == expected


def test_pattern_conversions() -> None:
    p = FramePattern.parse("plates/shot.$F4.exr")
    assert p.as_printf() == "plates/shot.%04d.exr"
    assert p.as_hashes() == "plates/shot.####.exr"


def test_bare_path_is_one_frame(tmp_path) -> None:
    f = tmp_path / "shot.1001.exr"
    f.write_bytes(b"x")
    p = FramePattern.parse(str(f))
    assert p.is_single and p.single_frame == 1001
    assert p.path(1001) == str(f)
    assert resolve_frames(p) == [1001]
    assert FramePattern.parse(str(tmp_path / "plate.exr")).single_frame == 0


def test_two_tokens_rejected() -> None:
    with pytest.raises(ConfigError, match="has 2 frame tokens"):
        FramePattern.parse("shot.####.%04d.exr")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1001-1005", [1001, 1002, 1003, 1004, 1005]),
        ("1001-1010x3", [1001, 1004, 1007, 1010]),
        ("1001,1005,1010-1012", [1001, 1005, 1010, 1011, 1012]),
        ("7", [7]),
        (" 1 - 3 , 2 ", [1, 2, 3]),
        ("-2-1", [-2, -1, 0, 1]),
    ],
)
def test_frame_ranges(text: str, expected: list[int]) -> None:
    assert parse_frame_range(text) == expected


@pytest.mark.parametrize("text", ["1001-", "abc", "10-5", "1-10x0", "1..5"])
def test_bad_frame_ranges(text: str) -> None:
    with pytest.raises(ConfigError, match="frame range"):
        parse_frame_range(text)


def test_compress_frames() -> None:
    assert compress_frames([1, 2, 3, 7, 9, 10]) == "1-3, 7, 9-10"
    assert compress_frames([]) == ""


def _touch(folder, names) -> None:
    for name in names:
        (folder / name).write_bytes(b"x")


def test_discover_range_on_disk(tmp_path) -> None:
    _touch(tmp_path, [f"shot.{f:04d}.exr" for f in range(1001, 1006)])
    _touch(tmp_path, ["shot.101.exr", "other.1001.exr", "shot.1003.exr.tmp"])
    p = FramePattern.parse(str(tmp_path / "shot.####.exr"))
    assert p.frames_on_disk() == [1001, 1002, 1003, 1004, 1005]
    assert resolve_frames(p) == [1001, 1002, 1003, 1004, 1005]
    assert resolve_frames(p, "1002-1004x2") == [1002, 1004]


def test_missing_frames_reported_by_number(tmp_path) -> None:
    _touch(tmp_path, [f"shot.{f:04d}.exr" for f in (1001, 1002, 1005, 1009)])
    p = FramePattern.parse(str(tmp_path / "shot.####.exr"))
    with pytest.raises(MissingFramesError, match=r"5 frame\(s\) .* missing: 1003-1004, 1006-1008") as e:
        resolve_frames(p)
    assert e.value.frames == [1003, 1004, 1006, 1007, 1008]
    with pytest.raises(MissingFramesError, match="missing: 1010"):
        resolve_frames(p, "1009-1010")


def test_pattern_matching_nothing(tmp_path) -> None:
    p = FramePattern.parse(str(tmp_path / "nope" / "shot.####.exr"))
    with pytest.raises(InputError, match=r"No file matches .*shot.####.exr.*does not exist"):
        resolve_frames(p)
    p = FramePattern.parse(os.path.join(str(tmp_path), "shot.####.exr"))
    with pytest.raises(InputError, match="check the path and the frame token"):
        resolve_frames(p)
