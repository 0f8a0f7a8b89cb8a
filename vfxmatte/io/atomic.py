"""Write to a temporary name in the target folder, then rename.

A crash, a kill or a full disk never leaves a half-written file under the final
name, and a failing run never replaces a good file that was already there.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_path", "temp_name"]


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
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = temp_name(target)
    try:
        yield tmp
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
