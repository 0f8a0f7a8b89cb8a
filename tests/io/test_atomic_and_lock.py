"""Atomic writes on a full disk, stale temporary files, and the output lock."""

from __future__ import annotations

import errno
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest

from vfxmatte.errors import DiskFullError, OutputLocationError, OutputLockedError
from vfxmatte.io import lock as lock_module
from vfxmatte.io.atomic import atomic_path, remove_stale_temps, temp_name
from vfxmatte.io.image import read_image, write_image
from vfxmatte.io.lock import OutputLock


def _full(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_enospc_during_the_rename_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch):
    target = tmp_path / "x.1001.exr"
    write_image(target, np.full((4, 4, 1), 0.25, np.float32), ["A"])
    before = target.read_bytes()
    monkeypatch.setattr(os, "replace", _full)
    with pytest.raises(DiskFullError, match=r"No space left on device while writing the file"):
        write_image(target, np.ones((4, 4, 1), np.float32), ["A"])
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert os.listdir(tmp_path) == ["x.1001.exr"]  # no temporary file left
    with pytest.raises(DiskFullError) as info, atomic_path(tmp_path / "w.bin") as tmp:
        tmp.write_bytes(b"x")
        _full()
    assert "w.bin" in str(info.value) and isinstance(info.value, OSError)


def test_a_failed_openimageio_write_on_a_full_disk_says_so(tmp_path, monkeypatch) -> None:
    import OpenImageIO as oiio

    class Output:
        def open(self, *args):
            return True

        def write_image(self, data):
            return False

        def geterror(self):
            return "Error writing: No space left on device"

        def close(self):
            pass

    monkeypatch.setattr(oiio.ImageOutput, "create", staticmethod(lambda path: Output()))
    with pytest.raises(DiskFullError, match=r"x\.1001\.exr"):
        write_image(tmp_path / "x.1001.exr", np.ones((4, 4, 1), np.float32), ["A"])

    class Broken(Output):
        def geterror(self):
            return "bad luck"

    monkeypatch.setattr(oiio.ImageOutput, "create", staticmethod(lambda path: Broken()))
    with pytest.raises(OutputLocationError, match="Writing '.*x.1001.exr' failed: bad luck"):
        write_image(tmp_path / "x.1001.exr", np.ones((4, 4, 1), np.float32), ["A"])


def test_half_overflow_is_clamped_with_a_warning_and_float_keeps_it(tmp_path, caplog) -> None:
    pixels = np.full((2, 3, 1), 1.0, np.float32)
    pixels[0, 0, 0], pixels[1, 2, 0] = 1.0e5, -7.0e4
    with caplog.at_level(logging.WARNING, "vfxmatte.io.image"):
        write_image(tmp_path / "h.exr", pixels, ["Y"], dtype="half")
    assert "2 value(s) beyond the half-float maximum 65504 (up to 1e+05)" in caplog.text
    assert "--dtype float" in caplog.text
    back = read_image(tmp_path / "h.exr").pixels[..., 0]
    assert np.isfinite(back).all() and back[0, 0] == 65504.0 and back[1, 2] == -65504.0
    caplog.clear()
    write_image(tmp_path / "f.exr", pixels, ["Y"], dtype="float")
    assert not caplog.text and read_image(tmp_path / "f.exr").pixels[0, 0, 0] == 1.0e5


def test_stale_temps_of_these_outputs_only_are_removed(tmp_path) -> None:
    target = tmp_path / "x.1001.exr"
    stale = temp_name(target).with_name(".x.1001.tmp-999999-0123abcd.exr")
    mine = temp_name(target)  # this process's own: never touched
    other = tmp_path / ".y.1001.tmp-999999-0123abcd.exr"  # another output's
    for path in (stale, mine, other):
        path.write_bytes(b"half written")
    assert remove_stale_temps([target]) == [str(stale)]
    assert not stale.exists() and mine.exists() and other.exists()


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_overlapping_frames_are_refused_disjoint_chunks_run_together(tmp_path) -> None:
    pattern = str(tmp_path / "x.####.exr")
    with OutputLock([pattern], range(1001, 1011)):
        with pytest.raises(OutputLockedError) as info:
            OutputLock([str(tmp_path / "x.%04d.exr")], [1010, 1011]).acquire()
        message = str(info.value)
        assert f"pid {os.getpid()}" in message and "frames 1010 of" in message
        with OutputLock([pattern], range(1011, 1021)):  # the next farm chunk
            assert len([n for n in os.listdir(tmp_path) if n.endswith(".vfxmatte-lock")]) == 2
    assert os.listdir(tmp_path) == []  # released


def test_a_dead_runs_lock_is_taken_over_with_a_log_line(tmp_path, caplog) -> None:
    pattern = str(tmp_path / "x.####.exr")
    held = OutputLock([pattern], [1001, 1002]).acquire()
    data = json.loads(open(held.paths[0]).read())
    dead = tmp_path / ".x.#.exr.dead.vfxmatte-lock"
    dead.write_text(json.dumps({**data, "pid": _dead_pid(), "tag": "dead"}))
    held.release()
    with caplog.at_level(logging.WARNING, "vfxmatte.io.lock"), OutputLock([pattern], [1002]):
        pass
    assert "Took over the lock" in caplog.text and "no longer runs" in caplog.text
    assert not dead.exists()


def test_another_hosts_lock_goes_stale_without_heartbeat(tmp_path, monkeypatch) -> None:
    pattern = str(tmp_path / "x.####.exr")
    other = tmp_path / ".x.#.exr.farm07.vfxmatte-lock"
    record = {"pattern": pattern, "frames": "1001-1010", "host": "farm07", "pid": 1, "created": 0}
    other.write_text(json.dumps(record))
    with pytest.raises(OutputLockedError, match="on host farm07"):
        OutputLock([pattern], [1005]).acquire()
    old = os.stat(other).st_mtime - lock_module.STALE_SECONDS - 5
    os.utime(other, (old, old))
    with OutputLock([pattern], [1005]):
        assert not other.exists()


def test_of_two_runs_started_together_the_younger_gives_way(tmp_path) -> None:
    pattern = str(tmp_path / "x.####.exr")
    younger = tmp_path / ".x.#.exr.later.vfxmatte-lock"
    record = {"frames": "1001", "host": "elsewhere", "pid": 5, "created": 2**62, "tag": "z"}
    younger.write_text(json.dumps(record))
    with OutputLock([pattern], [1001]):  # it is older, so it goes on
        assert younger.exists()
