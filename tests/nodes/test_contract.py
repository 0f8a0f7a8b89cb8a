"""Every node honours ComfyUI's node contract, and its widgets are the library's options."""

from __future__ import annotations

import dataclasses
import importlib.util
import inspect
import sys
from pathlib import Path

import pytest

from vfxmatte.config import ParamSpec, param_specs, validate_value
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.errors import ConfigError

PACK = Path(__file__).resolve().parents[2] / "nodes"
NODE_IDS = [
    "VfxMatte.LoadSam2Model",
    "VfxMatte.LoadMatteModel",
    "VfxMatte.LoadRefineModel",
    "VfxMatte.LoadColourModel",
    "VfxMatte.OpenPlate",
    "VfxMatte.ReadFrames",
    "VfxMatte.ReadMask",
    "VfxMatte.ReadLabelMap",
    "VfxMatte.WriteEXRSequence",
    "VfxMatte.PropagateMask",
    "VfxMatte.Matte",
    "VfxMatte.MatteShot",
    "VfxMatte.Refine",
    "VfxMatte.Decontaminate",
    "VfxMatte.PanopticMatte",
    "VfxMatte.WritePanoptic",
    "VfxMatte.Premultiply",
    "VfxMatte.Composite",
]
WIDGET_TYPES = ("INT", "FLOAT", "STRING", "BOOLEAN")


def test_mappings_list_every_node_with_a_display_name(pack) -> None:
    assert sorted(pack.NODE_CLASS_MAPPINGS) == sorted(NODE_IDS)
    assert set(pack.NODE_DISPLAY_NAME_MAPPINGS) == set(pack.NODE_CLASS_MAPPINGS)
    for node_id, name in pack.NODE_DISPLAY_NAME_MAPPINGS.items():
        assert name.startswith("VfxMatte ") and len(name) > len("VfxMatte "), node_id


def test_importing_the_pack_needs_no_comfyui_and_no_optional_backend(pack) -> None:
    import subprocess

    code = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('pack_x', {str(PACK / '__init__.py')!r}); "
        "m = importlib.util.module_from_spec(spec); sys.modules['pack_x'] = m; "
        "spec.loader.exec_module(m); "
        "print(sorted(n for n in ('comfy', 'folder_paths', 'sam2', 'torchvision', 'spconv', "
        "'dask') if n in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("node_id", NODE_IDS)
def test_node_contract(nodes, node_id: str) -> None:
    cls = nodes[node_id]
    types = cls.INPUT_TYPES()
    assert set(types) <= {"required", "optional", "hidden"} and "required" in types
    names = [*types["required"], *types.get("optional", {})]
    assert len(names) == len(set(names)), "an input name is both required and optional"
    for name, entry in {**types["required"], **types.get("optional", {})}.items():
        assert isinstance(entry, tuple) and len(entry) == 2 and isinstance(entry[1], dict), name
        kind, options = entry
        if isinstance(kind, list):
            assert kind and all(isinstance(c, str) for c in kind), name
            assert options.get("default", kind[0]) in kind, name
        elif kind in ("INT", "FLOAT"):
            assert options["min"] <= options["default"] <= options["max"], name
            assert isinstance(options["default"], int if kind == "INT" else float), name
        elif kind == "BOOLEAN":
            assert isinstance(options["default"], bool), name
        elif kind == "STRING":
            assert isinstance(options["default"], str), name
        else:  # a slot: a ComfyUI type or one of the pack's own
            assert kind in ("IMAGE", "MASK") or kind.startswith("VFXMATTE_"), (name, kind)
    assert isinstance(cls.RETURN_TYPES, tuple) and cls.RETURN_TYPES
    assert all(isinstance(t, str) for t in cls.RETURN_TYPES)
    assert len(cls.RETURN_NAMES) == len(cls.RETURN_TYPES)
    assert len(getattr(cls, "OUTPUT_IS_LIST", cls.RETURN_TYPES)) == len(cls.RETURN_TYPES)
    assert cls.CATEGORY.startswith("vfxmatte/") and cls.CATEGORY.count("/") == 1
    assert isinstance(cls.DESCRIPTION, str) and cls.DESCRIPTION
    function = getattr(cls, cls.FUNCTION)
    signature = inspect.signature(function)
    takes_all = any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values())
    assert takes_all or set(names) <= set(signature.parameters), "inputs the function cannot take"
    for parameter in list(signature.parameters.values())[1:]:
        if parameter.kind is parameter.VAR_KEYWORD:
            continue
        required = parameter.default is parameter.empty
        assert required == (parameter.name in types["required"]), parameter.name
    validate = inspect.getfullargspec(cls.VALIDATE_INPUTS)
    assert validate.varkw is not None  # ComfyUI then leaves every check to the pack


def _leaves(config_cls: type, prefix: str = "") -> dict[str, ParamSpec]:
    out = {}
    for spec in param_specs(config_cls):
        if dataclasses.is_dataclass(spec.default):
            out.update(_leaves(type(spec.default), f"{prefix}{spec.name}."))
        else:
            out[prefix + spec.name] = spec
    return out


def test_matte_shot_widgets_are_the_pipeline_options(nodes) -> None:
    """Every option of PipelineConfig is a Matte Shot widget with the same default, choices
    and range, except those the plate handle, the SAM 2 loader or the host set."""
    optional = nodes["VfxMatte.MatteShot"].INPUT_TYPES()["optional"]
    set_elsewhere = ("plate", "frames", "output", "input.colourspace", "input.ocio",
                     "input.channels", "input.nonfinite", "input.first_frame", "engine.progress")  # fmt: skip
    for key, spec in _leaves(PipelineConfig).items():
        name = key.replace(".", "_")
        if key in set_elsewhere or key.startswith("propagate.sam2."):
            assert name not in optional, key
            continue
        kind, options = optional[name]
        assert f"(YAML/CLI: {key})" in options["tooltip"] and spec.help in options["tooltip"]
        if spec.choices is not None:
            assert kind == [str(c) for c in spec.choices] and options["default"] == str(
                spec.default
            )
            continue
        assert options["default"] == spec.default, key
        if spec.min is not None:
            assert options["min"] == spec.min, key
        if spec.max is not None:
            assert options["max"] == spec.max, key


def test_validate_inputs_returns_the_library_error(nodes) -> None:
    matte = nodes["VfxMatte.Matte"]
    spec = next(s for s in _leaves(PipelineConfig).values() if s.name == "band_fraction")
    with pytest.raises(ConfigError) as expected:
        validate_value(spec, 7.5, where="matte.classical.")
    assert matte.check(matte_classical_band_fraction=7.5) == str(expected.value)
    text = matte.check(decontaminate_backend="multilevle")
    assert "valid choices" in text and "Did you mean 'multilevel'?" in text
    assert matte.check(matte_classical_band_fraction=0.1) is True
    shot = nodes["VfxMatte.MatteShot"]
    assert "no frame token" in shot.check(output="out/shot.exr")
    assert "keyframes expects" in shot.check(keyframes="1001:a.png")
    assert "Unknown colourspace 'ACESgc'" in matte.check(image_colourspace="ACESgc")
    sam2 = nodes["VfxMatte.LoadSam2Model"]
    assert "multiple of 32" in sam2.check(image_size=200)
    # The nodes' own widgets are checked the same way (ComfyUI leaves it to the node).
    text = matte.check(mask_mode="inverse")
    assert (
        text
        == "Option 'mask_mode' got 'inverse'; valid choices: auto, as is, invert. Did you mean 'invert'?"
    )
    assert "[1, 100000]" in nodes["VfxMatte.ReadFrames"].check(max_frames=0)


def test_a_folder_named_vfxmatte_is_refused() -> None:
    spec = importlib.util.spec_from_file_location("vfxmatte", PACK / "__init__.py")
    module = importlib.util.module_from_spec(spec)
    with pytest.raises(ImportError, match="rename the folder"):
        spec.loader.exec_module(module)  # not put in sys.modules: the library stays there


def test_registry_metadata() -> None:
    tomllib = pytest.importorskip("tomllib")
    meta = tomllib.loads((PACK / "pyproject.toml").read_text(encoding="utf-8"))
    assert meta["project"]["name"] and meta["project"]["version"].count(".") == 2
    assert meta["project"]["urls"]["Repository"].startswith("https://")
    assert meta["tool"]["comfy"]["PublisherId"] and meta["tool"]["comfy"]["DisplayName"]
    requirements = (PACK / "requirements.txt").read_text(encoding="utf-8").split()
    assert any(r.startswith("vfxmatte") for r in requirements)
    assert any(d.startswith("vfxmatte") for d in meta["project"]["dependencies"])
