"""Loader nodes: weights found in ComfyUI's model folders or VFXMATTE_HOME, never downloaded;
a loaded model carries the options the stage nodes apply.

SAM 2 runs with random weights (seeded) at image_size 256: its masks are meaningless,
so the test compares the node with the library on the same settings. The learned-network
loaders are tested when this vfxmatte has their options (checked with param_specs), and
skipped with the reason until then.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.stages import ColourContext, Stages
from vfxmatte.errors import ConfigError, WeightsError
from vfxmatte.io.frame import Frame
from vfxmatte.io.mask import read_mask
from vfxmatte.panoptic.labels import read_label_map
from vfxmatte.propagate.sam2 import Sam2PropagateConfig, Sam2Propagator


def _option(key: str) -> bool:
    """Whether this vfxmatte has the option ``key`` (via param_specs, as the loaders check)."""
    from vfxmatte.config import param_specs

    cls: type = PipelineConfig
    *sections, name = key.split(".")
    for part in sections:
        spec = next((s for s in param_specs(cls) if s.name == part), None)
        if spec is None or not dataclasses.is_dataclass(spec.default):
            return False
        cls = type(spec.default)
    return any(s.name == name for s in param_specs(cls))


def needs_option(key: str):
    return pytest.mark.skipif(
        not _option(key), reason=f"this vfxmatte has no '{key}' option yet (backend not landed)"
    )


SAM2_OPTIONS = {"random_weights": True, "image_size": 256, "random_weights_seed": 0}


def _frames(shot, nodes, count: int = 3):
    plate, *_ = nodes["VfxMatte.OpenPlate"]().open(plate=shot.plate, frames=f"1001-{1000 + count}")
    image, _ = nodes["VfxMatte.ReadFrames"]().read(plate)
    return image


def test_sam2_loader_with_random_weights_matches_the_library(nodes, comfy, comfy_shot) -> None:
    pytest.importorskip("sam2")
    loader = nodes["VfxMatte.LoadSam2Model"]
    checkpoint = loader.INPUT_TYPES()["required"]["checkpoint"][0][0]  # auto
    (model,) = loader().load(checkpoint=checkpoint, **SAM2_OPTIONS)
    assert model.kind == "sam2" and model.path is None and str(model).endswith("random weights)")
    assert model.overrides["propagate.backend"] == "sam2"
    assert model.overrides["propagate.sam2.random_weights"] is True
    assert model.overrides["propagate.sam2.image_size"] == 256
    assert model.overrides["propagate.sam2.device"] == "cpu"  # ComfyUI's device (stand-in)

    image = _frames(comfy_shot, nodes)
    labels = read_label_map(comfy_shot.frame(comfy_shot.labels, 1002))
    objects = np.stack([(labels == k).astype(np.float32) for k in (1, 2)])  # key on frame 1
    assert objects.sum(axis=(1, 2)).min() > 20
    masks, union = nodes["VfxMatte.PropagateMask"]().propagate(
        images=image, masks=torch.from_numpy(objects), key_index=1, sam2=model
    )
    assert len(masks) == 2 and tuple(masks[0].shape) == (3, 64, 96)

    # The library's SAM 2 propagator on the same settings, built without the pack.
    config = Sam2PropagateConfig(random_weights=True, image_size=256, seed=0, device="cpu")
    frames = image.numpy()  # sRGB: already display-referred
    keys = {1: {1: objects[0], 2: objects[1]}}
    expected = dict(Sam2Propagator(config).propagate(lambda n: frames[n], [0, 1, 2], keys))
    for obj in (1, 2):
        want = np.stack([expected[n][obj] for n in range(3)])
        np.testing.assert_array_equal(masks[obj - 1].numpy(), want)
        np.testing.assert_array_equal(masks[obj - 1].numpy()[1], objects[obj - 1])  # exact key
    np.testing.assert_array_equal(union.numpy(), np.maximum(masks[0].numpy(), masks[1].numpy()))


def test_sam2_loader_finds_checkpoints_and_reports_missing_ones(nodes, comfy) -> None:
    loader = nodes["VfxMatte.LoadSam2Model"]
    folder = comfy.models_dir / "vfxmatte" / "sam2"
    folder.mkdir(parents=True)
    (folder / "sam2.1_hiera_small.pt").write_bytes(b"not read by the loader")
    choices = loader.INPUT_TYPES()["required"]["checkpoint"][0]
    assert choices[1:] == ["sam2.1_hiera_small.pt"]
    (model,) = loader().load(checkpoint="sam2.1_hiera_small.pt")
    assert model.path == str(folder / "sam2.1_hiera_small.pt")
    assert model.overrides["propagate.sam2.checkpoint"] == model.path
    with pytest.raises(WeightsError, match="No sam2 weights file 'sam2.1_hiera_large.pt'"):
        loader().load(checkpoint="sam2.1_hiera_large.pt")
    text = loader.check(checkpoint="gone.pt")
    assert "No sam2 weights file 'gone.pt'" in text and "never downloads" in text
    # auto: the library's own lookup in VFXMATTE_HOME, which is empty here.
    with pytest.raises(
        WeightsError, match=r"No SAM 2.1 'tiny' checkpoint: expected '.*sam2.1_hiera_tiny.pt'"
    ):
        loader().load(checkpoint=choices[0])


def _tiny_matte_weights(path) -> None:
    from vfxmatte.matte.network.arch import PRNMattingNet
    from vfxmatte.weights import save_checkpoint

    tiny = {"name": "custom", "stem": (8, 8, 8), "enc_planes": (8, 16, 16, 16),
            "enc_blocks": (1, 1, 1, 1), "skip_planes": (8, 8, 8, 16, 16), "aspp_mid": 8,
            "aspp_out": 16, "dec_blocks": (1, 1, 1, 1), "head_mid": 8}  # fmt: skip
    torch.manual_seed(0)
    model = PRNMattingNet(tiny)
    save_checkpoint(path, "matte", {"arch": dataclasses.asdict(model.arch)}, model.state_dict())


@needs_option("matte.network.weights")
def test_matte_network_loader_and_matte_node_match_the_library(nodes, comfy, comfy_shot) -> None:
    folder = comfy.models_dir / "vfxmatte" / "matte"
    folder.mkdir(parents=True)
    _tiny_matte_weights(folder / "tiny.safetensors")
    loader = nodes["VfxMatte.LoadMatteModel"]
    assert loader.INPUT_TYPES()["required"]["weights"][0] == ["tiny.safetensors"]
    (model,) = loader().load(weights="tiny.safetensors", iterations=2)
    path = str(folder / "tiny.safetensors")
    assert model.path == path
    assert model.overrides["matte.backend"] == "network"
    assert model.overrides["matte.network.weights"] == path
    assert model.overrides["matte.network.iterations"] == 2
    assert model.overrides["matte.network.device"] == "cpu"

    image = _frames(comfy_shot, nodes, 2)
    mask = read_mask(comfy_shot.mask)
    alpha, fg, confidence = nodes["VfxMatte.Matte"]().matte(
        images=image, guidance=torch.from_numpy(mask)[None], matte_model=model
    )
    config = PipelineConfig()
    config.matte.backend = "network"
    config.matte.network.weights = path
    config.matte.network.iterations = 2
    config.matte.network.device = "cpu"
    probe = Frame(0, np.zeros((1, 1, 3), np.float32), ("R", "G", "B"))
    colour = ColourContext.resolve("sRGB", probe)
    stages = Stages(config, colour)
    for i, pixels in enumerate(image.numpy()):
        result = stages.process(Frame(i, pixels, ("R", "G", "B")), mask, colour.display(pixels))
        np.testing.assert_array_equal(alpha[i].numpy(), result.alpha)
        np.testing.assert_array_equal(confidence[i].numpy(), result.confidence)
    assert float(alpha.std()) > 0  # a real network ran


@needs_option("matte.network.weights")
def test_matte_network_loader_with_a_missing_file(nodes, comfy) -> None:
    loader = nodes["VfxMatte.LoadMatteModel"]
    (empty,) = loader.INPUT_TYPES()["required"]["weights"][0]
    assert empty == "(no weight files found)"
    with pytest.raises(
        WeightsError,
        match=r"No matte weights to load: put a weights file into .*models/vfxmatte/matte",
    ):
        loader().load(weights=empty)
    with pytest.raises(WeightsError, match="No matte weights file 'm.safetensors'"):
        loader().load(weights="m.safetensors")
    assert "No matte weights file" in loader.check(weights="m.safetensors")


@needs_option("decontaminate.network.weights")
def test_colour_loader_carries_its_options(nodes, comfy) -> None:
    folder = comfy.models_dir / "vfxmatte" / "colour"
    folder.mkdir(parents=True)
    (folder / "c.safetensors").write_bytes(b"read by the stage, not the loader")
    (model,) = nodes["VfxMatte.LoadColourModel"]().load(weights="c.safetensors")
    assert model.overrides["decontaminate.backend"] == "network"
    assert model.overrides["decontaminate.network.weights"] == str(folder / "c.safetensors")
    assert model.overrides["decontaminate.network.device"] == "cpu"


@needs_option("refine.sparse.weights")
def test_refine_loader_carries_its_options(nodes, comfy) -> None:
    folder = comfy.models_dir / "vfxmatte" / "refine"
    folder.mkdir(parents=True)
    (folder / "r.safetensors").write_bytes(b"read by the stage, not the loader")
    (model,) = nodes["VfxMatte.LoadRefineModel"]().load(weights="r.safetensors")
    assert model.overrides["refine.backend"] == "sparse"
    assert model.overrides["refine.sparse.weights"] == str(folder / "r.safetensors")


@pytest.mark.skipif(_option("refine.sparse.weights"), reason="refine.sparse exists now")
def test_refine_loader_before_the_backend_exists_says_so(nodes, comfy) -> None:
    loader = nodes["VfxMatte.LoadRefineModel"]
    with pytest.raises(ConfigError, match="no 'refine.sparse.weights' option.*Update vfxmatte"):
        loader().load(weights="r.safetensors")
    assert "no 'refine.sparse.weights' option" in loader.check(weights="r.safetensors")
