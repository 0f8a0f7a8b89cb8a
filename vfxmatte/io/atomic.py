"""Write to a temporary name in the target folder, then rename.

A crash, a kill or a full disk never leaves a half-written file under the final
name, and a failing run never replaces a good file that was already there. An
``OSError`` while writing (no space left, a read-only file system...) becomes one
sentence (:func:`vfxmatte.io.write_guard.write_error`). A kill leaves the hidden
temporary file behind; a resumed run removes those of its own outputs
(:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

from vfxmatte.errors import VfxMatteError

__all__ = ["atomic_path", "remove_stale_temps", "temp_name"]

log = logging.getLogger(__name__)

# .<stem>.tmp-<pid>-<8 hex><suffix>, as temp_name makes them
_TEMP = re.compile(r"^\.(?P<stem>.+)\.tmp-(?P<pid>\d+)-[0-9a-f]{8}(?P<suffix>\.[^.]*)?$")


def temp_name(path: str | os.PathLike[str]) -> Path:
    """A hidden temporary name beside ``path`` that keeps its extension.

    The extension is kept because writers (OpenImageIO, FFmpeg) choose the file
    format from it.
    """
    target = Path(path)
    tag = f"{os.getpid()}-{uuid.uuid4().hex[:8]}"
    return target.with_name(f".{target.stem}.tmp-{tag}{target.suffix}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write to; rename it onto ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    from vfxmatte.io.write_guard import write_error

    target = Path(path)
    tmp = temp_name(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, target)
    except OSError as exc:
        if isinstance(exc, VfxMatteError):
            raise
        raise write_error(os.fspath(path), exc) from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink()


def remove_stale_temps(paths: Iterable[str | os.PathLike[str]]) -> list[str]:
    """Remove the temporary files :func:`atomic_path` left beside ``paths`` (a killed run).

    Only temporary names of these very targets are touched (``.x.1001.tmp-PID-TAG.exr``
    for ``x.1001.exr``), never those of this process. Call it while holding the lock
    of these outputs (:mod:`vfxmatte.io.lock`): then no other run is writing them, so
    every such file is left over. Returns the paths removed.
    """
    wanted: dict[str, set[tuple[str, str]]] = {}
    for path in paths:
        target = Path(path)
        wanted.setdefault(os.path.dirname(os.path.abspath(target)), set()).add(
            (target.stem, target.suffix)
        )
    removed: list[str] = []
    own = os.getpid()
    for folder, targets in wanted.items():
        try:
            names = os.listdir(folder)
        except OSError:
            continue
        for name in names:
            m = _TEMP.match(name)
            if not m or int(m.group("pid")) == own:
                continue
            if (m.group("stem"), m.group("suffix") or "") in targets:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(os.path.join(folder, name))
                    removed.append(os.path.join(folder, name))
    if removed:
        log.warning(
            "Removed %d temporary file(s) left by an interrupted run, e.g. %s.",
            len(removed),
            removed[0],
        )
    return removed
