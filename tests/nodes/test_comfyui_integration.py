"""Opt-in: the pack inside a real ComfyUI, one example workflow through its HTTP API.

Runs only when ``COMFYUI_DIR`` points at a ComfyUI checkout whose requirements are
installed in this Python::

    COMFYUI_DIR=~/ComfyUI pytest tests/nodes/test_comfyui_integration.py

ComfyUI is started headless on the CPU on a free port, with its input, output
and custom-node folders in a temporary directory (the checkout is not touched:
the pack is linked in through ``--extra-model-paths-config``). The test queues
``nodes/api_workflows/matte_shot_api.json`` with ``POST /prompt``, waits for it in
``GET /history/{prompt_id}`` and checks the EXRs it wrote.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from vfxmatte.io.image import read_image
from vfxmatte.synth import ShotSpec, write_shot

ROOT = Path(__file__).resolve().parents[2]
COMFYUI_DIR = os.environ.get("COMFYUI_DIR", "")

pytestmark = pytest.mark.skipif(
    not COMFYUI_DIR, reason="set COMFYUI_DIR to a ComfyUI checkout to run the integration test"
)

START_TIMEOUT = 180.0
RUN_TIMEOUT = 600.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _get(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.loads(response.read())


def _post(url: str, payload: dict) -> dict:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as exc:  # ComfyUI explains a refused prompt in the body
        raise AssertionError(f"POST /prompt refused: {exc.read().decode()}") from None


@pytest.fixture
def comfyui(tmp_path):
    """A running ComfyUI with the pack linked in; yields its URL and folders."""
    checkout = Path(COMFYUI_DIR).expanduser()
    assert (checkout / "main.py").is_file(), f"COMFYUI_DIR={checkout} has no main.py"
    (tmp_path / "custom_nodes").mkdir()
    (tmp_path / "custom_nodes" / "vfxmatte_nodes").symlink_to(ROOT / "nodes")
    (tmp_path / "extra_model_paths.yaml").write_text(
        f"vfxmatte_test:\n  base_path: {tmp_path}\n  custom_nodes: custom_nodes\n",
        encoding="utf-8",
    )
    spec = ShotSpec(width=96, height=64, frames=3, objects=2, seed=3, supersample=2)
    write_shot(tmp_path / "input" / "vfxmatte_demo", spec)
    (tmp_path / "output").mkdir()
    port = _free_port()
    log = open(tmp_path / "comfyui.log", "w")  # noqa: SIM115 - closed below
    process = subprocess.Popen(
        [sys.executable, "main.py", "--cpu", "--listen", "127.0.0.1", "--port", str(port),
         "--input-directory", str(tmp_path / "input"),
         "--output-directory", str(tmp_path / "output"),
         "--extra-model-paths-config", str(tmp_path / "extra_model_paths.yaml"),
         "--disable-auto-launch"],
        cwd=checkout, stdout=log, stderr=subprocess.STDOUT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            if process.poll() is not None:
                raise AssertionError(f"ComfyUI exited: {(tmp_path / 'comfyui.log').read_text()}")
            try:
                _get(f"{url}/system_stats")
                break
            except (urllib.error.URLError, ConnectionError):
                if time.monotonic() > deadline:
                    raise AssertionError("ComfyUI did not start in time") from None
                time.sleep(1.0)
        yield url, tmp_path
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def test_example_workflow_runs_in_comfyui(comfyui) -> None:
    url, root = comfyui
    info = _get(f"{url}/object_info")
    pack_nodes = sorted(k for k in info if k.startswith("VfxMatte."))
    assert "VfxMatte.MatteShot" in pack_nodes and len(pack_nodes) >= 18, (
        root / "comfyui.log"
    ).read_text()
    prompt = json.loads((ROOT / "nodes" / "api_workflows" / "matte_shot_api.json").read_text())
    queued = _post(f"{url}/prompt", {"prompt": prompt, "client_id": "vfxmatte-test"})
    assert not queued.get("node_errors"), queued
    prompt_id = queued["prompt_id"]
    deadline = time.monotonic() + RUN_TIMEOUT
    while prompt_id not in (history := _get(f"{url}/history/{prompt_id}")):
        assert time.monotonic() < deadline, "the workflow did not finish in time"
        time.sleep(1.0)
    entry = history[prompt_id]
    assert entry["status"]["status_str"] == "success", entry["status"]
    assert entry["outputs"]["3"]["text"][0].startswith("3 frame(s) written")
    out = root / "output" / "vfxmatte_demo_matte"
    for number in (1001, 1002, 1003):
        rgba = read_image(out / f"shot.{number}.exr", "RGBA").pixels
        assert rgba.shape == (64, 96, 4) and 0.0 < rgba[..., 3].mean() < 1.0
        assert (out / f"shot_alpha.{number}.exr").is_file()
