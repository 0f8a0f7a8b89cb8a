"""What a ComfyUI user sees: one message per failure, in widget words, the user's mask named,
no keyframe files left behind, templates the front end can open, summaries on the node.

The same behaviour is checked inside the real ComfyUI 0.8.0 by tests/hosts/comfyui_real.py.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch

from vfxmatte.errors import ConfigError, VfxMatteError
from vfxmatte.io.mask import read_mask

NODES = Path(__file__).resolve().parents[2] / "nodes"
#: The folder names ComfyUI 0.8 lists under Templates (app/custom_node_manager.py).
TEMPLATE_FOLDERS = ("example_workflows", "example", "examples", "workflow", "workflows")


def _wording(pack):
    return importlib.import_module(f"{pack.__name__}.wording")


def test_validate_inputs_never_fails_and_the_run_stops_once(nodes, comfy, comfy_shot) -> None:
    shot = nodes["VfxMatte.MatteShot"]
    bad = {"output": "o/m.####.exr", "propagate_backend": "flw"}
    assert shot.VALIDATE_INPUTS(**bad) is True  # ComfyUI would repeat a failure per input
    text = shot.check(**bad)
    assert "'flow'" in text and "--" not in text
    plate, *_ = nodes["VfxMatte.OpenPlate"]().open(plate="shot/plate/plate.####.exr")
    with pytest.raises(ConfigError) as caught:
        shot().run(plate=plate, mask="shot/mask.png", **bad)
    assert str(caught.value) == text
    assert not (comfy.output_dir / "o").exists()  # refused before anything was written


def test_flags_become_widgets(pack, nodes) -> None:
    words = _wording(pack).widget_words
    names = nodes["VfxMatte.MatteShot"].widget_names()
    text = words("Mask 96x64 vs plate 48x32. Pass --mask-resize to scale the mask.", names)
    assert text == "Mask 96x64 vs plate 48x32. Turn on 'input_mask_resize' to scale the mask."
    assert words("give keyframes there, or widen --frames.", names) == (
        "give keyframes there, or widen 'frames' (on the Open Plate node)."
    )
    assert words("or use --executor processes on a shared machine.", names) == (
        "or set 'engine_executor' to processes on a shared machine."
    )
    assert words("--matte.classical.band-fraction must be in [0, 1]", names) == (
        "'matte_classical_band_fraction' must be in [0, 1]"
    )
    assert words("run pip install --no-deps sam2", names) == "run pip install --no-deps sam2"


def test_run_errors_are_reworded(pack, nodes, monkeypatch, comfy, comfy_shot) -> None:
    module = importlib.import_module(f"{pack.__name__}.shot_nodes")

    def fails(*args, **kwargs):
        raise VfxMatteError("frames 1001-1002 have no guidance: widen --frames.")

    monkeypatch.setattr(module, "run_pipeline", fails)
    plate, *_ = nodes["VfxMatte.OpenPlate"]().open(plate="shot/plate/plate.####.exr")
    with pytest.raises(VfxMatteError, match=r"widen 'frames' \(on the Open Plate node\)\.$"):
        nodes["VfxMatte.MatteShot"]().run(plate=plate, output="w/m.####.exr", mask="shot/mask.png")


def test_a_bad_mask_channel_names_the_users_mask(nodes, comfy, comfy_shot) -> None:
    plate, *_ = nodes["VfxMatte.OpenPlate"]().open(plate="shot/plate/plate.####.exr")
    mask = torch.from_numpy(read_mask(comfy_shot.mask))[None]
    with pytest.raises(VfxMatteError) as caught:
        nodes["VfxMatte.MatteShot"]().run(
            plate=plate, output="b/m.####.exr", key_mask=mask, input_mask_channel="mask.matte"
        )
    text = str(caught.value)
    assert "key_mask (the MASK input)" in text and "keyframes" not in text, text
    assert "_key." not in text, text
    assert not (comfy.output_dir / "b" / "keyframes").exists()


@pytest.mark.parametrize("channel", ["auto", "R", "A"])
def test_the_mask_channel_widget_reads_a_mask_input(nodes, comfy, comfy_shot, channel) -> None:
    """A MASK input is saved in every channel: the widget meant for files does not break it."""
    plate, *_ = nodes["VfxMatte.OpenPlate"]().open(
        plate="shot/plate/plate.####.exr", frames="1001-1002"
    )
    mask = torch.from_numpy(read_mask(comfy_shot.mask))[None]
    out = nodes["VfxMatte.MatteShot"]().run(
        plate=plate, output=f"c{channel}/m.####.exr", key_mask=mask, input_mask_channel=channel,
        output_options_kinds="alpha",
    )  # fmt: skip
    assert out["result"][1].startswith("2 frame(s) written")
    assert not (comfy.output_dir / f"c{channel}" / "keyframes").exists()


def test_templates_are_ui_format_with_thumbnails() -> None:
    templates = sorted((NODES / "example_workflows").glob("*.json"))
    assert [p.stem for p in templates] == ["matte_shot", "panoptic_layers"]
    for path in templates:
        workflow = json.loads(path.read_text(encoding="utf-8"))
        assert {"nodes", "links", "version"} <= set(workflow), path
        thumbnail = path.with_suffix(".jpg")
        assert thumbnail.read_bytes()[:3] == b"\xff\xd8\xff", thumbnail
    for folder in TEMPLATE_FOLDERS[1:]:
        assert not list(NODES.glob(f"{folder}/*.json")), f"nodes/{folder} would be listed"
    for path in (NODES / "api_workflows").glob("*.json"):
        assert "nodes" not in json.loads(path.read_text(encoding="utf-8")), path


def test_the_web_extension_shows_the_summary(pack) -> None:
    assert pack.WEB_DIRECTORY == "./web"
    script = (NODES / "web" / "vfxmatte.js").read_text(encoding="utf-8")
    assert "registerExtension" in script and "onExecuted" in script and "message?.text" in script
    assert "serialize: false" in script  # never saved into the workflow's widget values


def test_the_pack_requires_the_library_from_its_git_repository() -> None:
    """vfxmatte is not on the package index: a bare name would not install."""
    from packaging.requirements import Requirement

    lines = (NODES / "requirements.txt").read_text(encoding="utf-8").splitlines()
    (line,) = [ln for ln in lines if ln.strip() and not ln.startswith("#")]
    requirement = Requirement(line)
    assert requirement.name == "vfxmatte" and requirement.extras == {"classical"}
    assert requirement.url and requirement.url.startswith("git+https://")
    pyproject = (NODES / "pyproject.toml").read_text(encoding="utf-8")
    assert f'dependencies = ["{line}"]' in pyproject


NODE_HARNESS = """
import { registered } from "./scripts/app.js";
import "./extensions/pack/vfxmatte.js";
const ext = registered[0];
function NodeType() { this.widgets = []; }
NodeType.prototype.addWidget = function (type, name, value, cb, options) {
  const w = { type, name, value, options }; this.widgets.push(w); return w;
};
NodeType.prototype.setDirtyCanvas = function () {};
NodeType.prototype.onExecuted = function () { this.before = true; };
await ext.beforeRegisterNodeDef(NodeType, { name: "VfxMatte.MatteShot" });
function Other() {}
await ext.beforeRegisterNodeDef(Other, { name: "KSampler" });
const node = new NodeType();
node.onExecuted({ text: ["3 frame(s) written", "frame 1002 failed: x"] });
node.onExecuted({ text: ["6 frame(s) written"] });
console.log(JSON.stringify({ name: ext.name, before: node.before, widgets: node.widgets,
                             other: Other.prototype.onExecuted === undefined }));
"""


@pytest.mark.skipif(shutil.which("node") is None, reason="needs Node.js to run the extension")
def test_the_web_extension_puts_the_summary_on_the_node(tmp_path) -> None:
    """web/vfxmatte.js under Node.js, with a stand-in for ComfyUI's app module."""
    (tmp_path / "scripts").mkdir()
    (tmp_path / "scripts" / "app.js").write_text(
        "export const registered = [];\n"
        "export const app = { registerExtension: (e) => registered.push(e) };\n"
    )
    (tmp_path / "extensions" / "pack").mkdir(parents=True)
    shutil.copy(NODES / "web" / "vfxmatte.js", tmp_path / "extensions" / "pack" / "vfxmatte.js")
    (tmp_path / "package.json").write_text('{"type": "module"}')
    (tmp_path / "run.js").write_text(NODE_HARNESS)
    out = subprocess.run(["node", "run.js"], cwd=tmp_path, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["before"] and result["other"]  # chained; other packs' nodes untouched
    (widget,) = result["widgets"]  # one summary widget, updated in place
    assert widget["value"] == "6 frame(s) written"
    assert widget["options"]["serialize"] is False
