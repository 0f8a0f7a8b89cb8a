"""Knobs generated from the option schema; the shipped schema; what the plugin imports."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from vfxmatte_nuke.errors import PluginError
from vfxmatte_nuke.knobs import EXCLUDED, config_from_values, knob_list, knob_name, value_knobs
from vfxmatte_nuke.schema import SCHEMA_FILE, load_schema

from vfxmatte.config import config_from_dict
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.worker.schema import config_schema

PLUGIN_DIR = Path(__file__).resolve().parents[2] / "plugins" / "nuke"


@pytest.fixture(scope="module")
def schema():
    return json.loads(json.dumps(config_schema()))  # what the worker sends, as JSON


def test_shipped_schema_is_the_workers(schema) -> None:
    shipped = load_schema()
    assert shipped["params"] == schema["params"] and shipped["sections"] == schema["sections"], (
        "plugins/nuke/vfxmatte_nuke/schema.json is out of date; regenerate it with: "
        "vfxmatte worker --write-schema plugins/nuke/vfxmatte_nuke/schema.json"
    )
    assert shipped["digest"] == schema["digest"]


def test_every_option_gets_the_right_knob(schema) -> None:
    knobs = {k.key: k for k in knob_list(schema) if k.key}
    for param in schema["params"]:
        key = param["key"]
        if key in EXCLUDED:
            assert key not in knobs
            continue
        knob = knobs[key]
        assert knob.name == knob_name(key) and param["help"].split()[0] in knob.tooltip
        if param["choices"]:
            assert knob.kind == "enum" and list(knob.choices) == [str(c) for c in param["choices"]]
            assert knob.default in knob.choices
        elif param["type"] == "bool":
            assert knob.kind == "bool" and knob.default is param["default"]
        elif param["type"] in ("int", "float"):
            assert knob.kind == {"int": "int", "float": "double"}[param["type"]]
            assert (knob.min, knob.max, knob.default) == (
                param["min"],
                param["max"],
                param["default"],
            )
        else:
            assert knob.kind == ("file" if param["path"] else "string")
    assert knobs["output"].kind == "file" and knobs["frames"].kind == "string"
    assert knobs["propagate.backend"].kind == "enum" and knobs["engine.overwrite"].kind == "bool"
    assert knobs["engine.overwrite"].label == "force full render"
    assert knobs["output_options.kinds"].default == "multilayer"


def test_tabs_per_stage_and_closed_groups_per_backend(schema) -> None:
    knobs = knob_list(schema)
    assert knobs[0].kind == "tab" and knobs[0].name == "vfxmatte"
    assert [k.name for k in knobs[1:5]] == ["process", "farm", "farm_json", "status"]
    tabs = [k.name for k in knobs if k.kind == "tab"]
    stages = [s["key"] for s in schema["sections"] if s["key"] and "." not in s["key"]]
    assert tabs == ["vfxmatte"] + ["tab_" + s for s in stages]
    depth, tab = 0, None
    for knob in knobs:
        if knob.kind == "tab":
            assert depth == 0, "a tab inside an open group"
            tab = knob.name
        elif knob.kind == "group":
            depth += 1
            assert knob.name.startswith("grp_" + tab[4:]), (knob.name, tab)
        elif knob.kind == "end_group":
            depth -= 1
        elif knob.key and "." in knob.key:
            assert tab == "tab_" + knob.key.split(".")[0], (knob.key, tab)
    assert depth == 0
    groups = [k.name for k in knobs if k.kind == "group"]
    assert "grp_propagate_flow" in groups and "grp_propagate_sam2" in groups
    names = [k.name for k in knobs]
    assert len(names) == len(set(names))
    assert names.index("key_frame_here") == names.index("key_frame") + 1


def test_values_to_options_round_trip_through_the_library(schema) -> None:
    knobs = value_knobs(knob_list(schema))
    values = {k.name: k.default for k in knobs}
    # Knob defaults send only what the node changes on purpose.
    assert config_from_values(values, schema) == {"output_options": {"kinds": "multilayer"}}
    values.update(
        propagate_backend="sam2",
        propagate_sam2_image_size=256.0,  # Nuke's Int_Knob may hand a float
        matte_classical_band_fraction=0.05,
        engine_overwrite=True,
        input_colourspace=" ACEScg ",
        guidance_output="/tmp/g.####.exr",
    )
    options = config_from_values(values, schema)
    assert options["propagate"] == {"backend": "sam2", "sam2": {"image_size": 256}}
    config = config_from_dict(PipelineConfig, options)
    assert config.propagate.sam2.image_size == 256 and config.engine.overwrite is True
    assert config.matte.classical.band_fraction == 0.05
    assert config.input.colourspace == "ACEScg" and config.guidance_output == "/tmp/g.####.exr"
    with pytest.raises(PluginError, match="valid: flow, sam2"):
        config_from_values({"propagate_backend": "sam3"}, schema)
    with pytest.raises(PluginError, match="whole number"):
        config_from_values({"propagate_sam2_image_size": 256.5}, schema)


def test_bad_option_names_are_refused(schema) -> None:
    param = dict(schema["params"][0], key="label", name="label", section="")
    with pytest.raises(PluginError, match="built-in knob 'label'"):
        knob_list({**schema, "params": [*schema["params"], param]})
    param = dict(schema["params"][0], key="bad-name", name="bad-name", section="")
    with pytest.raises(PluginError, match="not a valid Nuke knob name"):
        knob_list({**schema, "params": [param]})


def test_load_schema_errors(tmp_path) -> None:
    with pytest.raises(PluginError, match="Cannot read"):
        load_schema(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{", encoding="utf-8")
    with pytest.raises(PluginError, match="not valid JSON"):
        load_schema(str(tmp_path / "bad.json"))
    (tmp_path / "old.json").write_text('{"schema": 0}', encoding="utf-8")
    with pytest.raises(PluginError, match="regenerate it"):
        load_schema(str(tmp_path / "old.json"))
    (tmp_path / "broken.json").write_text(
        '{"schema": 1, "sections": [], "params": [{"key": "x", "type": "list"}]}', encoding="utf-8"
    )
    with pytest.raises(PluginError, match="'x' is malformed"):
        load_schema(str(tmp_path / "broken.json"))


def test_worker_schema_command_writes_the_same_file(tmp_path) -> None:
    out = tmp_path / "schema.json"
    done = subprocess.run(
        [sys.executable, "-m", "vfxmatte.worker", "--write-schema", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(out.read_text(encoding="utf-8")) == json.loads(json.dumps(config_schema()))


PLUGIN_FILES = sorted(
    [*(PLUGIN_DIR / "vfxmatte_nuke").glob("*.py"), PLUGIN_DIR / "init.py", PLUGIN_DIR / "menu.py"]
)


@pytest.mark.parametrize("path", PLUGIN_FILES, ids=lambda p: p.name)
def test_plugin_code_runs_in_nukes_python(path) -> None:
    """Python 3.7 syntax (Nuke 13); only the standard library; ``nuke`` in one module."""
    tree = ast.parse(path.read_text(encoding="utf-8"), feature_version=(3, 7))
    imported = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            imported.add(node.module.split(".")[0])
    assert not imported & {"torch", "vfxmatte", "numpy", "cv2", "OpenImageIO"}, imported
    assert ("nuke" in imported) == (path.name == "nuke_api.py")
    stdlib = set(sys.stdlib_module_names) | {"__future__", "vfxmatte_nuke", "nuke"}
    assert imported <= stdlib, imported - stdlib


def test_importing_the_plugin_loads_neither_torch_nor_vfxmatte() -> None:
    code = (
        "import sys, pkgutil, importlib, vfxmatte_nuke\n"
        "for m in pkgutil.iter_modules(vfxmatte_nuke.__path__):\n"
        "    importlib.import_module('vfxmatte_nuke.' + m.name)\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'vfxmatte', 'numpy', 'nuke')]\n"
        "print(len(list(pkgutil.iter_modules(vfxmatte_nuke.__path__))), bad)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(PLUGIN_DIR)}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0, done.stderr
    count, bad = done.stdout.split(" ", 1)
    assert int(count) >= 10 and bad.strip() == "[]"
    assert os.path.isfile(SCHEMA_FILE)
