"""The wheel carries the starter weights, and the order in which weights are looked for.

The full check (a fresh venv, the learned path run from outside the repository) is
``tests/hosts/wheel_check.py``, run by ``.ci/run``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from vfxmatte.warmup import MESSAGE, kernels_cached, warm_up
from vfxmatte.weights import SHIPPED, shipped_folders, shipped_weights

ROOT = Path(__file__).resolve().parents[2]


def test_home_overrides_the_package_and_the_checkout(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VFXMATTE_HOME", str(tmp_path))
    assert shipped_weights("matte") == str(ROOT / "weights" / SHIPPED["matte"])
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / SHIPPED["matte"]).write_bytes(b"studio copy")
    assert shipped_weights("matte") == str(tmp_path / "weights" / SHIPPED["matte"])
    assert shipped_weights("refine") == str(ROOT / "weights" / SHIPPED["refine"])
    assert shipped_weights("no such kind") == ""


def test_folders_in_order(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("VFXMATTE_HOME", str(tmp_path))
    package = ROOT / "vfxmatte"
    assert shipped_folders() == [tmp_path / "weights", package / "_weights", ROOT / "weights"]


@pytest.mark.skipif(
    subprocess.run([sys.executable, "-c", "import setuptools"]).returncode != 0,
    reason="needs setuptools in this Python to build the wheel offline",
)
def test_wheel_carries_every_shipped_file(tmp_path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True,
    )  # fmt: skip
    (wheel,) = tmp_path.glob("vfxmatte-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    for name in SHIPPED.values():
        assert f"vfxmatte/_weights/{name}" in names
        assert f"vfxmatte/_weights/{name.replace('.safetensors', '.yaml')}" in names
    assert "vfxmatte/weights.py" in names and "vfxmatte/py.typed" in names
    assert not any(n.startswith(("tests/", "nodes/", "weights/")) for n in names)
    assert not any(n.endswith(("_log.csv", ".png")) for n in names)


def _warm_up_in(folder: Path) -> subprocess.CompletedProcess:
    """``warm_up()`` in a child Python that sees the stand-in pymatting of ``folder``."""
    env = {**os.environ, "PYTHONPATH": str(folder), "NUMBA_CACHE_DIR": str(folder / "nc")}
    return subprocess.run(
        [sys.executable, "-c", "from vfxmatte.warmup import warm_up; print(warm_up())"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip


def test_warm_up_says_it_compiles_only_when_not_cached(tmp_path) -> None:
    package = tmp_path / "pymatting"
    package.mkdir()
    (package / "__init__.py").write_text("import time\ntime.sleep(0.2)\nCOMPILED = True\n")
    first = _warm_up_in(tmp_path)
    assert MESSAGE in first.stderr and float(first.stdout) >= 0.2
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "kernel.py311.nbi").write_bytes(b"")  # numba's index file
    again = _warm_up_in(tmp_path)
    assert MESSAGE not in again.stderr


def test_kernels_cached_in_this_environment() -> None:
    import pymatting  # noqa: F401 - compiled once for the dev venv

    assert kernels_cached() and warm_up() == 0.0


def test_which_runs_need_pymatting() -> None:
    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.warmup import needs_pymatting, warm_up_for

    config = PipelineConfig()
    assert not needs_pymatting(config)  # the default decontamination (fusion) is vfxmatte's own
    config.decontaminate.backend = "multilevel"
    assert needs_pymatting(config)
    config.decontaminate.backend = "network"
    assert not needs_pymatting(config) and warm_up_for(config) == 0.0
    config.matte.classical.preconditioner = "ichol"
    assert needs_pymatting(config)
    config.matte.backend = "network"
    assert not needs_pymatting(config)
