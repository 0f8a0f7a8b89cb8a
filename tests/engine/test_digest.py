"""The settings digest in each output's header: resume reuses only frames made the same way."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.digest import DIGEST_ATTR, GUIDANCE_ATTR, SETTINGS_ATTR, read_header
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.errors import SettingsMismatchError
from vfxmatte.io.image import read_image, write_image
from vfxmatte.synth import ShotSpec, write_shot

FRAMES = [1001, 1002, 1003]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    spec = ShotSpec(width=48, height=32, frames=3, seed=9, speed=2.0, supersample=1)
    return write_shot(tmp_path_factory.mktemp("tiny"), spec)


@pytest.fixture
def shot(tiny, tmp_path) -> Path:
    shutil.copytree(Path(tiny.plate).parent, tmp_path / "plates")
    shutil.copy(tiny.mask, tmp_path / "mask.png")
    return tmp_path


def _config(root: Path, out: str = "o/x.####.exr", **options) -> PipelineConfig:
    config = PipelineConfig(
        plate=str(root / "plates" / "plate.####.exr"),
        mask=str(root / "mask.png"),
        output=str(root / out),
    )
    config.engine.progress = False
    for key, value in options.items():
        section, _, name = key.partition("__")
        setattr(getattr(config, section) if name else config, name or key, value)
    return config


def _header(path) -> dict[str, str]:
    header = read_header(str(path))
    assert header is not None
    return header.attributes


def _files(root: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted((root / "o").glob("*.exr"))}


def test_every_file_carries_its_frames_settings(shot) -> None:
    config = _config(shot, output_options__kinds="rgba,alpha", output_options__preview="checker")
    run_pipeline(config)
    rgba, alpha = _header(shot / "o" / "x.1002.exr"), _header(shot / "o" / "x_alpha.1002.exr")
    assert rgba[DIGEST_ATTR] == alpha[DIGEST_ATTR] and len(rgba[DIGEST_ATTR]) == 16
    settings = json.loads(rgba[SETTINGS_ATTR])
    assert settings["matte"]["classical"]["band_fraction"] == 0.2
    assert settings["plate"]["name"] == "plate.1002.exr" and "size" in settings["plate"]
    assert settings["guidance"]["propagation"]["keyframes"]["1001"][0]["name"] == "mask.png"
    for excluded in ("engine", "output", "frames"):
        assert excluded not in settings or excluded == "output"
    assert settings["output"] == {"dtype": "half"}
    assert _header(shot / "o" / "preview" / "x.1002.png")[DIGEST_ATTR] != rgba[DIGEST_ATTR]
    assert _header(shot / "o" / "x.1001.exr")[DIGEST_ATTR] != rgba[DIGEST_ATTR]  # per frame


def test_resume_reuses_only_frames_made_with_the_same_settings(shot) -> None:
    run_pipeline(_config(shot, frames="1001-1002"))
    before = _files(shot)
    again = run_pipeline(_config(shot, engine__progress=False))
    assert again.reused == [1001, 1002] and again.written == [1003]
    other = _config(shot)
    other.matte.classical.band_fraction = 0.1
    with pytest.raises(SettingsMismatchError) as info:
        run_pipeline(other)
    message = str(info.value)
    assert (
        "3 frame(s) of" in message
        and "(1001-1003: matte.classical.band_fraction 0.1 (on disk: 0.2))" in message
        and "--overwrite" in message
    )
    assert info.value.frames == FRAMES
    assert {k: v for k, v in _files(shot).items() if k in before} == before  # kept
    other.engine.overwrite = True
    assert run_pipeline(other).written == FRAMES
    settings = json.loads(_header(shot / "o" / "x.1001.exr")[SETTINGS_ATTR])
    assert settings["matte"]["classical"]["band_fraction"] == 0.1


def test_what_is_not_a_pixel_setting_does_not_stop_a_resume(shot) -> None:
    run_pipeline(_config(shot))
    same = _config(shot, frames="1001-1002", engine__on_error="skip", engine__chunk_size=1)
    same.matte.network.weights = "/nowhere/else.safetensors"  # not the active backend
    same.output_options.compression = "piz"  # lossless: the same pixels
    assert run_pipeline(same).reused == [1001, 1002]
    later = _config(shot, frames="1002-1003")  # the mask is then frame 1002's: other guidance
    with pytest.raises(SettingsMismatchError, match=r"keyframes 1002 \(on disk: 1001\)"):
        run_pipeline(later)
    lossy = _config(shot, output_options__compression="dwaa")
    with pytest.raises(SettingsMismatchError, match="output.compression dwaa"):
        run_pipeline(lossy)


def test_a_changed_plate_frame_or_foreign_file_is_named(shot) -> None:
    run_pipeline(_config(shot))
    os.utime(shot / "plates" / "plate.1002.exr", (1e9, 1e9))
    with pytest.raises(
        SettingsMismatchError, match=r"1 frame\(s\) .*1002: the plate frame changed"
    ):
        run_pipeline(_config(shot))
    write_image(shot / "o" / "x.1002.exr", np.zeros((32, 48, 4), np.float32), list("RGBA"))
    with pytest.raises(SettingsMismatchError, match="written without vfxmatte settings"):
        run_pipeline(_config(shot))


def test_a_farm_chunk_resumes_what_the_local_loop_wrote(shot) -> None:
    """Same settings, same digest, whatever ran them: the guidance header carries it."""
    flow = {"propagate__backend": "flow"}  # the header holds the flow backend's options
    local = run_pipeline(_config(shot, **flow))
    assert local.written == FRAMES
    guide = str(shot / "g" / "g.####.exr")
    run_pipeline(_config(shot, guidance_output=guide, engine__phase="propagate", **flow))
    propagated = json.loads(_header(shot / "g" / "g.1002.exr")[GUIDANCE_ATTR])
    assert propagated["backend"] == "flow" and propagated["flow"]["method"] == "dis"
    chunk = _config(shot, guidance=guide, frames="1002-1003", **flow)
    assert run_pipeline(chunk).reused == [1002, 1003]
    local_1003 = read_image(shot / "o" / "x.1003.exr").pixels
    local_header = _header(shot / "o" / "x.1003.exr")
    (shot / "o" / "x.1003.exr").unlink()
    assert run_pipeline(chunk).written == [1003]
    np.testing.assert_array_equal(read_image(shot / "o" / "x.1003.exr").pixels, local_1003)
    assert _header(shot / "o" / "x.1003.exr") == local_header


def test_guidance_of_another_propagation_is_not_reused(shot) -> None:
    guide = str(shot / "g" / "g.####.exr")
    flow = {"propagate__backend": "flow"}  # a flow option differs
    run_pipeline(_config(shot, guidance_output=guide, engine__phase="propagate", **flow))
    other = _config(shot, guidance_output=guide, engine__phase="propagate", **flow)
    other.propagate.flow.threshold = 0.3
    with pytest.raises(
        SettingsMismatchError, match=r"propagate\.flow\.threshold 0.3 \(on disk: 0.5\)"
    ):
        run_pipeline(other)
    other.engine.overwrite = True
    assert run_pipeline(other).written == FRAMES


def test_tiff_outputs_cannot_hold_the_digest_and_resume_as_before(shot) -> None:
    run_pipeline(_config(shot, out="o/x.####.tif"))
    other = _config(shot, out="o/x.####.tif")
    other.matte.classical.band_fraction = 0.1
    assert run_pipeline(other).reused == FRAMES


def test_a_resume_may_switch_to_worker_processes(shot) -> None:
    run_pipeline(_config(shot, frames="1001-1002"))
    parallel = _config(shot, engine__executor="processes", engine__workers=1)
    report = run_pipeline(parallel)
    assert report.reused == [1001, 1002] and report.written == [1003]
    assert _header(shot / "o" / "x.1003.exr")[DIGEST_ATTR]
    other = _config(shot, engine__executor="processes", engine__workers=1)
    other.decontaminate.backend = "none"
    with pytest.raises(SettingsMismatchError, match="decontaminate.backend none"):
        run_pipeline(other)


def test_damaged_files_on_disk_are_never_complete_and_never_a_traceback(shot) -> None:
    corpus = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus" / "exr-damaged"
    if not corpus.is_dir():
        pytest.skip(f"the damaged-EXR corpus is not here ({corpus})")
    files = sorted(p for p in corpus.iterdir() if p.is_file() and p.name not in ("LICENSE",))
    assert len(files) > 100
    headers = [read_header(str(p)) for p in files]  # no exception from any of them
    assert sum(h is None for h in headers) > 100
    run_pipeline(_config(shot))
    shutil.copy(files[0], shot / "o" / "x.1002.exr")
    with pytest.raises(SettingsMismatchError, match=r"1002: written without vfxmatte settings"):
        run_pipeline(_config(shot))
