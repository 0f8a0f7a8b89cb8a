"""What a run writes: never an input, only where it can, one run per frame, no debris.

Each case of issue 15 is run on a tiny shot copied per test; after a refusal every
input is byte for byte what it was and nothing was written.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.farm import plan_farm_jobs
from vfxmatte.engine.guidance import write_guidance
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.errors import (
    ConfigError,
    DiskFullError,
    InputOverwriteError,
    OutputLocationError,
    OutputLockedError,
)
from vfxmatte.io.image import read_image, write_image
from vfxmatte.io.lock import OutputLock
from vfxmatte.panoptic.run import PanopticJob, run_panoptic
from vfxmatte.synth import ShotSpec, write_shot

FRAMES = [1001, 1002, 1003]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A 48x32, 3-frame synthetic shot (frames 1001-1003)."""
    spec = ShotSpec(width=48, height=32, frames=3, seed=5, speed=2.0, supersample=1)
    return write_shot(tmp_path_factory.mktemp("tiny"), spec)


@pytest.fixture
def shot(tiny, tmp_path) -> Path:
    """A private copy: ``plates/p.####.exr``, ``mask.png``, ``labels/l.####.png``."""
    (tmp_path / "plates").mkdir()
    (tmp_path / "labels").mkdir()
    for f in FRAMES:
        shutil.copy(tiny.plate.replace("####", str(f)), tmp_path / "plates" / f"p.{f}.exr")
        shutil.copy(tiny.labels.replace("####", str(f)), tmp_path / "labels" / f"l.{f}.png")
    shutil.copy(tiny.mask, tmp_path / "mask.png")
    return tmp_path


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def _config(root: Path, output: str, **options) -> PipelineConfig:
    config = PipelineConfig(
        plate=str(root / "plates" / "p.####.exr"), mask=str(root / "mask.png"), output=output
    )
    config.engine.progress = False
    for key, value in options.items():
        section, _, name = key.partition("__")
        target = getattr(config, section) if name else config
        setattr(target, name or key, value)
    return config


@pytest.mark.parametrize(
    ("output", "options", "hit"),
    [
        ("plates/p.####.exr", {}, "plate frame 1001"),
        ("plates/p.%04d.exr", {"engine__overwrite": True}, "plate frame 1001"),
        ("plates/p.@@@@.exr", {}, "plate frame 1001"),
        ("out/../plates/p.$F4.exr", {}, "plate frame 1001"),
        ("m.####.png", {"mask": "m.1001.png", "output_options__kinds": "alpha"}, "the mask"),
        ("out/x.####.exr", {"guidance_output": "out/x.####.exr"}, "and the guidance output"),
        ("out/k.####.exr", {"keyframes": "1002=out/k.1002.exr"}, "keyframe mask of frame"),
    ],
)
def test_no_run_writes_an_input(shot, monkeypatch, output, options, hit) -> None:
    monkeypatch.chdir(shot)
    shutil.copy("mask.png", "m.1001.png")
    (shot / "out").mkdir()
    write_image("out/k.1002.exr", np.ones((32, 48, 1), np.float32), ["A"], dtype="float")
    before = _digests(shot)
    config = _config(shot, output, **options)
    with pytest.raises(InputOverwriteError, match=hit) as info:
        run_pipeline(config)
    assert "nothing was written" in str(info.value)
    assert _digests(shot) == before


def test_a_derived_kind_name_that_is_the_plate(shot) -> None:
    plates = shot / "plates"
    for f in FRAMES:
        (plates / f"p.{f}.exr").rename(plates / f"p_alpha.{f}.exr")
    before = _digests(shot)
    config = _config(shot, str(plates / "p.####.exr"), output_options__kinds="rgba,alpha")
    config.plate = str(plates / "p_alpha.####.exr")
    with pytest.raises(InputOverwriteError, match=r"The alpha output frame 1001 .*p_alpha\.1001"):
        run_pipeline(config)
    assert _digests(shot) == before


def test_every_executor_and_phase_is_guarded(shot) -> None:
    before = _digests(shot)
    plate_pattern = str(shot / "plates" / "p.####.exr")
    for options in (
        {"engine__phase": "propagate", "guidance_output": plate_pattern},
        {"engine__executor": "processes", "guidance_output": plate_pattern},
        {"guidance": str(shot / "out" / "g.####.exr")},  # a farm chunk
    ):
        config = _config(shot, plate_pattern if "guidance" in options else str(shot / "o.####.exr"))
        for key, value in options.items():
            section, _, name = key.partition("__")
            setattr(getattr(config, section) if name else config, name or key, value)
        with pytest.raises(InputOverwriteError):
            run_pipeline(config)
    assert _digests(shot) == before


def test_a_yaml_config_file_is_an_input(shot, monkeypatch) -> None:
    monkeypatch.chdir(shot)
    Path("job.1001.exr").write_text("plate: plates/p.####.exr\n")
    with pytest.raises(InputOverwriteError, match="config file"):
        run_pipeline(_config(shot, "job.####.exr"), extra_inputs={"config file": "job.1001.exr"})


def test_locations_are_refused_before_any_frame(shot) -> None:
    (shot / "afile").write_text("x")
    with pytest.raises(OutputLocationError, match="is a file, not a folder"):
        run_pipeline(_config(shot, str(shot / "afile" / "x.####.exr")))
    (shot / "o" / "x.1002.exr").mkdir(parents=True)
    with pytest.raises(OutputLocationError, match="a folder of that name"):
        run_pipeline(_config(shot, str(shot / "o" / "x.####.exr")))
    assert sorted(os.listdir(shot / "o")) == ["x.1002.exr"]  # frame 1001 was not matted


def test_a_full_disk_stops_the_run_even_when_frames_may_be_skipped(shot, monkeypatch) -> None:
    real = os.replace
    targets = []

    def filling(source, target):
        targets.append(str(target))
        if "x.1002" in str(target):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(source, target)

    monkeypatch.setattr(os, "replace", filling)
    config = _config(shot, str(shot / "o" / "x.####.exr"), engine__on_error="skip")
    with pytest.raises(DiskFullError, match=r"No space left on device .*x\.1002\.exr"):
        run_pipeline(config)
    assert sorted(os.listdir(shot / "o")) == ["x.1001.exr"]  # kept; no temp, no lock left
    assert not any("x.1003" in t for t in targets)


def test_a_second_run_on_the_same_frames_is_refused_farm_chunks_are_not(shot) -> None:
    out = str(shot / "o" / "x.####.exr")
    (shot / "o").mkdir()
    with OutputLock([out], [1002, 1003], what="another run"):
        with pytest.raises(OutputLockedError, match=r"writing frames 1002-1003 of"):
            run_pipeline(_config(shot, out))
        assert run_pipeline(_config(shot, out, frames="1001")).written == [1001]
    assert run_pipeline(_config(shot, out)).written == [1002, 1003]


def test_a_resumed_run_removes_temp_files_a_kill_left(shot) -> None:
    out = shot / "o"
    out.mkdir()
    left = [out / ".x.1002.tmp-999999-0a1b2c3d.exr", out / "preview" / ".x.1001.tmp-1-00000000.png"]
    left[1].parent.mkdir()
    for path in left:
        path.write_bytes(b"half a file")
    unrelated = out / ".notes.tmp-999999-0a1b2c3d.txt"
    unrelated.write_text("not ours")
    run_pipeline(_config(shot, str(out / "x.####.exr"), output_options__preview="checker"))
    assert not any(p.exists() for p in left) and unrelated.exists()


def test_8_bit_outputs_refuse_linear_colour_and_warn_for_a_matte(shot, caplog) -> None:
    with pytest.raises(ConfigError, match=r"rgba output .*\.png file, which holds 8-bit"):
        run_pipeline(_config(shot, str(shot / "o" / "x.####.png")))
    assert not (shot / "o").exists()
    config = _config(shot, str(shot / "o" / "x.####.png"), output_options__kinds="alpha")
    with caplog.at_level(logging.WARNING, "vfxmatte.engine.outputs"):
        assert run_pipeline(config).written == FRAMES
    assert "is 8-bit: the values are rounded to 256 levels" in caplog.text


def test_plate_values_beyond_half_are_clamped_with_a_warning(shot, tiny, caplog) -> None:
    hot = read_image(shot / "plates" / "p.1002.exr").pixels.copy()
    alpha = read_image(tiny.alpha.replace("####", "1002")).pixels[..., 0]
    y, x = np.argwhere(alpha == 1.0)[0]
    hot[y, x] = 2.0e5  # a specular highlight on the object, in float
    write_image(shot / "plates" / "p.1002.exr", hot, ["R", "G", "B"], dtype="float")
    config = _config(shot, str(shot / "o" / "x.####.exr"), output_options__kinds="fg")
    with caplog.at_level(logging.WARNING, "vfxmatte"):
        run_pipeline(config)
    assert "Frame 1002 foreground: 3 value(s) beyond the half-float maximum" in caplog.text
    assert np.isfinite(read_image(shot / "o" / "x.1002.exr").pixels).all()
    config.output = str(shot / "f" / "x.####.exr")
    config.output_options.dtype = "float"
    run_pipeline(config)
    assert read_image(shot / "f" / "x.1002.exr").pixels.max() > 1.0e5


def test_farm_split_propagate_and_panoptic_refuse_their_inputs(shot) -> None:
    before = _digests(shot)
    with pytest.raises(InputOverwriteError, match="plate frame 1001"):
        plan_farm_jobs(_config(shot, str(shot / "plates" / "p.####.exr")))
    shutil.copy(shot / "mask.png", shot / "k.1001.png")
    with pytest.raises(InputOverwriteError, match="keyframe mask of frame 1001"):
        write_guidance(
            _config(shot, ""), str(shot / "k.####.png"), {1001: [str(shot / "k.1001.png")]}
        )
    (shot / "k.1001.png").unlink()
    config = _config(shot, "")
    with pytest.raises(InputOverwriteError, match="guidance output frame 1001 .* plate frame"):
        write_guidance(config, config.plate, {1001: [config.mask]})
    labels = str(shot / "labels" / "l.####.png")
    job = PanopticJob(plate=_config(shot, "").plate, output=labels.replace(".png", ".exr"))
    job.labels = str(shot / "labels" / "l.####.exr")
    write_image(shot / "labels" / "l.1001.exr", np.zeros((32, 48, 1), np.float32), ["Y"])
    job.frames = "1001"
    with pytest.raises(InputOverwriteError, match="label map"):
        run_panoptic(job)
    instances = shot / "instances"
    instances.mkdir()
    shutil.copy(shot / "mask.png", instances / "a.png")
    job = PanopticJob(plate=job.plate, output=str(instances / "x.####.exr"), frames="1001")
    job.instances = str(instances)
    with pytest.raises(InputOverwriteError, match="inside the instance-mask folder"):
        run_panoptic(job)
    (shot / "labels" / "l.1001.exr").unlink()
    shutil.rmtree(instances)
    assert _digests(shot) == before


def test_rgba_packing_is_alpha_times_fg_and_alpha():
    """The rgba output is packed into one array: the same values as concatenating
    ``fg * alpha`` and ``alpha`` (values above 1.0 kept, zeros signed as before)."""
    import numpy as np

    from vfxmatte.engine.outputs import FrameResult, _pixels

    rng = np.random.default_rng(0)
    alpha = rng.uniform(0.0, 1.0, (17, 23)).astype(np.float32)
    alpha[:4] = 0.0
    alpha[-4:] = 1.0
    fg = rng.normal(0.0, 3.0, (17, 23, 3)).astype(np.float32)
    result = FrameResult(1, alpha, fg, alpha, {})
    expected = np.concatenate([fg * alpha[..., None], alpha[..., None]], axis=2)
    got = _pixels("rgba", result)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got.view(np.uint32), expected.view(np.uint32))
