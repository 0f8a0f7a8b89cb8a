"""The plugin under the oldest Python a supported Nuke ships (3.7, Nuke 13), when installed.

The plugin runs in a bare Python 3.7 (no numpy, no vfxmatte: as inside Nuke) and
drives a real worker in this environment: knobs, script text, options, a shot.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins" / "nuke"

SCRIPT = """
import json, sys
sys.path.insert(0, sys.argv[1])
import vfxmatte_nuke.process, vfxmatte_nuke.node, vfxmatte_nuke.startup
from vfxmatte_nuke.client import WorkerClient
from vfxmatte_nuke.knobs import config_from_values, knob_list, value_knobs
from vfxmatte_nuke.schema import load_schema
from vfxmatte_nuke.script import group_script

schema = load_schema()
knobs = knob_list(schema)
values = {k.name: k.default for k in value_knobs(knobs)}
values["engine_overwrite"] = True
config = config_from_values(values, schema)
text = group_script(knobs)
client = WorkerClient(sys.argv[2], env=json.loads(sys.argv[4]))
hello = client.start()
seen = []
run = dict(json.loads(sys.argv[3]), **config)
report = client.run(run, seen.append)
client.close()
print(json.dumps({"version": list(sys.version_info[:2]), "modules": sorted(sys.modules),
                  "knobs": len(knobs), "script": len(text), "hello": hello, "report": report,
                  "progress": [m["done"] for m in seen if m["type"] == "progress"]}))
"""


def _python37() -> str | None:
    candidates = [os.environ.get("VFXMATTE_TEST_PYTHON37", "")]
    candidates += sorted(glob.glob(os.path.expanduser("~/.pyenv/versions/3.7*/bin/python3.7")))
    candidates.append(shutil.which("python3.7") or "")
    for candidate in filter(None, candidates):
        probe = subprocess.run(
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        if probe.returncode == 0 and probe.stdout.strip() == "(3, 7)":
            return candidate
    return None


def test_plugin_in_python_37_drives_the_worker(nuke_shot, tmp_path) -> None:
    python37 = _python37()
    if python37 is None:
        pytest.skip("no Python 3.7 here (set VFXMATTE_TEST_PYTHON37)")
    shot = {
        "plate": nuke_shot.plate,
        "mask": nuke_shot.mask,
        "output": str(tmp_path / "m.####.exr"),
        "frames": "1001-1003",
    }
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run(
        [
            python37,
            "-I",
            "-c",
            SCRIPT,
            str(PLUGIN_DIR),
            sys.executable,
            json.dumps(shot),
            json.dumps(env),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["version"] == [3, 7]
    assert not [m for m in result["modules"] if m.split(".")[0] in ("numpy", "torch", "vfxmatte")]
    assert result["knobs"] > 100 and result["script"] > 10000
    assert result["hello"]["protocol"] == 1
    assert result["report"]["ok"] and result["report"]["written"] == [1001, 1002, 1003]
    assert result["progress"] == [1, 2, 3]
