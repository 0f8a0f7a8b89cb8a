"""ComfyUI's progress bar, interrupt, device and model folders, through stand-in modules.

The stand-ins (conftest) record every ProgressBar update and raise ComfyUI's
interrupt exception at the first interrupt check after the user "pressed Cancel".
"""

from __future__ import annotations

import os
import sys

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.errors import WeightsError
from vfxmatte.io.sequence import FramePattern

FRAMES = [1001, 1002, 1003, 1004, 1005]


def _plate(nodes, shot):
    ref, count, width, height = nodes["VfxMatte.OpenPlate"]().open(plate=shot.plate)
    assert (count, width, height) == (5, 96, 64)
    return ref


def _interrupt() -> type[Exception]:
    """The stand-in's ``comfy.model_management.InterruptProcessingException``."""
    return sys.modules["comfy.model_management"].InterruptProcessingException


def _written(pattern: str) -> list[int]:
    return FramePattern.parse(pattern).frames_on_disk()


def test_matte_shot_progress_advances_per_frame(nodes, comfy, comfy_shot) -> None:
    plate = _plate(nodes, comfy_shot)
    pattern = str(comfy.output_dir / "run" / "m.####.exr")
    seen = []  # frames on disk at each progress update
    original = comfy.on_update

    def on_update() -> None:
        seen.append(len(_written(pattern)))
        original()

    comfy.on_update = on_update
    out = nodes["VfxMatte.MatteShot"]().run(
        plate=plate, output="run/m.####.exr", mask=comfy_shot.mask
    )
    (bar,) = comfy.bars
    assert bar.total == 5 and bar.updates == [1] * 5 and bar.current == 5
    assert seen == [1, 2, 3, 4, 5]  # one update after each frame is written
    assert comfy.checks >= 10  # before and after every frame
    assert out["result"][0].frames == tuple(FRAMES)
    assert out["ui"]["text"][0].startswith("5 frame(s) written")


def test_interrupt_stops_the_shot_within_one_frame_and_it_resumes(nodes, comfy, comfy_shot) -> None:
    plate = _plate(nodes, comfy_shot)
    pattern = str(comfy.output_dir / "stop" / "m.####.exr")
    comfy.interrupt_after_updates(2)  # Cancel pressed while frame 2 is being written
    with pytest.raises(_interrupt()):
        nodes["VfxMatte.MatteShot"]().run(
            plate=plate, output="stop/m.####.exr", mask=comfy_shot.mask
        )
    assert _written(pattern) == [1001, 1002]
    # Queued again: the two frames on disk are reused, the rest written.
    out = nodes["VfxMatte.MatteShot"]().run(
        plate=plate, output="stop/m.####.exr", mask=comfy_shot.mask
    )
    assert out["result"][1].startswith("3 frame(s) written, 2 already done")
    assert _written(pattern) == FRAMES


def test_interrupt_stops_an_in_memory_node_within_one_frame(nodes, comfy, comfy_shot) -> None:
    image, _ = nodes["VfxMatte.ReadFrames"]().read(_plate(nodes, comfy_shot))
    (mask,) = nodes["VfxMatte.ReadMask"]().read(path=comfy_shot.mask)
    comfy.bars.clear()
    comfy.interrupt_after_updates(comfy.updates + 1)
    with pytest.raises(_interrupt()):
        nodes["VfxMatte.Matte"]().matte(images=image, guidance=mask)
    assert comfy.bars[-1].total == 5 and comfy.bars[-1].updates == [1]


def test_without_comfyui_progress_and_interrupt_are_silent(pack, no_comfy, shot, tmp_path) -> None:
    on_progress, should_cancel = pack.host.engine_callbacks(3)
    on_progress(None)
    assert should_cancel() is False
    assert pack.host.host_device() is None
    assert pack.host.input_path("a/b.png") == os.path.join(os.getcwd(), "a/b.png")
    assert pack.host.output_path(str(tmp_path / "x.####.exr")) == str(tmp_path / "x.####.exr")


def test_relative_paths_are_in_comfyui_folders(pack, comfy) -> None:
    assert pack.host.input_path("shot/p.####.exr") == str(comfy.input_dir / "shot/p.####.exr")
    assert pack.host.output_path("out/m.####.exr") == str(comfy.output_dir / "out/m.####.exr")


def test_auto_devices_become_comfyui_device(pack, comfy) -> None:
    import torch

    comfy.device = torch.device("cuda", 1)  # only names are compared: nothing runs on it
    assert pack.host.host_device() == "cuda:1"
    keys = pack.common.device_keys(PipelineConfig())
    assert "propagate.sam2.device" in keys and "matte.network.device" in keys
    config = pack.common.build_host_config(PipelineConfig, {})
    assert {_get(config, key) for key in keys} == {"cuda:1"}
    # A device the user chose stays.
    config = pack.common.build_host_config(PipelineConfig, {"propagate.sam2.device": "cpu"})
    assert config.propagate.sam2.device == "cpu" and config.matte.network.device == "cuda:1"


def _get(config, key: str):
    for part in key.split("."):
        config = getattr(config, part)
    return config


def test_model_folders_are_registered_and_listed(pack, comfy, tmp_path) -> None:
    folder_paths = sys.modules["folder_paths"]
    user = str(tmp_path / "extra_sam2")  # from the user's extra_model_paths.yaml
    folder_paths.folder_names_and_paths["vfxmatte_sam2"] = ([user], set())
    assert pack.host.register_model_folders()
    assert pack.host.register_model_folders()  # idempotent
    folders, extensions = folder_paths.folder_names_and_paths["vfxmatte_sam2"]
    home = os.environ["VFXMATTE_HOME"]
    assert folders == [
        user,
        str(comfy.models_dir / "vfxmatte" / "sam2"),
        str(comfy.models_dir / "sam2"),
        os.path.join(home, "sam2"),
    ]
    assert ".safetensors" in extensions and ".pt" in extensions
    for kind in ("matte", "refine", "colour"):
        assert folder_paths.folder_names_and_paths[f"vfxmatte_{kind}"][0] == [
            str(comfy.models_dir / "vfxmatte" / kind),
            os.path.join(home, kind),
        ]
    os.makedirs(comfy.models_dir / "vfxmatte" / "matte" / "sub")
    (comfy.models_dir / "vfxmatte" / "matte" / "sub" / "a.safetensors").write_bytes(b"x")
    (comfy.models_dir / "vfxmatte" / "matte" / "notes.txt").write_text("not weights")
    assert pack.host.list_model_files("matte") == ["sub/a.safetensors"]
    path = pack.host.resolve_model_file("matte", "sub/a.safetensors")
    assert path == str(comfy.models_dir / "vfxmatte" / "matte" / "sub" / "a.safetensors")
    with pytest.raises(
        WeightsError,
        match=r"No matte weights file 'sub/b.safetensors' in .*"
        r"Files found: sub/a.safetensors\. .*Did you mean 'sub/a.safetensors'",
    ):
        pack.host.resolve_model_file("matte", "sub/b.safetensors")


def test_without_comfyui_models_come_from_vfxmatte_home(pack, no_comfy) -> None:
    (no_comfy / "colour").mkdir(parents=True)
    (no_comfy / "colour" / "c.pt").write_bytes(b"x")
    assert pack.host.model_folders("colour") == [str(no_comfy / "colour")]
    assert pack.host.list_model_files("colour") == ["c.pt"]
    assert pack.host.resolve_model_file("colour", "c.pt") == str(no_comfy / "colour" / "c.pt")


def test_is_changed_follows_the_files(nodes, comfy, comfy_shot) -> None:
    open_plate = nodes["VfxMatte.OpenPlate"]
    before = open_plate.IS_CHANGED(plate=comfy_shot.plate)
    assert open_plate.IS_CHANGED(plate=comfy_shot.plate) == before
    mask = comfy.input_dir / "m.png"
    read_mask = nodes["VfxMatte.ReadMask"]
    missing = read_mask.IS_CHANGED(path=str(mask))
    from vfxmatte.io.image import write_image

    write_image(mask, np.ones((4, 4), np.float32), ["Y"], dtype="uint8")
    assert read_mask.IS_CHANGED(path=str(mask)) != missing


def test_two_pass_progress_covers_the_sam2_pass_and_its_reuse(pack, comfy) -> None:
    from vfxmatte.engine.report import ProgressEvent

    on_progress, _ = pack.host.engine_callbacks(3, passes=2)
    bar = comfy.bars[-1]
    assert bar.total == 6
    for i in (1, 2, 3):
        on_progress(ProgressEvent(1000 + i, i, 3, "propagated"))
    assert bar.current == 3
    for i in (1, 2, 3):
        on_progress(ProgressEvent(1000 + i, i, 3, "written"))
    assert bar.current == 6 and bar.updates == [1] * 6
    # A resumed run whose guidance is on disk reports no propagation: the bar skips it.
    on_progress, _ = pack.host.engine_callbacks(3, passes=2)
    bar = comfy.bars[-1]
    on_progress(ProgressEvent(1001, 1, 3, "reused"))
    assert bar.current == 4 and bar.updates == [3, 1]


def test_matte_shot_drift_output(nodes, comfy, comfy_shot) -> None:
    plate = _plate(nodes, comfy_shot)
    node = nodes["VfxMatte.MatteShot"]
    assert node.RETURN_NAMES[-1] == "drift" and len(node.OUTPUT_TOOLTIPS) == 3
    out = node().run(
        plate=plate, output="drift/m.####.exr", mask=comfy_shot.mask, propagate_backend="snapcut"
    )
    drift = out["result"][2]
    head, frames = drift.split("\n")
    assert head.startswith("propagation drift:")
    assert [int(item.split(":")[0]) for item in frames.split()] == FRAMES
    assert all(0.0 <= float(item.split(":")[1]) <= 1.0 for item in frames.split())
    flow = node().run(
        plate=plate, output="flow/m.####.exr", mask=comfy_shot.mask, propagate_backend="flow"
    )
    assert flow["result"][2] == ""  # flow does not measure itself
