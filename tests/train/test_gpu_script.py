"""benchmarks/gpu_train.sh: syntax, and a CPU dry run with a tiny budget writes its results."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "gpu_train.sh"


def test_script_parses():
    subprocess.run(["bash", "-n", str(SCRIPT)], check=True)


def test_dry_run_trains_evaluates_and_writes_into_out(tmp_path):
    env = dict(os.environ, OUT=str(tmp_path / "out"), DRY_RUN="1", PYTHON=sys.executable,
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")  # fmt: skip
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True,
                          timeout=900)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    out = tmp_path / "out"
    assert (out / "run" / "matte_small.safetensors").is_file()
    assert (out / "run" / "log.csv").is_file() and (out / "run" / "config.yaml").is_file()
    for which in ("new", "shipped"):
        report = json.loads((out / f"eval_{which}" / "heldout.json").read_text())
        assert report["photos"] and report["rough"] and report["frames"] == 1
        assert "network, 1 pass" in report["alpha"]
    assert "training wall time" in (out / "gpu_train.log").read_text()


def test_without_out_it_says_so(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)
    assert done.returncode != 0 and "set OUT" in done.stderr
