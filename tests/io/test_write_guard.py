"""The write guard: spellings of one file, symlinks, folders read whole, locations."""

from __future__ import annotations

import errno
import os

import pytest

from vfxmatte.errors import DiskFullError, InputOverwriteError, OutputLocationError
from vfxmatte.io import write_guard
from vfxmatte.io.write_guard import PathSet, check_locations, check_no_input_written, check_writes

FRAMES = [1001, 1002]


def _plate(folder) -> PathSet:
    folder.mkdir(parents=True, exist_ok=True)
    for f in FRAMES:
        (folder / f"p.{f}.exr").write_bytes(b"plate")
    reads = PathSet()
    reads.add_on_disk(str(folder / "p.####.exr"), "plate")
    return reads


def _writes(pattern: str, label: str = "rgba output") -> PathSet:
    writes = PathSet()
    writes.add_frames(pattern, FRAMES, label)
    return writes


@pytest.mark.parametrize("token", ["####", "%04d", "@@@@", "$F4"])
def test_every_frame_token_spelling_names_the_plate(tmp_path, token) -> None:
    reads = _plate(tmp_path / "plates")
    with pytest.raises(InputOverwriteError) as info:
        check_no_input_written(_writes(str(tmp_path / "plates" / f"p.{token}.exr")), reads)
    message = str(info.value)
    assert "rgba output frame 1001" in message and "plate frame 1001" in message
    assert "(and 1 more file(s) like it)" in message and "nothing was written" in message


def test_dot_dot_and_a_symlinked_folder_are_the_same_entry(tmp_path) -> None:
    reads = _plate(tmp_path / "plates")
    (tmp_path / "out").mkdir()
    with pytest.raises(InputOverwriteError, match=r"\(the same file\)"):
        check_no_input_written(_writes(str(tmp_path / "out/../plates/p.####.exr")), reads)
    (tmp_path / "alias").symlink_to(tmp_path / "plates", target_is_directory=True)
    with pytest.raises(InputOverwriteError, match="alias/p.1001.exr"):
        check_no_input_written(_writes(str(tmp_path / "alias" / "p.####.exr")), reads)


def test_a_symlinked_input_protects_its_target_and_itself(tmp_path) -> None:
    real = tmp_path / "store"
    _plate(real)
    links = tmp_path / "links"
    links.mkdir()
    for f in FRAMES:
        (links / f"p.{f}.exr").symlink_to(real / f"p.{f}.exr")
    reads = PathSet()
    reads.add_on_disk(str(links / "p.####.exr"), "plate")
    # Renaming onto the link's target replaces the plate the link shows...
    with pytest.raises(InputOverwriteError):
        check_no_input_written(_writes(str(real / "p.####.exr")), reads)
    # ...and renaming onto the link replaces the link.
    with pytest.raises(InputOverwriteError):
        check_no_input_written(_writes(str(links / "p.####.exr")), reads)
    check_no_input_written(_writes(str(tmp_path / "out" / "p.####.exr")), reads)


def test_two_outputs_on_one_file_and_outputs_inside_a_folder_read_whole(tmp_path) -> None:
    writes = _writes(str(tmp_path / "o" / "x.####.exr"))
    writes.add_frames(str(tmp_path / "o" / "x.%04d.exr"), FRAMES, "guidance output")
    with pytest.raises(InputOverwriteError, match="rgba output frame 1001 and the guidance"):
        check_no_input_written(writes, PathSet())
    reads = PathSet()
    reads.add_folder(str(tmp_path / "instances"), "instance-mask folder")
    with pytest.raises(InputOverwriteError, match="inside the instance-mask folder"):
        check_no_input_written(_writes(str(tmp_path / "instances" / "x.####.exr")), reads)


def test_locations_under_a_file_a_folder_in_the_way_and_cleanup(tmp_path) -> None:
    (tmp_path / "file").write_text("not a folder")
    with pytest.raises(OutputLocationError, match=r"'.*file' is a file, not a folder"):
        check_locations(_writes(str(tmp_path / "file" / "sub" / "x.####.exr")))
    (tmp_path / "o" / "x.1002.exr").mkdir(parents=True)
    with pytest.raises(OutputLocationError, match="a folder of that name is where the frame"):
        check_locations(_writes(str(tmp_path / "o" / "x.####.exr")))
    made = check_writes(_writes(str(tmp_path / "new" / "deep" / "x.####.exr")), PathSet())
    assert made == [str(tmp_path / "new" / "deep"), str(tmp_path / "new")]
    write_guard.remove_empty_folders(made)
    assert not (tmp_path / "new").exists()
    assert sorted(os.listdir(tmp_path)) == ["file", "o"]  # no probe file left anywhere


@pytest.mark.parametrize(
    ("code", "error", "text"),
    [
        (errno.EROFS, OutputLocationError, "is on a read-only file system"),
        (errno.EACCES, OutputLocationError, "permission to write in"),
        (errno.ENOSPC, DiskFullError, "No space left on device while writing"),
    ],
)
def test_a_folder_that_takes_no_new_file(tmp_path, monkeypatch, code, error, text) -> None:
    """Root writes through chmod, so the probe (not os.access) is what is tested."""
    real_open = os.open

    def refuse(path, flags, *args):
        if os.path.basename(path).startswith(".vfxmatte-probe-"):
            raise OSError(code, os.strerror(code), path)
        return real_open(path, flags, *args)

    monkeypatch.setattr(os, "open", refuse)
    with pytest.raises(error, match=text) as info:
        check_locations(_writes(str(tmp_path / "out" / "x.####.exr")))
    assert "x.1001.exr" in str(info.value) and ".vfxmatte-probe" not in str(info.value)
    assert not (tmp_path / "out").exists()  # the folder it made is gone again


def test_a_real_read_only_mount_when_one_can_be_made(tmp_path) -> None:
    """With privileges (root in a container), a read-only tmpfs; the probe is what matters."""
    import subprocess

    mount = tmp_path / "ro"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip("no privilege to mount a read-only tmpfs here (the monkeypatched test runs)")
    try:
        with pytest.raises(OutputLocationError, match="is on a read-only file system"):
            check_locations(_writes(str(mount / "x.####.exr")))
    finally:
        subprocess.run(["umount", str(mount)], check=True)
