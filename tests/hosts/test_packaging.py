"""The wheel carries the starter weights, and the order in which weights are looked for.

The full check (a fresh venv, the learned path run from outside the repository) is
``tests/hosts/wheel_check.py``, run by ``.ci/run``.
"""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

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
