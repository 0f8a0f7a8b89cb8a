"""Before a run writes anything: no input is written over, and every output can be written.

A run lists every file it will write (each frame of each output kind, previews,
guidance, saved key masks...) and every file it reads (plate frames, masks,
keyframes, label maps, weights, config files; folders it scans), then calls
:func:`check_writes`. Refusals are sentences naming both paths; nothing has been
written when they are raised.

**When is an input written over?** Every writer of vfxmatte writes to a
temporary name and renames it onto the target (:mod:`vfxmatte.io.atomic`), and a
rename replaces the *directory entry* ``realpath(folder)/name``. An output
destroys an input when that entry is the input's entry (``plate.####.exr`` and
``plate.%04d.exr``; ``out/../plates/p.1001.exr``; a symlinked folder) or the file
an input's symlink points to. An existing output that is the same file as an input
under another name (a bind mount, a case-insensitive volume) is caught by its inode.
Writing *into* a folder that is read as a whole (an instance-mask folder) is refused
too: the next run would read the output as an input.

**Can the location be written?** Each output folder is created and a probe file
is made and removed in it, which is the only test that holds for every user
(``os.access`` says yes to root on a read-only mount): a regular file where a
folder should be (``/etc/passwd/x.####.exr``), a folder where a frame file should
go, a read-only file system or folder, no space left: each is one sentence before
the first frame is matted, not an ``OSError`` after it.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from vfxmatte.errors import (
    DiskFullError,
    InputOverwriteError,
    OutputError,
    OutputLocationError,
)
from vfxmatte.io.sequence import FramePattern

__all__ = [
    "PathSet",
    "check_locations",
    "check_no_input_written",
    "check_writes",
    "entry_key",
    "location_error",
    "probe_folder",
    "remove_empty_folders",
    "write_error",
]

log = logging.getLogger(__name__)

#: Files that cannot be destroyed by one of the run's writes: shown in messages first.
_PROBE_PREFIX = ".vfxmatte-probe-"


def _norm(path: str) -> str:
    return os.path.normcase(path)


def entry_key(path: str, cache: dict[str, str] | None = None) -> str:
    """The directory entry a rename onto ``path`` replaces: ``realpath(folder)/name``."""
    folder, name = os.path.split(os.path.abspath(path))
    if cache is None:
        return _norm(os.path.join(os.path.realpath(folder), name))
    real = cache.get(folder)
    if real is None:
        real = cache[folder] = os.path.realpath(folder)
    return _norm(os.path.join(real, name))


@dataclass
class PathSet:
    """Labelled files and folders: ``path -> what it is`` (``"the rgba output, frame 1001"``)."""

    files: dict[str, str] = field(default_factory=dict)
    folders: dict[str, str] = field(default_factory=dict)
    #: ``(path, first label, other label)`` for a path added twice as different things.
    twice: list[tuple[str, str, str]] = field(default_factory=list)

    def add(self, path: str | os.PathLike[str] | None, label: str) -> None:
        if not path:
            return
        path = os.fspath(path)
        first = self.files.setdefault(path, label)
        if first != label:
            self.twice.append((path, first, label))

    def add_folder(self, path: str | os.PathLike[str] | None, label: str) -> None:
        if path:
            self.folders.setdefault(os.fspath(path), label)

    def add_frames(self, pattern: str, frames: Iterable[int], label: str) -> None:
        """Each frame's file of ``pattern`` (one file for a pattern without a token)."""
        if not pattern:
            return
        parsed = FramePattern.parse(pattern)
        if parsed.is_single:
            self.add(pattern, label)
            return
        for number in frames:
            self.add(parsed.path(number), f"{label} frame {number}")

    def add_on_disk(self, pattern: str, label: str, frames: Iterable[int] = ()) -> None:
        """Every file of ``pattern`` that exists now, plus those of ``frames``."""
        if not pattern:
            return
        parsed = FramePattern.parse(pattern)
        if parsed.is_single:
            self.add(pattern, label)
            return
        self.add_frames(pattern, sorted(set(parsed.frames_on_disk()) | set(frames)), label)

    def update(self, other: PathSet) -> None:
        for path, label in other.files.items():
            self.add(path, label)
        for path, label in other.folders.items():
            self.add_folder(path, label)


def _input_index(reads: PathSet, cache: dict[str, str]) -> tuple[dict, dict]:
    """Keys of every input: its entry, its resolved file, and its inode when it exists."""
    keys: dict[str, tuple[str, str]] = {}
    inodes: dict[tuple[int, int], tuple[str, str]] = {}
    for path, label in reads.files.items():
        keys.setdefault(entry_key(path, cache), (path, label))
        keys.setdefault(_norm(os.path.realpath(path)), (path, label))
        try:
            st = os.stat(path)
        except OSError:
            continue
        inodes.setdefault((st.st_dev, st.st_ino), (path, label))
    return keys, inodes


def _inside(key: str, folders: Mapping[str, tuple[str, str]]) -> tuple[str, str] | None:
    for real, hit in folders.items():
        if key.startswith(real.rstrip(os.sep) + os.sep):
            return hit
    return None


def _more(items: list) -> str:
    return f" (and {len(items) - 1} more file(s) like it)" if len(items) > 1 else ""


def _same(out: str, path: str) -> str:
    """`` (the same file)`` when two spellings name one file."""
    return "" if out == path else " (the same file)"


def _twice_message(twice: list[tuple[str, str, str]]) -> str:
    path, first, other = twice[0]
    return (
        f"The {first} and the {other} are the same file '{path}'{_more(twice)}; nothing was "
        "written. Give them different names."
    )


def _collision_message(collisions: list[tuple[str, str, str, str]], folder: bool) -> str:
    out, out_label, path, label = collisions[0]
    more = _more(collisions)
    if folder:
        return (
            f"The {out_label} '{out}' would be written inside the {label} '{path}', which "
            f"is read as a whole{more}; nothing was written. Write outside that folder."
        )
    return (
        f"The {out_label} '{out}' is the {label} '{path}'{_same(out, path)}{more}; nothing "
        "was written and the input is untouched. Choose an output path that is not one of "
        "the inputs, e.g. another folder or name."
    )


def check_no_input_written(writes: PathSet, reads: PathSet) -> None:
    """Refuse a write that replaces an input, lands in an input folder, or another write.

    Raises:
        InputOverwriteError: naming the first output and the input (or output) it hits.
    """
    cache: dict[str, str] = {}
    keys, inodes = _input_index(reads, cache)
    folders = {_norm(os.path.realpath(f)): (f, label) for f, label in reads.folders.items()}
    seen: dict[str, tuple[str, str]] = {}
    twice = list(writes.twice)
    collisions: list[tuple[str, str, str, str]] = []
    inside: list[tuple[str, str, str, str]] = []
    for out, out_label in writes.files.items():
        key = entry_key(out, cache)
        hit = keys.get(key)
        if hit is None and os.path.lexists(out) and not os.path.islink(out):
            st = os.stat(out)
            hit = inodes.get((st.st_dev, st.st_ino))
        if hit is not None:
            collisions.append((out, out_label, *hit))
            continue
        other = seen.setdefault(key, (out, out_label))
        if other[0] != out:
            twice.append((out, other[1], out_label))
            continue
        hit = _inside(key, folders)
        if hit is not None:
            inside.append((out, out_label, *hit))
    if collisions:
        raise InputOverwriteError(_collision_message(collisions, folder=False))
    if twice:
        raise InputOverwriteError(_twice_message(twice))
    if inside:
        raise InputOverwriteError(_collision_message(inside, folder=True))


def location_error(path: str, exc: OSError, what: str = "output") -> OutputError:
    """The sentence of an ``OSError`` met while writing ``path`` (or making its folder)."""
    code = exc.errno
    target = exc.filename or path
    if code in (errno.ENOSPC, getattr(errno, "EDQUOT", -1)):
        quota = " (disk quota exceeded)" if code != errno.ENOSPC else ""
        return DiskFullError(
            f"No space left on device{quota} while writing the {what} '{path}'; free some "
            "space (or write elsewhere) and run again: frames already written are kept and "
            "reused."
        )
    if code == errno.EROFS:
        reason = f"'{target}' is on a read-only file system"
    elif code in (errno.EACCES, errno.EPERM):
        reason = f"permission to write in '{target}' is denied"
    elif code in (errno.ENOTDIR, errno.EEXIST):
        reason = f"'{_file_in_the_way(path) or target}' is a file, not a folder"
    elif code == errno.EISDIR:
        reason = f"'{path}' is a folder, not a file"
    else:
        reason = exc.strerror or str(exc)
    return OutputLocationError(
        f"Cannot write the {what} '{path}': {reason}; choose an output folder you can write to."
    )


def write_error(path: str, exc: OSError) -> OutputError:
    """:func:`location_error` for a file being written (the atomic writers use it)."""
    return location_error(path, exc, "file")


def _file_in_the_way(path: str) -> str | None:
    """The nearest ancestor of ``path`` that exists and is not a folder, if any."""
    current = os.path.dirname(os.path.abspath(path))
    while current and not os.path.isdir(current):
        if os.path.lexists(current):
            return current if os.path.isabs(path) else os.path.relpath(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return None


def _missing_folders(folder: str) -> list[str]:
    """``folder`` and its ancestors that do not exist, deepest first."""
    missing = []
    current = os.path.abspath(folder or ".")
    while not os.path.lexists(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    return missing


def remove_empty_folders(folders: Iterable[str]) -> None:
    """Remove those of ``folders`` (deepest first) that are empty: a run that made them
    and then stopped before writing leaves nothing behind."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            pass  # not empty, or gone


def probe_folder(folder: str, example: str) -> list[str]:
    """Create ``folder`` (and parents) and a probe file in it; raise a sentence if not possible.

    Returns the folders it created, deepest first.
    """
    created = _missing_folders(folder)
    try:
        os.makedirs(folder or ".", exist_ok=True)
    except OSError as exc:
        remove_empty_folders(created)
        raise location_error(example, exc) from None
    name = f"{_PROBE_PREFIX}{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    probe = os.path.join(folder or ".", name)
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        remove_empty_folders(created)
        named = OSError(exc.errno, exc.strerror, os.path.dirname(example) or ".")
        raise location_error(example, named) from None
    os.close(fd)
    os.unlink(probe)
    return created


def check_locations(writes: PathSet) -> list[str]:
    """Every output folder exists (created here) and takes a new file; no folder is in the way.

    Returns the folders it created, deepest first (:func:`remove_empty_folders`).

    Raises:
        OutputLocationError: naming the output and what stops it.
    """
    by_folder: dict[str, list[str]] = {}
    for path in writes.files:
        by_folder.setdefault(os.path.dirname(os.path.abspath(path)), []).append(path)
    created: list[str] = []
    try:
        for folder, paths in by_folder.items():
            created += probe_folder(folder, paths[0])
            _check_entries(folder, paths)
    except OutputError:
        remove_empty_folders(sorted(created, key=len, reverse=True))
        raise
    return sorted(created, key=len, reverse=True)


def _check_entries(folder: str, paths: list[str]) -> None:
    """No folder or special file where one of ``paths`` (all in ``folder``) goes."""
    with os.scandir(folder) as entries:
        present = {e.name: e for e in entries}
    for path in paths:
        entry = present.get(os.path.basename(path))
        if entry is None:
            continue
        if entry.is_dir():
            raise OutputLocationError(
                f"Cannot write '{path}': a folder of that name is where the frame file "
                "should go; remove or rename the folder, or choose another output."
            )
        if not entry.is_file() and not entry.is_symlink():
            raise OutputLocationError(
                f"Cannot write '{path}': it exists and is not a regular file (a pipe or a "
                "device); choose another output."
            )


def check_writes(writes: PathSet, reads: PathSet) -> list[str]:
    """:func:`check_no_input_written`, then :func:`check_locations` (the folders it made).

    Raises:
        InputOverwriteError, OutputLocationError, DiskFullError: a sentence each.
    """
    check_no_input_written(writes, reads)
    return check_locations(writes)
