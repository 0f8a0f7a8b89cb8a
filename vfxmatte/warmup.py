"""Compile pymatting's numba kernels ahead of the first run, and say so.

pymatting (the ``classical`` extra: multi-level foreground estimation, the ``ichol``
preconditioner) compiles its numba kernels when it is first imported in a fresh
install: about a minute on a 2-core machine, with nothing on screen, in the middle
of the first shot. numba keeps the compiled kernels on disk (beside pymatting, or
in ``NUMBA_CACHE_DIR``), so later imports take a second. This module moves that
one-off cost to where it is expected and visible:

* at install: ``python -m vfxmatte.warmup`` (the README's install lines run it);
* in a host that should not block (the ComfyUI pack at load): :func:`warm_up_in_background`
  compiles in a child process while the host starts; :func:`warm_up` then waits for
  it with the message instead of compiling a second time;
* anywhere else: :func:`warm_up` before the first use prints
  ``compiling matting kernels, first run only`` when the kernels are not cached.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

__all__ = [
    "MESSAGE",
    "kernels_cached",
    "main",
    "needs_pymatting",
    "warm_up",
    "warm_up_for",
    "warm_up_in_background",
]

MESSAGE = "vfxmatte: compiling matting kernels (pymatting), first run only (a minute or more)"

_background: subprocess.Popen | None = None
_lock = threading.Lock()


def _package_dir() -> Path | None:
    spec = importlib.util.find_spec("pymatting")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def kernels_cached() -> bool:
    """Whether pymatting is missing (nothing to compile) or its kernels are on disk.

    Looks for numba's index files (``*.nbi``) beside pymatting and in
    ``NUMBA_CACHE_DIR``, without importing pymatting.
    """
    if "pymatting" in sys.modules:
        return True
    package = _package_dir()
    if package is None:
        return True
    if next(package.rglob("*.nbi"), None) is not None:
        return True
    # numba's other places when the package folder is read-only: NUMBA_CACHE_DIR, or the
    # user's cache folder, with a sub-folder named after the package's path
    user = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "numba"
    for folder in (os.environ.get("NUMBA_CACHE_DIR"), user):
        if folder and Path(folder).is_dir():
            if any("pymatting" in str(p) for p in Path(folder).rglob("*.nbi")):
                return True
    return False


def warm_up_in_background() -> bool:
    """Start compiling in a child process when the kernels are not cached; True if started."""
    global _background
    with _lock:
        if _background is not None or kernels_cached():
            return False
        print(f"{MESSAGE} (in the background)", file=sys.stderr, flush=True)
        _background = subprocess.Popen(
            [sys.executable, "-c", "import pymatting"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        return True


def warm_up(announce: Callable[[str], None] | None = None) -> float:
    """Make pymatting importable at once; returns the seconds spent (0 when it already was).

    Prints :data:`MESSAGE` (or hands it to ``announce``) when it has to wait for the
    compilation, then imports pymatting.
    """
    if "pymatting" in sys.modules or _package_dir() is None:
        return 0.0
    say = announce or (lambda text: print(text, file=sys.stderr, flush=True))
    start = time.perf_counter()
    with _lock:
        background = _background
    if background is not None and background.poll() is None:
        say(f"{MESSAGE} (waiting for the compilation started at load)")
        background.wait()
    elif not kernels_cached():
        say(MESSAGE)
    import pymatting  # noqa: F401 - compiles, or loads the compiled kernels

    elapsed = time.perf_counter() - start
    if elapsed > 5:
        say(f"vfxmatte: matting kernels ready in {elapsed:.0f} s (cached for later runs)")
    return elapsed


def needs_pymatting(config: object) -> bool:
    """Whether a :class:`~vfxmatte.engine.config.PipelineConfig` run imports pymatting.

    The multilevel decontamination (no longer the default: ``fusion`` is) and the
    classical matte's ``ichol`` preconditioner do; the network backends and ``jacobi``
    do not.
    """
    decontaminate = getattr(getattr(config, "decontaminate", None), "backend", "")
    matte = getattr(config, "matte", None)
    classical = getattr(matte, "classical", None)
    return decontaminate == "multilevel" or (
        getattr(matte, "backend", "") == "classical"
        and getattr(classical, "preconditioner", "") == "ichol"
    )


def warm_up_for(config: object, announce: Callable[[str], None] | None = None) -> float:
    """:func:`warm_up` when ``config``'s run needs pymatting (the CLI, before a shot)."""
    return warm_up(announce) if needs_pymatting(config) else 0.0


def main() -> int:
    """``python -m vfxmatte.warmup``: compile the kernels now (after ``pip install``)."""
    if _package_dir() is None:
        print("pymatting is not installed (the classical extra): nothing to compile.")
        return 0
    cached = kernels_cached()
    elapsed = warm_up(print)
    state = "were already cached" if cached else "compiled and cached"
    print(f"vfxmatte: matting kernels {state} ({elapsed:.1f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
