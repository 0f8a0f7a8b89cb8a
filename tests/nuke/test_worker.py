"""The worker protocol end to end: ``python -m vfxmatte.worker`` as a subprocess."""

from __future__ import annotations

import json
import queue
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.io.image import read_image, write_image
from vfxmatte.io.sequence import FramePattern
from vfxmatte.worker import PROTOCOL_VERSION, config_schema


class Proc:
    """A worker subprocess with line-based send and receive (with timeouts)."""

    def __init__(self) -> None:
        self.p = subprocess.Popen(
            [sys.executable, "-m", "vfxmatte.worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            bufsize=1,
        )
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=lambda: self.p.stderr.read(), daemon=True).start()

    def _read(self) -> None:
        for line in self.p.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def raw(self, text: str) -> None:
        self.p.stdin.write(text + "\n")
        self.p.stdin.flush()

    def send(self, **message) -> None:
        self.raw(json.dumps(message))

    def recv(self, timeout: float = 60.0) -> dict:
        line = self.lines.get(timeout=timeout)
        assert line is not None, "the worker ended"
        return json.loads(line)

    def until(self, kind: str, request_id, timeout: float = 120.0) -> list[dict]:
        """Every message up to and including the first ``kind`` (or error) of ``request_id``."""
        seen = []
        while True:
            message = self.recv(timeout)
            seen.append(message)
            if message.get("id") == request_id and message["type"] in (kind, "error"):
                return seen

    def close(self) -> int:
        if self.p.poll() is None:
            self.send(type="shutdown", id="bye")
        code = self.p.wait(30)
        self.p.stdin.close()
        self.p.stdout.close()
        self.p.stderr.close()
        return code


@pytest.fixture(scope="module")
def worker():
    proc = Proc()
    yield proc
    proc.close()


def _config(shot, out, **sections) -> dict:
    data = {
        "plate": shot.plate,
        "mask": shot.mask,
        "output": str(out / "m.####.exr"),
        "output_options": {"kinds": "rgba,confidence"},
    }
    data.update(sections)
    return data


def _frames(pattern: str, numbers) -> list[np.ndarray]:
    p = FramePattern.parse(pattern)
    return [read_image(p.path(n)).pixels for n in numbers]


def test_hello_schema_and_status(worker) -> None:
    worker.send(type="hello", id=1, protocol=PROTOCOL_VERSION)
    hello = worker.recv()
    assert hello["type"] == "hello" and hello["id"] == 1 and hello["protocol"] == PROTOCOL_VERSION
    assert hello["schema_digest"] == config_schema()["digest"] and hello["pid"] == worker.p.pid
    worker.send(type="schema", id="s")
    schema = worker.recv()["schema"]
    assert schema == json.loads(json.dumps(config_schema()))
    keys = {p["key"]: p for p in schema["params"]}
    assert keys["matte.backend"]["choices"] and keys["output"]["path"] is True
    assert keys["engine.overwrite"]["type"] == "bool"
    worker.send(type="status", id=2)
    status = worker.recv()
    assert status["type"] == "status" and status["state"] == "idle" and status["run"] is None


def test_run_streams_progress_and_matches_run_pipeline(worker, nuke_shot, tmp_path) -> None:
    worker.send(type="run", id="r1", config=_config(nuke_shot, tmp_path / "w"))
    messages = worker.until("result", "r1")
    assert messages[0] == {"type": "started", "id": "r1"}
    progress = [m for m in messages if m["type"] == "progress"]
    assert [m["done"] for m in progress] == [1, 2, 3, 4, 5]
    assert {m["total"] for m in progress} == {5} and {m["phase"] for m in progress} == {"matte"}
    assert sorted(m["frame"] for m in progress) == list(range(1001, 1006))
    report = messages[-1]["report"]
    assert report["ok"] and report["written"] == list(range(1001, 1006)) and not report["failed"]
    assert set(report["outputs"]) == {"rgba", "confidence"} and report["summary"]
    # The same options through run_pipeline in this process give the same files.
    direct = PipelineConfig(
        plate=nuke_shot.plate, mask=nuke_shot.mask, output=str(tmp_path / "d" / "m.####.exr")
    )
    direct.output_options.kinds = "rgba,confidence"
    direct.engine.progress = False
    run_pipeline(direct)
    for kind in ("m.####.exr", "m_confidence.####.exr"):
        ours = _frames(str(tmp_path / "w" / kind), range(1001, 1006))
        theirs = _frames(str(tmp_path / "d" / kind), range(1001, 1006))
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
    # Running it again resumes: every frame is already there.
    worker.send(type="run", id="r2", config=_config(nuke_shot, tmp_path / "w"))
    report = worker.until("result", "r2")[-1]["report"]
    assert report["written"] == [] and report["reused"] == list(range(1001, 1006))
    worker.send(
        type="run",
        id="r3",
        config=_config(nuke_shot, tmp_path / "w"),
        set=["engine.overwrite=true"],
    )
    assert worker.until("result", "r3")[-1]["report"]["written"] == list(range(1001, 1006))


def test_cancel_stops_within_a_frame(worker, long_shot, tmp_path) -> None:
    worker.send(type="run", id="long", config=_config(long_shot, tmp_path))
    while (message := worker.recv())["type"] != "progress":
        assert message["type"] == "started"
    seen = message["done"]
    sent = time.perf_counter()
    worker.send(type="cancel", id="c")
    messages = worker.until("result", "long")
    waited = time.perf_counter() - sent
    assert {"type": "cancel", "id": "c", "run": "long"} in messages
    report = messages[-1]["report"]
    assert report["cancelled"] and not report["ok"]
    # At most the frame in flight (and one more on a busy machine) after the cancel.
    assert len(report["written"]) <= seen + 2 < 16, (seen, report["written"])
    per_frame = report["seconds"] / max(1, len(report["written"]))
    assert waited < 5 * per_frame + 1.0
    # Cancelling when idle says so; resuming finishes the shot without redoing frames.
    worker.send(type="cancel", id="c2")
    assert worker.recv() == {"type": "cancel", "id": "c2", "run": None}
    worker.send(type="run", id="rest", config=_config(long_shot, tmp_path))
    rest = worker.until("result", "rest")[-1]["report"]
    assert rest["reused"] == report["written"] and len(rest["written"]) == 16 - len(rest["reused"])


@pytest.mark.parametrize(
    ("line", "expect"),
    [
        ("{nope", "is not valid JSON"),
        ('"run"', "must be a JSON object"),
        ('{"id": 9}', "has no 'type'"),
        ('{"type": "stauts", "id": 9}', "Did you mean 'status'?"),
        ('{"type": "run", "id": 9, "confg": {}}', "Did you mean 'config'?"),
        ('{"type": "run", "id": 9, "config": [1]}', "must be a mapping"),
        ('{"type": "run", "id": 9, "config": {"mate": {}}}', "Did you mean 'matte'?"),
        (
            '{"type": "run", "id": 9, "config": {"matte": {"backend": "clasical"}}}',
            "Did you mean 'classical'?",
        ),
        ('{"type": "run", "id": 9, "set": ["engine.overwrite"]}', "KEY=VALUE"),
        ('{"type": "hello", "id": 9, "protocol": 99}', "speaks 1"),
        ('{"type": "status", "id": [1]}', "must be a string or an integer"),
    ],
)
def test_bad_input_gives_an_error_message(worker, line: str, expect: str) -> None:
    worker.raw(line)
    error = worker.recv()
    assert error["type"] == "error" and expect in error["message"], error
    assert error["error"] in ("ProtocolError", "ConfigError") and error["internal"] is False
    if '"id": 9' in line:
        assert error["id"] == 9
    worker.send(type="status", id="alive")  # still serving
    assert worker.recv()["state"] == "idle"


def test_library_errors_arrive_with_their_type(worker, nuke_shot, tmp_path) -> None:
    config = _config(nuke_shot, tmp_path, plate=str(tmp_path / "none.####.exr"))
    worker.send(type="run", id="missing", config=config)
    error = worker.until("result", "missing")[-1]
    assert error["type"] == "error" and error["error"] == "InputError"
    assert "No file matches" in error["message"]
    # A second run while one is going is refused; the first one is unharmed.
    worker.send(type="run", id="a", config=_config(nuke_shot, tmp_path / "a"))
    worker.send(type="run", id="b", config=_config(nuke_shot, tmp_path / "b"))
    messages = worker.until("result", "a")
    refusal = next(m for m in messages if m.get("id") == "b")
    assert refusal["type"] == "error" and "already running" in refusal["message"]
    assert messages[-1]["type"] == "result" and messages[-1]["report"]["ok"]


def test_library_warnings_are_forwarded(worker, nuke_shot, tmp_path) -> None:
    plate = tmp_path / "nan.####.exr"
    for number in (1, 2):
        pixels = read_image(nuke_shot.plate.replace("####", f"{1000 + number}")).pixels.copy()
        pixels[3, 4, 1] = np.nan
        write_image(str(plate).replace("####", f"{number:04d}"), pixels, ["R", "G", "B"])
    config = _config(nuke_shot, tmp_path / "o", plate=str(plate), input={"nonfinite": "zero"})
    worker.send(type="run", id="nan", config=config)
    messages = worker.until("result", "nan")
    logs = [m for m in messages if m["type"] == "log"]
    assert messages[-1]["type"] == "result" and messages[-1]["report"]["ok"]
    assert logs and logs[0]["level"] == "warning" and logs[0]["id"] == "nan"
    assert "replaced 1 NaN/inf pixel(s) with 0" in logs[0]["message"]


class FakeSam2:
    """A deterministic stand-in for the SAM 2 propagator (same interface, no model)."""

    builds = 0

    def __init__(self, config) -> None:
        FakeSam2.builds += 1
        self.config = config

    def propagate(self, get_frame, frames, keyframes):
        key = min(keyframes)
        mask = keyframes[key][1]
        for number in frames:
            image = get_frame(number)
            yield (
                number,
                {1: np.clip(np.roll(mask, number - key, axis=1) * image[..., 1] * 4, 0, 1)},
            )


def test_worker_sam2_phase_matches_the_engine_and_keeps_the_model(
    nuke_shot, tmp_path, monkeypatch
) -> None:
    from vfxmatte.worker.server import Worker

    monkeypatch.setattr("vfxmatte.propagate.sam2.Sam2Propagator", FakeSam2)
    lines: list[str] = []
    worker = Worker(lines.append)

    def run(request_id, out):
        config = _config(nuke_shot, out, propagate={"backend": "sam2"})
        worker.handle_line(json.dumps({"type": "run", "id": request_id, "config": config}))
        worker.wait()
        return [json.loads(line) for line in lines if json.loads(line).get("id") == request_id]

    messages = run(1, tmp_path / "w")
    assert messages[-1]["type"] == "result", messages[-1]
    phases = [m["phase"] for m in messages if m["type"] == "progress"]
    assert phases == ["propagate"] * 5 + ["matte"] * 5
    run(2, tmp_path / "w2")
    assert FakeSam2.builds == 1 and worker.models.builds == 1
    assert worker.models.keys()[0].startswith("sam2:")
    direct = PipelineConfig(
        plate=nuke_shot.plate, mask=nuke_shot.mask, output=str(tmp_path / "d" / "m.####.exr")
    )
    direct.output_options.kinds = "rgba,confidence"
    direct.engine.progress = False
    direct.propagate.backend = "sam2"
    run_pipeline(direct)
    assert FakeSam2.builds == 2
    for name in ("m.####.exr", "m_confidence.####.exr", "guidance/m_guidance.####.exr"):
        ours = _frames(str(tmp_path / "w" / name), range(1001, 1006))
        theirs = _frames(str(tmp_path / "d" / name), range(1001, 1006))
        for a, b in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(a, b)


def test_real_sam2_runs_and_cancels_in_the_worker(tmp_path_factory, tmp_path) -> None:
    pytest.importorskip("sam2")
    from vfxmatte.synth import ShotSpec, write_shot

    spec = ShotSpec(width=64, height=48, frames=3, seed=2, supersample=1, motion_blur_samples=1)
    shot = write_shot(tmp_path_factory.mktemp("sam2_shot"), spec)
    sam2 = {"random_weights": True, "image_size": 128, "device": "cpu"}
    worker = Proc()
    try:
        worker.send(
            type="run",
            id=1,
            config=_config(shot, tmp_path / "a", propagate={"backend": "sam2", "sam2": sam2}),
        )
        messages = worker.until("result", 1, timeout=300)
        assert messages[-1]["type"] == "result", messages[-1]
        assert [m["phase"] for m in messages if m["type"] == "progress"] == ["propagate"] * 3 + [
            "matte"
        ] * 3
        # The same options again: the model is reused; a cancel during propagation
        # stops before any matte is written.
        worker.send(
            type="run",
            id=2,
            config=_config(shot, tmp_path / "b", propagate={"backend": "sam2", "sam2": sam2}),
        )
        assert worker.recv()["type"] == "started" and worker.recv()["phase"] == "propagate"
        worker.send(type="cancel", id=3)
        report = worker.until("result", 2, timeout=300)[-1]["report"]
        assert report["cancelled"] and report["written"] == []
        worker.send(type="status", id=4)
        status = worker.until("status", 4, timeout=60)[-1]  # log lines may come first
        assert status["models"] == ["sam2"] and status["model_builds"] == 1
    finally:
        assert worker.close() == 0


def test_shutdown_and_end_of_input_exit_cleanly(nuke_shot, tmp_path) -> None:
    worker = Proc()
    worker.send(type="run", id="r", config=_config(nuke_shot, tmp_path))
    worker.send(type="shutdown", id="s")
    messages = worker.until("shutdown", "s")
    types = [m["type"] for m in messages]
    assert types.index("result") < types.index("shutdown")  # the run ended first
    assert worker.p.wait(30) == 0
    worker.close()
    quiet = subprocess.run(
        [sys.executable, "-m", "vfxmatte.worker"],
        input="",
        text=True,
        capture_output=True,
        timeout=60,
    )
    assert quiet.returncode == 0 and quiet.stdout == ""


def test_stray_prints_do_not_reach_the_protocol_stream() -> None:
    code = (
        "import io, os, sys\n"
        "from vfxmatte.worker.server import serve\n"
        'serve(io.StringIO(\'{"type": "status", "id": 1}\\n\'))\n'
        "print('noise from Python')\n"
        "os.write(1, b'noise from C\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["type"] == "status"
    assert "noise from Python" in done.stderr and "noise from C" in done.stderr
