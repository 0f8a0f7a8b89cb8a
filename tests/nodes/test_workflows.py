"""The example workflows: up to date, UI and API formats alike, and run as ComfyUI runs them
(topological order, stand-in ComfyUI modules) on the synthetic shot, giving the library's own
result for the same settings."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.io.image import probe_image, read_image
from vfxmatte.io.sequence import FramePattern
from vfxmatte.panoptic.run import PanopticJob, run_panoptic

NODES = Path(__file__).resolve().parents[2] / "nodes"
EXAMPLES = NODES / "api_workflows"  # API format (POST /prompt) and the generator
TEMPLATES = NODES / "example_workflows"  # UI format, listed under ComfyUI's Templates
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")


@pytest.fixture(scope="module")
def maker(pack):
    spec = importlib.util.spec_from_file_location("make_examples", EXAMPLES / "make_examples.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _load(name: str) -> dict:
    """``<name>_api.json`` from the API folder, ``<name>_ui.json`` as the template ``<name>``."""
    if name.endswith("_ui.json"):
        return json.loads((TEMPLATES / f"{name[:-8]}.json").read_text(encoding="utf-8"))
    return json.loads((EXAMPLES / name).read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["matte_shot", "panoptic_layers"])
def test_example_files_are_up_to_date(pack, maker, name: str) -> None:
    nodes = maker.EXAMPLES[name]
    regenerate = "run: python nodes/api_workflows/make_examples.py"
    assert _load(f"{name}_api.json") == maker.api_workflow(pack, nodes), regenerate
    assert _load(f"{name}_ui.json") == maker.ui_workflow(pack, nodes), regenerate


def _api_from_ui(mappings: dict, ui: dict) -> dict:
    """What ComfyUI's front end queues for a UI-format workflow (its "Save (API)")."""
    links = {link[0]: link for link in ui["links"]}
    prompt = {}
    for node in ui["nodes"]:
        cls = mappings[node["type"]]
        types = {**cls.INPUT_TYPES()["required"], **cls.INPUT_TYPES().get("optional", {})}
        values = iter(node["widgets_values"])
        slots = {s["name"]: s["link"] for s in node["inputs"]}
        inputs = {}
        for name, entry in types.items():
            if isinstance(entry[0], list) or entry[0] in WIDGET_TYPES:
                inputs[name] = next(values)
            elif slots.get(name) is not None:
                link = links[slots[name]]
                assert link[3] == node["id"] and link[5] == entry[0]
                inputs[name] = [str(link[1]), link[2]]
        assert next(values, None) is None, f"{node['type']}: widget values left over"
        prompt[str(node["id"])] = {"class_type": node["type"], "inputs": inputs,
                                   "_meta": {"title": node["title"]}}  # fmt: skip
    return prompt


@pytest.mark.parametrize("name", ["matte_shot", "panoptic_layers"])
def test_ui_format_queues_the_api_format(nodes, name: str) -> None:
    assert _api_from_ui(nodes, _load(f"{name}_ui.json")) == _load(f"{name}_api.json")


def _frames(pattern: str, channels=None) -> list[np.ndarray]:
    p = FramePattern.parse(pattern)
    return [read_image(p.path(n), channels).pixels for n in p.frames_on_disk()]


def test_matte_shot_workflow_gives_the_library_result(nodes, comfy, demo_input, execute) -> None:
    prompt = _load("matte_shot_api.json")
    outputs = execute(nodes, prompt)
    result, summary, drift = outputs["3"]
    assert drift.startswith("propagation drift:")  # the default, snapcut, measures drift
    assert summary.startswith("5 frame(s) written")
    out = comfy.output_dir / "vfxmatte_demo_matte"
    assert result.source == str(out / "shot.####.exr") and result.frames == tuple(range(1001, 1006))
    assert len(comfy.bars) == 1 and comfy.bars[0].updates == [1] * 5

    # The library on the same settings: the CLI's defaults, the example's three options.
    reference = comfy.root / "reference"
    config = PipelineConfig(
        plate=str(demo_input / "plate" / "plate.####.exr"),
        mask=str(demo_input / "mask.png"),
        output=str(reference / "shot.####.exr"),
    )
    config.output_options.kinds = "rgba,alpha,fg"
    config.output_options.preview = "checker"
    config.engine.progress = False
    report = run_pipeline(config)
    assert report.written == list(range(1001, 1006))
    confidence = " ".join(f"{n}:{c:.2f}" for n, c in report.drift.confidence().items())
    assert drift == f"{report.drift.summary()}\n{confidence}"
    for kind in ("shot", "shot_alpha", "shot_fg"):
        mine = _frames(str(out / f"{kind}.####.exr"))
        theirs = _frames(str(reference / f"{kind}.####.exr"))
        assert len(mine) == 5
        for a, b in zip(mine, theirs, strict=True):
            np.testing.assert_array_equal(a, b)
    assert sorted(p.name for p in (out / "preview").iterdir()) == [
        f"shot.{n}.png" for n in range(1001, 1006)
    ]
    alpha = _frames(str(out / "shot_alpha.####.exr"))[0][..., 0]
    assert 0.02 < alpha.mean() < 0.5 and alpha.max() == 1.0  # a real matte, not empty

    # The result handle reads back as IMAGE + alpha.
    image, alpha_mask = nodes["VfxMatte.ReadFrames"]().read(result, colourspace="lin_rec709")
    rgba = _frames(str(out / "shot.####.exr"))
    np.testing.assert_array_equal(image.numpy(), np.stack([f[..., :3] for f in rgba]))
    np.testing.assert_array_equal(alpha_mask.numpy(), np.stack([f[..., 3] for f in rgba]))


def test_panoptic_workflow_gives_the_library_result(nodes, comfy, demo_input, execute) -> None:
    outputs = execute(nodes, _load("panoptic_layers_api.json"))
    layers, foregrounds, preview, names, _ = outputs["4"]
    (path,) = outputs["5"]
    assert names.split("\n") == ["segment0", "segment1", "segment2"]
    assert tuple(layers.shape) == (3, 64, 96) and tuple(foregrounds.shape) == (3, 64, 96, 3)
    np.testing.assert_allclose(layers.numpy().sum(axis=0), 1.0, atol=1e-5)
    assert tuple(preview.shape) == (1, 64, 96, 3)

    reference = str(comfy.root / "reference" / "panoptic.####.exr")
    job = PanopticJob(
        plate=str(demo_input / "plate" / "plate.####.exr"),
        labels=str(demo_input / "gt" / "labels.####.png"),
        output=reference,
        frames="1001",
    )
    assert run_panoptic(job) == [1001]
    theirs_path = FramePattern.parse(reference).path(1001)
    channels = probe_image(theirs_path).channels
    assert set(probe_image(path).channels) == set(channels)
    assert {"segment0.A", "segment1.A", "segment2.A", "CryptoObject00.R"} <= set(channels)
    for channel in channels:
        np.testing.assert_array_equal(
            read_image(path, [channel]).pixels, read_image(theirs_path, [channel]).pixels
        )
    for k, name in enumerate(("segment0", "segment1", "segment2")):
        np.testing.assert_array_equal(
            layers[k].numpy(), read_image(path, [f"{name}.A"]).pixels[..., 0]
        )
    assert (Path(path).parent / "preview" / "panoptic.1001.png").is_file()
