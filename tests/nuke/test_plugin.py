"""The plugin inside a stand-in Nuke: node creation, Process, resume, cancel, Farm, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import vfxmatte_nuke.client as client_module
import vfxmatte_nuke.process as process_module
from vfxmatte_nuke import startup
from vfxmatte_nuke.client import WorkerClient, get_client, resolve_python, stop_workers, worker_env
from vfxmatte_nuke.colour import read_colourspace, working_colourspace
from vfxmatte_nuke.errors import PluginError, WorkerError
from vfxmatte_nuke.knobs import knob_list
from vfxmatte_nuke.node import create_node
from vfxmatte_nuke.paths import frame_path, missing_runs, parse_frame_list, parse_frame_range
from vfxmatte_nuke.process import farm, on_farm, on_key_frame_here, on_process, prepare, process
from vfxmatte_nuke.schema import load_schema

from vfxmatte.config import config_from_dict
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.io.image import probe_image, read_image


class FakeClient:
    """Records the options it is asked to run; answers with a fixed report or error."""

    def __init__(self, report=None, error=None, digest=None) -> None:
        self.configs: list[dict] = []
        self.report = report or {
            "ok": True,
            "cancelled": False,
            "written": [1001],
            "reused": [],
            "failed": {},
            "outputs": {},
            "summary": "1 frame(s) written",
        }
        self.error = error
        self.info = {"schema_digest": digest or load_schema()["digest"], "vfxmatte": "0.1.0"}

    def run(self, config, on_message=None, is_cancelled=None):
        self.configs.append(json.loads(json.dumps(config)))
        if self.error is not None:
            raise self.error
        on_message(
            {
                "type": "progress",
                "id": 1,
                "phase": "matte",
                "frame": 1001,
                "done": 1,
                "total": 1,
                "status": "written",
            }
        )
        return self.report


def _upstream(fake, node_class, render=None, frames=(1001, 1005), **knobs):
    node = fake.nodes.__getattr__(node_class)(**knobs)
    node.render = render
    node.range = frames
    return node


def _plate_pixels(shot):
    return lambda n: read_image(shot.frame(shot.plate, n)).pixels


def _roto_pixels(shot):
    mask = read_image(shot.mask).pixels[..., :1]
    return lambda n: np.concatenate([np.zeros(mask.shape[:2] + (3,), np.float32), mask], axis=2)


@pytest.fixture
def scene(fake_nuke, nuke_shot, tmp_path):
    """A saved script with a graded plate and a Roto mask feeding a new VfxMatte node."""
    fake_nuke.root_node["name"].setValue(str(tmp_path / "shot.nk"))
    plate = _upstream(fake_nuke, "Grade", _plate_pixels(nuke_shot))
    roto = _upstream(fake_nuke, "Roto", _roto_pixels(nuke_shot))
    fake_nuke.selected = plate
    group = create_node()
    group.setInput(1, roto)
    fake_nuke.this = group
    return fake_nuke, group, tmp_path / "vfxmatte" / "VfxMatte"


def test_create_node_builds_knobs_and_inner_graph(fake_nuke) -> None:
    plate = _upstream(fake_nuke, "Grade")
    fake_nuke.selected = plate
    group = create_node()
    specs = knob_list(load_schema())
    added = [c[2] for c in fake_nuke.calls if c[0] == "addKnob" and c[1] == "VfxMatte"]
    assert added == [k.name for k in specs]
    kinds = {
        "tab": "Tab_Knob",
        "group": "Tab_Knob",
        "end_group": "Tab_Knob",
        "enum": "Enumeration_Knob",
        "bool": "Boolean_Knob",
        "int": "Int_Knob",
        "double": "Double_Knob",
        "file": "File_Knob",
        "string": "String_Knob",
        "button": "PyScript_Knob",
        "text": "Text_Knob",
    }
    for spec in specs:
        knob = group[spec.name]
        assert knob.Class() == kinds[spec.kind], spec.name
        if spec.has_value:
            assert knob.value() == spec.default, spec.name
        if spec.kind == "enum":
            assert knob.extra["items"] == list(spec.choices)
        if spec.kind in ("int", "double") and None not in (spec.min, spec.max):
            assert knob.range == (spec.min, spec.max)
        if spec.kind == "group":
            assert knob.extra["group"] == fake_nuke.TABBEGINCLOSEDGROUP
        if spec.kind == "button":
            assert knob.value() == spec.script
        assert (fake_nuke.INVISIBLE in knob.flags) == spec.hidden
        if spec.kind not in ("tab", "group", "end_group"):
            assert (fake_nuke.STARTLINE in knob.flags) == spec.newline, spec.name
    assert group["propagate_backend"].tooltip.startswith("snapcut: local colour windows")
    children = {c.name(): c for c in group.children}
    assert [c.Class() for c in group.children] == ["Input", "Input", "Read", "Switch", "Output"]
    assert children["plate"]["number"].value() == 0 and children["mask"]["number"].value() == 1
    read = children["result"]
    assert read["file"].value() == "[value parent.result_file]" and read["raw"].value() is True
    assert read["first"].expression == "parent.result_first"
    assert children["show"].inputs == {0: children["plate"], 1: read}
    assert children["show"]["which"].expression == "parent.show_result"
    assert children["Output1"].inputs == {0: children["show"]}
    assert group.input(0) is plate and group["help"].value().startswith("VfxMatte")


def test_menus_and_preference(fake_nuke) -> None:
    startup.add_menus()
    startup.add_menus()
    commands = {(path, label) for path, label, _ in fake_nuke.menu_commands}
    assert ("Nodes/vfxmatte", "VfxMatte") in commands and (
        "Nuke/vfxmatte",
        "Stop workers",
    ) in commands
    assert fake_nuke.preferences["vfxmatte_python"].Class() == "File_Knob"
    assert [c for c in fake_nuke.calls if c[0] == "addKnob" and c[2] == "vfxmatte_python"] == [
        ("addKnob", "preferences", "vfxmatte_python")
    ]  # added once


def test_process_renders_inputs_runs_the_worker_and_shows_the_result(
    scene, nuke_shot, worker_client, tmp_path
) -> None:
    fake, group, out = scene
    report = process(group, client=worker_client)
    assert report["ok"] and report["written"] == list(range(1001, 1006))
    # The graded plate and the Roto were rendered by temporary Writes, then removed.
    assert fake.executed == [("Write1", 1001, 1005), ("Write1", 1001, 1001)]
    assert [c.Class() for c in group.children] == ["Input", "Input", "Read", "Switch", "Output"]
    assert (out / "input" / "plate.1005.exr").is_file() and (
        out / "input" / "mask.1001.exr"
    ).is_file()
    assert not (out / "input" / "mask.1002.exr").exists()
    # Progress through nuke.ProgressTask, then the result is shown.
    task = fake.tasks[-1]
    assert task.progress[-1] == 100 and any("matting frame 1005" in m for m in task.messages)
    pattern = str(out / "VfxMatte.####.exr")
    assert group["result_file"].value() == pattern and group["show_result"].value() is True
    assert (group["result_first"].value(), group["result_last"].value()) == (1001, 1005)
    assert group.child("result")["reload"].executed == 1
    assert "5 frame(s) written" in group["status"].value()
    assert set(probe_image(frame_path(pattern, 1003)).channels) == {
        "R",
        "G",
        "B",
        "A",
        "fg.R",
        "fg.G",
        "fg.B",
        "matte.A",
        "confidence.Y",
    }
    # The worker's frames are those of run_pipeline on the original plate and mask.
    direct = PipelineConfig(
        plate=nuke_shot.plate, mask=nuke_shot.mask, output=str(tmp_path / "direct" / "d.####.exr")
    )
    direct.output_options.kinds = "multilayer"
    direct.engine.progress = False
    run_pipeline(direct)
    for number in (1001, 1005):
        ours = read_image(frame_path(pattern, number), ["R", "G", "B", "A", "fg.R"]).pixels
        theirs = read_image(frame_path(direct.output, number), ["R", "G", "B", "A", "fg.R"]).pixels
        np.testing.assert_array_equal(ours, theirs)
    # Process again: nothing is rendered or matted again (resume) ...
    report = process(group, client=worker_client)
    assert len(fake.executed) == 2 and report["reused"] == list(range(1001, 1006))
    assert "0 frame(s) written, 5 already done" in group["status"].value()
    # ... unless 'force full render' is on.
    group["engine_overwrite"].setValue(True)
    report = process(group, client=worker_client)
    assert len(fake.executed) == 4 and report["written"] == list(range(1001, 1006))


def test_cancel_from_the_progress_dialog(fake_nuke, long_shot, worker_client, tmp_path) -> None:
    fake_nuke.root_node["name"].setValue(str(tmp_path / "shot.nk"))
    plate = _upstream(fake_nuke, "Read", frames=(1001, 1016), file=long_shot.plate)
    mask = _upstream(fake_nuke, "Read", frames=(1, 1), file=long_shot.mask)
    fake_nuke.selected = plate
    group = create_node()
    group.setInput(1, mask)
    fake_nuke.cancel_when = lambda task: len(task.progress) >= 1
    report = process(group, client=worker_client)
    assert report["cancelled"] and 1 <= len(report["written"]) <= 4
    assert fake_nuke.executed == []  # plain Reads: nothing rendered
    assert group["status"].value().endswith("press Process to resume")
    assert group["show_result"].value() is True
    fake_nuke.cancel_when = lambda task: False
    report = process(group, client=worker_client)
    assert report["ok"] and len(report["reused"]) + len(report["written"]) == 16


def test_plain_reads_are_read_directly(fake_nuke, nuke_shot, tmp_path) -> None:
    fake_nuke.root_node["name"].setValue(str(tmp_path / "shot.nk"))
    plate = _upstream(fake_nuke, "Read", file=nuke_shot.plate, colorspace="default (linear)")
    mask = _upstream(fake_nuke, "Read", frames=(1, 1), file=nuke_shot.mask)
    fake_nuke.selected = plate
    group = create_node()
    group.setInput(1, mask)
    client = FakeClient()
    process(group, client=client)
    assert fake_nuke.executed == []
    config = client.configs[0]
    assert config["plate"] == nuke_shot.plate and config["mask"] == nuke_shot.mask
    assert config["input"] == {"colourspace": "lin_rec709"} and config["key_frame"] == 1001
    assert config["frames"] == "1001-1005" and config["output_options"] == {"kinds": "multilayer"}
    assert config["output"] == str(tmp_path / "vfxmatte" / "VfxMatte" / "VfxMatte.####.exr")
    config_from_dict(PipelineConfig, config)  # the library takes it as it is
    # A colourspace the plugin cannot name for the worker: Nuke converts (renders) it.
    plate["colorspace"].setValue("AlexaV3LogC")
    plate.render = _plate_pixels(nuke_shot)
    process(group, client=client)
    assert client.configs[-1]["plate"].endswith("input/plate.####.exr")
    assert fake_nuke.executed == [("Write1", 1001, 1005)]
    # So does a frame offset.
    plate["colorspace"].setValue("sRGB")
    plate["frame"].setValue("frame+10")
    assert prepare(group).renders[0].input_name == "plate"


def test_mask_frames_user_knobs_and_given_masks(scene) -> None:
    fake, group, out = scene
    group["mask_frames"].setValue("1004, 1002")
    group["key_frame"].setValue(1003)
    group["frames"].setValue("1001-1004")
    group["output_options_kinds"].setValue("rgba,multilayer,alpha")
    group["matte_classical_band_fraction"].setValue(0.07)
    job = prepare(group)
    mask = str(out / "input" / "mask.####.exr")
    assert job.renders[1].frames == [1002, 1003, 1004] and job.renders[1].channels == "rgba"
    assert job.config["mask"] == frame_path(mask, 1003) and job.config["key_frame"] == 1003
    assert job.config["keyframes"] == f"1002={frame_path(mask, 1002)};1004={frame_path(mask, 1004)}"
    assert job.config["frames"] == "1001-1004" and job.frames == [1001, 1002, 1003, 1004]
    assert job.config["output_options"]["kinds"] == "multilayer,rgba,alpha"
    assert job.config["matte"] == {"classical": {"band_fraction": 0.07}}
    config_from_dict(PipelineConfig, job.config)
    group["propagate_backend"].setValue("given")
    job = prepare(group)
    assert job.config["mask"] == mask and job.renders[1].frames == [1001, 1002, 1003, 1004]
    assert "keyframes" not in job.config


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda fake, group: group.setInput(0, None), "Connect the plate"),
        (lambda fake, group: group.setInput(1, None), "Connect the keyframe mask"),
        (lambda fake, group: fake.root_node["name"].setValue("Root"), "Save the script first"),
        (lambda fake, group: group["frames"].setValue("1001:1005"), "is not FIRST-LAST"),
        (lambda fake, group: group["key_frame"].setValue(999), "not among the frames"),
        (lambda fake, group: group["output"].setValue("/tmp/x.exr"), "needs a frame token"),
        (lambda fake, group: group["mask_frames"].setValue("ten"), "frame numbers"),
        (lambda fake, group: setattr(fake, "render_error", "Cancelled"), "stopped: Cancelled"),
    ],
)
def test_process_errors_are_shown_as_one_message(scene, monkeypatch, change, message) -> None:
    fake, group, _ = scene
    monkeypatch.setattr(process_module, "get_client", lambda python: FakeClient())
    monkeypatch.setenv("VFXMATTE_PYTHON", sys.executable)
    change(fake, group)
    on_process()
    assert len(fake.messages) == 1 and message in fake.messages[0], fake.messages


def test_worker_errors_reach_the_artist(scene, monkeypatch) -> None:
    fake, group, _ = scene
    error = WorkerError("Option 'matte.backend' got 'x'. Did you mean 'classical'?", "ConfigError")
    monkeypatch.setattr(process_module, "get_client", lambda python: FakeClient(error=error))
    monkeypatch.setenv("VFXMATTE_PYTHON", sys.executable)
    on_process()
    assert fake.messages == ["VfxMatte: Option 'matte.backend' got 'x'. Did you mean 'classical'?"]
    monkeypatch.delenv("VFXMATTE_PYTHON")
    fake.messages.clear()
    on_process()
    assert "No worker Python is set" in fake.messages[0]


def test_schema_mismatch_is_logged(scene, monkeypatch) -> None:
    fake, group, _ = scene
    monkeypatch.setattr(process_module, "get_client", lambda python: FakeClient(digest="other"))
    monkeypatch.setenv("VFXMATTE_PYTHON", sys.executable)
    on_process()
    assert fake.messages == [] and any("another option schema" in p for p in fake.printed)


def test_key_frame_here(scene) -> None:
    fake, group, _ = scene
    fake.current = 1003
    on_key_frame_here()
    assert group["key_frame"].value() == 1003


FARM_STAND_IN = """
args = sys.argv[1:]
config = json.load(open(args[args.index("--config") + 1]))
if os.environ.get("PYTHONHOME"):
    sys.exit("PYTHONHOME leaked into the worker environment")
print("# vfxmatte farm-split (stand-in)", " ".join(args))
for first in range(1001, 1006, 2):
    print(f"vfxmatte matte --frames {first}-{min(first + 1, 1005)} {config['output']}")
"""


def test_farm_button_runs_farm_split_in_the_worker_python(
    scene, stand_in_python, monkeypatch
) -> None:
    fake, group, out = scene
    monkeypatch.setenv("PYTHONHOME", "/nuke/python")  # Nuke's; must not reach the worker
    group["worker_python"].setValue(stand_in_python(FARM_STAND_IN))
    fake.answer = True  # the artist allows the knob's python when asked
    on_farm()
    assert len(fake.asked) == 1 and group["worker_python"].value() in fake.asked[0]
    assert len(fake.messages) == 1 and fake.messages[0].startswith("vfxmatte farm-split:")
    config_path = str(out / "VfxMatte.vfxmatte.json")
    python = group["worker_python"].value()
    assert (
        f"-m vfxmatte farm-split --config {config_path} --program {python} -m vfxmatte"
        in fake.messages[0]
    )
    assert "--frames 1005-1005" in fake.messages[0]
    assert (out / "VfxMatte_farm.txt").read_text().count("vfxmatte matte") == 3
    assert any("--frames 1001-1002" in p for p in fake.printed)
    config = config_from_dict(PipelineConfig, json.loads(open(config_path).read()))
    assert config.plate.endswith("input/plate.####.exr") and config.frames == "1001-1005"
    assert fake.executed == [("Write1", 1001, 1005), ("Write1", 1001, 1001)]  # inputs on disk
    group["worker_python"].setValue(
        stand_in_python(
            "sys.stderr.write(\"vfxmatte: error: argument COMMAND: invalid choice: 'farm-split'\\n\")"
            "\nsys.exit(2)",
            name="old_python",
        )
    )
    fake.messages.clear()
    on_farm()
    assert "farm-split failed (exit code 2)" in fake.messages[0]
    assert "invalid choice: 'farm-split'" in fake.messages[0]


def test_farm_with_the_real_farm_split_when_it_exists(scene, monkeypatch) -> None:
    probe = subprocess.run(
        [sys.executable, "-m", "vfxmatte", "farm-split", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if probe.returncode != 0:
        pytest.skip("vfxmatte farm-split is not in this version yet")
    fake, group, out = scene
    monkeypatch.setenv(
        "VFXMATTE_ALLOWED_PYTHONS", os.pathsep.join(["/opt/x/python", sys.executable])
    )
    group["worker_python"].setValue(sys.executable)
    group["engine_chunk_size"].setValue(2)
    text = farm(group)
    lines = [line for line in text.splitlines() if not line.startswith("#")]
    assert len(lines) == 1 + 3 and all(
        line.startswith(f"{sys.executable} -m vfxmatte matte") for line in lines
    )
    assert "--phase propagate" in lines[0] and "--frames 1005" in lines[-1]
    group["farm_json"].setValue(True)
    job = json.loads(farm(group))
    assert [j["name"] for j in job["jobs"]] == ["propagate", "chunk-001", "chunk-002", "chunk-003"]
    assert (out / "VfxMatte_farm.json").is_file()


def test_worker_python_resolution(tmp_path, stand_in_python) -> None:
    python = stand_in_python("pass")
    assert resolve_python(python, "/nope", {"VFXMATTE_PYTHON": "/nope"}) == python
    assert resolve_python("", python, {"VFXMATTE_PYTHON": "/nope"}) == python
    assert resolve_python(" ", "", {"VFXMATTE_PYTHON": python}) == python
    with pytest.raises(PluginError, match="Preferences > vfxmatte > worker python names '/nope'"):
        resolve_python("", "/nope", {})
    with pytest.raises(PluginError, match="VFXMATTE_PYTHON"):
        resolve_python("", "", {})
    env = worker_env(
        {
            "PYTHONHOME": "/nuke",
            "PYTHONPATH": "/nuke/lib",
            "PATH": "/bin",
            "VFXMATTE_WORKER_PYTHONPATH": "/studio/lib",
        }
    )
    assert "PYTHONHOME" not in env and env["PYTHONPATH"] == "/studio/lib" and env["PATH"] == "/bin"


def test_client_reports_a_worker_that_cannot_start(stand_in_python) -> None:
    broken = stand_in_python(
        "sys.stderr.write(\"ModuleNotFoundError: No module named 'vfxmatte'\\n\"); sys.exit(1)"
    )
    with pytest.raises(WorkerError, match="vfxmatte is not installed for that Python") as info:
        WorkerClient(broken, args=()).start()
    assert info.value.error == "WorkerStopped" and "exit code 1" in str(info.value)
    dies = stand_in_python(
        "line = sys.stdin.readline()\n"
        "print(json.dumps({'type': 'hello', 'id': 1, 'protocol': 1}), flush=True)\n"
        "sys.stdin.readline(); print(json.dumps({'type': 'started', 'id': 2}), flush=True)\n"
        "sys.exit(3)",
        name="dies",
    )
    client = WorkerClient(dies, args=())
    client.start()
    with pytest.raises(WorkerError, match="stopped \\(exit code 3\\)"):
        client.run({"plate": "x"})
    client.close()


def test_client_run_cancel_and_session_workers(worker_client, nuke_shot, tmp_path) -> None:
    seen: list[dict] = []
    config = {
        "plate": nuke_shot.plate,
        "mask": nuke_shot.mask,
        "output": str(tmp_path / "m.####.exr"),
    }
    report = worker_client.run(config, seen.append, lambda: len(seen) >= 2)
    assert report["cancelled"] and seen[0]["type"] == "started"
    with pytest.raises(WorkerError, match="Did you mean 'matte'") as info:
        worker_client.run({**config, "mate": {}})
    assert info.value.error == "ConfigError" and worker_client.alive
    assert worker_client.request("status")["state"] == "idle"
    first = get_client(sys.executable)
    assert get_client(sys.executable) is first and first.alive
    assert stop_workers() == 1 and not first.alive and client_module._CLIENTS == {}


def test_colourspaces() -> None:
    default = working_colourspace("linear")
    assert default == ("lin_rec709", "")
    assert working_colourspace("ACES - ACEScg", "OCIO", "aces_1.2") == ("ACEScg", "")
    assert working_colourspace("scene_linear", "OCIO", "aces_1.3") == ("ACEScg", "")
    assert working_colourspace("Linear", "OCIO", "custom", "/s/config.ocio") == (
        "Linear",
        "/s/config.ocio",
    )
    assert read_colourspace(False, "default (linear)", "linear", default) == default
    assert read_colourspace(False, "sRGB", "linear", default) == ("sRGB", "")
    assert read_colourspace(True, "sRGB", "linear", default) == default  # raw: as is
    assert read_colourspace(False, "AlexaV3LogC", "linear", default) is None
    aces = working_colourspace("ACES - ACEScg", "OCIO", "aces_1.2")
    assert read_colourspace(False, "ACES - ACEScg", "ACES - ACEScg", aces) == aces
    assert read_colourspace(False, "Utility - sRGB - Texture", "ACES - ACEScg", aces) is None
    assert read_colourspace(False, "default", "linear", default, ".exr") == default
    assert read_colourspace(False, "default", "linear", default, ".dpx") is None


def test_paths(tmp_path) -> None:
    assert frame_path("/a/b.####.exr", 7) == "/a/b.0007.exr"
    assert frame_path("/a/b.%04d.exr", 1001) == "/a/b.1001.exr"
    assert (
        frame_path("/a/b.%d.exr", 12) == "/a/b.12.exr" and frame_path("/a/m.png", 3) == "/a/m.png"
    )
    assert parse_frame_range("1001-1100x2") == (1001, 1100, 2) and parse_frame_range("7") == (
        7,
        7,
        1,
    )
    with pytest.raises(PluginError, match="is empty"):
        parse_frame_range("10-1")
    assert parse_frame_list("1050 1100,1020;1050") == [1020, 1050, 1100]
    pattern = str(tmp_path / "p.####.exr")
    for number in (2, 3, 7):
        open(frame_path(pattern, number), "w").close()
    assert missing_runs(pattern, [1, 2, 3, 4, 5, 7, 8]) == [(1, 1), (4, 5), (8, 8)]
    assert missing_runs(pattern, [2, 3], redo=True) == [(2, 3)]
    assert os.path.basename(frame_path(pattern, 9)) == "p.0009.exr"


def test_progress_dialog_stays_alive_while_the_worker_is_silent(fake_nuke, monkeypatch) -> None:
    from vfxmatte_nuke import nuke_api

    clock = [100.0]
    monkeypatch.setattr(process_module.time, "monotonic", lambda: clock[0])
    with nuke_api.progress_task("VfxMatte: test") as task:
        progress = process_module._Progress(task, "5 frame(s) -> out")
        clock[0] += 0.5
        assert progress.is_cancelled() is False
        clock[0] += 2.0  # a model loading: no message from the worker
        progress.is_cancelled()
        progress.on_message(
            {"type": "progress", "phase": "propagate", "frame": 1003, "done": 3, "total": 5}
        )
        clock[0] += 1.5
        progress.is_cancelled()
        progress.on_message({"type": "log", "level": "warning", "message": "dense fallback"})
    recorded = fake_nuke.tasks[0]
    assert recorded.title == "VfxMatte: test" and recorded.progress == [60]
    assert recorded.messages == [
        "5 frame(s) -> out",
        "5 frame(s) -> out (2 s)",
        "propagating frame 1003 (3/5)",
        "propagating frame 1003 (3/5) (2 s)",
    ]
    assert fake_nuke.printed == ["vfxmatte worker warning: dense fallback"]


def test_status_names_where_propagation_drifts(fake_nuke) -> None:
    group = create_node()
    job = process_module.Job({}, "/tmp/out/VfxMatte.####.exr", [1001, 1002], [], False, {})
    report = {
        "summary": "12 frame(s) written, 0 already done in 3.0 s",
        "written": [1001],
        "drift": {"unreliable": [[1005, 1009, 1007]]},
        "drift_summary": "propagation drift: frames 1005-1009 look unreliable: add a keyframe "
        "near 1007",
    }
    status = process_module.show_result(group, job, report)
    assert status.endswith("frames 1005-1009 look unreliable: add a keyframe near 1007")
    assert group["status"].value() == status
    calm = process_module.show_result(group, job, {**report, "drift": {"unreliable": []}})
    assert "drift" not in calm
