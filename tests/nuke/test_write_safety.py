"""The worker (and so the Nuke node) never writes an input: an ``error``, not ``ok: true``."""

from __future__ import annotations

import hashlib
import json
import shutil

import pytest
from vfxmatte_nuke.errors import WorkerError
from vfxmatte_nuke.node import create_node
from vfxmatte_nuke.process import process

from vfxmatte.worker.server import Worker


def _digest(folder) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


@pytest.fixture
def plates(nuke_shot, tmp_path):
    folder = tmp_path / "plates"
    shutil.copytree(nuke_shot.frame(nuke_shot.plate, 1001).rsplit("/", 1)[0], folder)
    return folder


def _run(worker: Worker, lines: list[str], config: dict) -> list[dict]:
    worker.handle_line(json.dumps({"type": "run", "id": 7, "config": config}))
    worker.wait(60)
    return [json.loads(line) for line in lines]


@pytest.mark.parametrize("spelling", ["plate.####.exr", "plate.%04d.exr"])
def test_a_worker_run_onto_the_plate_is_an_error(plates, nuke_shot, spelling) -> None:
    before = _digest(plates)
    lines: list[str] = []
    config = {
        "plate": str(plates / "plate.####.exr"),
        "mask": nuke_shot.mask,
        "output": str(plates / spelling),
        "engine": {"overwrite": True},
    }
    messages = _run(Worker(lines.append), lines, config)
    final = messages[-1]
    assert final["type"] == "error" and final["error"] == "InputOverwriteError", final
    assert "is the plate frame 1001" in final["message"] and not final["internal"]
    assert not any(m["type"] == "result" for m in messages)
    assert _digest(plates) == before


def test_the_sam2_first_phase_is_checked_before_it_writes(plates, nuke_shot) -> None:
    lines: list[str] = []
    config = {
        "plate": str(plates / "plate.####.exr"),
        "mask": nuke_shot.mask,
        "output": str(plates / "plate.####.exr"),
        "propagate": {"backend": "sam2", "sam2": {"random_weights": True}},
    }
    final = _run(Worker(lines.append), lines, config)[-1]
    assert final["error"] == "InputOverwriteError"
    assert not (plates / "guidance").exists()


def test_the_nuke_node_writing_onto_its_read_is_refused(
    fake_nuke, plates, nuke_shot, worker_client, tmp_path
) -> None:
    fake_nuke.root_node["name"].setValue(str(tmp_path / "shot.nk"))
    plate = fake_nuke.nodes.Read(file=str(plates / "plate.####.exr"))
    plate.range = (1001, 1005)
    mask = fake_nuke.nodes.Read(file=nuke_shot.mask)
    mask.range = (1, 1)
    fake_nuke.selected = plate
    group = create_node()
    group.setInput(1, mask)
    group["output"].setValue(str(plates / "plate.%04d.exr"))
    before = _digest(plates)
    with pytest.raises(WorkerError, match="is the plate frame 1001") as info:
        process(group, client=worker_client)
    assert info.value.error == "InputOverwriteError"
    assert _digest(plates) == before
