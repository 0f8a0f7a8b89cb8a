"""Chunks, warm-up overlap, precomputed guidance (one farm chunk) and the propagation phase."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from vfxmatte.engine.chunks import (
    Chunk,
    ChunkTask,
    GuidanceSource,
    _needed,
    file_system_now,
    frame_range_text,
    plan_chunks,
    run_chunk,
    warmup_frames,
)
from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.outputs import FrameResult
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.engine.stages import ColourContext
from vfxmatte.engine.timing import StageTimer
from vfxmatte.errors import ConfigError, MissingFramesError
from vfxmatte.io.image import read_image
from vfxmatte.io.sequence import FramePattern

FRAMES = list(range(1001, 1007))


def _config(shot, out, **kwargs) -> PipelineConfig:
    config = PipelineConfig(plate=shot.plate, mask=shot.mask, output=str(out / "m.####.exr"))
    config.output_options.kinds = "alpha"
    config.engine.progress = False
    for key, value in kwargs.items():
        section, _, name = key.partition("__")
        setattr(getattr(config, section), name, value) if name else setattr(config, key, value)
    return config


def _alpha(out, frame: int) -> np.ndarray:
    return read_image(out / f"m.{frame}.exr").pixels


@pytest.fixture(scope="module")
def guided(small_shot, tmp_path_factory):
    """The propagation phase's guidance and the local executor's alpha for the shot."""
    root = tmp_path_factory.mktemp("guided")
    config = _config(small_shot, root / "local", guidance_output=str(root / "g.####.exr"))
    assert run_pipeline(config).written == FRAMES  # local loop, writing its guidance too
    phase = _config(
        small_shot,
        root / "unused",
        guidance_output=str(root / "phase.####.exr"),
        engine__phase="propagate",
    )
    report = run_pipeline(phase)
    assert report.written == FRAMES and report.outputs == {"guidance": str(root / "phase.####.exr")}
    assert not (root / "unused").exists()  # the propagation phase mattes nothing
    return root


def test_propagation_phase_writes_the_local_loops_guidance(guided) -> None:
    for f in FRAMES:
        g = read_image(guided / f"phase.{f}.exr")
        assert g.channels == ("A",) and g.pixels.dtype == np.float32
        np.testing.assert_array_equal(g.pixels, read_image(guided / f"g.{f}.exr").pixels)


def test_plan_chunks_and_frame_ranges() -> None:
    chunks = plan_chunks(FRAMES, 4, overlap=2)
    assert chunks == [Chunk((1001, 1002, 1003, 1004)), Chunk((1005, 1006), (1003, 1004))]
    stepped = plan_chunks(list(range(1001, 1013, 2)), 3, overlap=5)
    assert [c.name for c in stepped] == ["1001-1005x2", "1007-1011x2"]
    assert stepped[1].warmup == (1001, 1003, 1005)  # as far back as the shot goes
    assert frame_range_text([1001, 1002, 1005]) == "1001-1002,1005"
    assert frame_range_text([7]) == "7"
    # Farm chunks warm up on frames before their range when those have guidance.
    assert warmup_frames(1005, 1, 3, available=range(990, 1010)) == (1002, 1003, 1004)
    assert warmup_frames(1005, 1, 3, available=[1001, 1002, 1004]) == (1004,)
    assert _needed([1, 2, 3, 4, 5, 6], {5}, 2) == [False, False, True, True, True, False]
    assert _needed([1, 2, 3], set(), 4) == [False, False, False]


class _WindowStages:
    """A stand-in for a temporal stage: alpha = mean guidance of the last 3 frames seen.

    It needs 2 frames of history; with ``overlap >= 2`` chunks match a straight run.
    """

    def __init__(self) -> None:
        self.timer = StageTimer()
        self.history: list[np.ndarray] = []
        self.seen: list[int] = []
        self.resets = 0

    def reset_sequence(self) -> None:
        self.history.clear()
        self.resets += 1

    def process(self, frame, guidance, display) -> FrameResult:
        self.seen.append(frame.number)
        self.history = [*self.history[-2:], guidance]
        alpha = np.mean(self.history, axis=0).astype(np.float32)
        fg = np.zeros((*alpha.shape, 3), np.float32)
        return FrameResult(frame.number, alpha, fg, alpha, dict(frame.metadata))


def _task(shot, guided, out, chunk: Chunk, overlap: int) -> ChunkTask:
    config = _config(shot, out, engine__overlap=overlap)
    first = read_image(FramePattern.parse(shot.plate).path(1001))
    return ChunkTask(
        config,
        ColourContext.for_plate(config, first),
        GuidanceSource(str(guided / "phase.####.exr")),
        chunk,
        (96, 160),
    )


def test_overlap_warms_up_a_temporal_stage_without_a_seam(small_shot, guided, tmp_path) -> None:
    straight = _WindowStages()
    run_chunk(_task(small_shot, guided, tmp_path / "one", Chunk(tuple(FRAMES)), 0), straight)
    assert straight.seen == FRAMES
    chunks = plan_chunks(FRAMES, 2, overlap=2)
    stages = _WindowStages()
    for chunk in chunks:
        result = run_chunk(_task(small_shot, guided, tmp_path / "warm", chunk, 2), stages)
        assert result.statuses == {f: "written" for f in chunk.frames}
        assert set(result.statuses).isdisjoint(chunk.warmup)
    # Warm-up frames are processed (each chunk after the first starts two frames early) ...
    assert stages.seen == [1001, 1002, 1001, 1002, 1003, 1004, 1003, 1004, 1005, 1006]
    assert stages.resets == 3
    for f in FRAMES:
        np.testing.assert_array_equal(_alpha(tmp_path / "warm", f), _alpha(tmp_path / "one", f))
    # ... and not written: a lone later chunk writes its own frames only.
    lone = _task(small_shot, guided, tmp_path / "lone", chunks[2], 2)
    run_chunk(lone, _WindowStages())
    assert sorted(os.listdir(tmp_path / "lone")) == ["m.1005.exr", "m.1006.exr"]
    # Without the overlap the history restarts at every chunk: the first two frames of
    # each later chunk differ from the straight run.
    for chunk in chunks:
        run_chunk(_task(small_shot, guided, tmp_path / "cold", chunk, 0), _WindowStages())
    seams = [
        f
        for f in FRAMES
        if not np.array_equal(_alpha(tmp_path / "cold", f), _alpha(tmp_path / "one", f))
    ]
    assert seams == [1003, 1004, 1005, 1006]


def test_resumed_chunk_processes_only_the_history_it_needs(small_shot, guided, tmp_path) -> None:
    run_chunk(_task(small_shot, guided, tmp_path, Chunk(tuple(FRAMES)), 0), _WindowStages())
    os.unlink(tmp_path / "m.1005.exr")
    stages = _WindowStages()
    result = run_chunk(_task(small_shot, guided, tmp_path, Chunk(tuple(FRAMES)), 2), stages)
    assert stages.seen == [1003, 1004, 1005]
    assert result.statuses == {
        1001: "reused",
        1002: "reused",
        1003: "reused",
        1004: "reused",
        1005: "written",
        1006: "reused",
    }


def test_overwrite_retry_keeps_what_this_run_wrote(small_shot, guided, tmp_path) -> None:
    task = _task(small_shot, guided, tmp_path, Chunk(tuple(FRAMES[:3])), 0)
    run_chunk(task, _WindowStages())  # an earlier run's outputs
    task.config.engine.overwrite = True
    time.sleep(0.03)  # file times tick every few ms: keep the three moments apart
    task.fresh_after_ns = file_system_now(str(tmp_path))
    time.sleep(0.03)
    first = run_chunk(task, _WindowStages())
    assert set(first.statuses.values()) == {"written"}
    stamps = [os.stat(tmp_path / f"m.{f}.exr").st_mtime_ns for f in FRAMES[:3]]
    retry = run_chunk(task, _WindowStages())  # the same task again, as after a dead worker
    assert set(retry.statuses.values()) == {"reused"}
    assert [os.stat(tmp_path / f"m.{f}.exr").st_mtime_ns for f in FRAMES[:3]] == stamps


def test_farm_chunks_from_guidance_match_the_local_run(small_shot, guided, tmp_path) -> None:
    guide = str(guided / "phase.####.exr")
    seen = []
    for frames in ("1001-1003", "1004-1006"):
        config = _config(
            small_shot, tmp_path, frames=frames, guidance=guide, engine__overlap=1, mask=""
        )
        config.propagate.backend = "sam2"  # ignored: the guidance is given
        report = run_pipeline(config, on_progress=lambda e: seen.append((e.number, e.status)))
        assert report.ok and report.outputs["guidance"] == guide
    assert seen == [(f, "written") for f in FRAMES]
    for f in FRAMES:
        np.testing.assert_array_equal(_alpha(tmp_path, f), _alpha(guided / "local", f))
    # Local executor in this process, chunks of 2 with warm-up, resuming what exists.
    os.unlink(tmp_path / "m.1004.exr")
    config = _config(small_shot, tmp_path, guidance=guide, engine__chunk_size=2, engine__overlap=1)
    report = run_pipeline(config)
    assert report.statuses() == {**{f: "reused" for f in FRAMES}, 1004: "written"}
    np.testing.assert_array_equal(_alpha(tmp_path, 1004), _alpha(guided / "local", 1004))


def test_missing_guidance_frames_are_listed(small_shot, guided, tmp_path) -> None:
    partial = tmp_path / "partial"
    partial.mkdir()
    for f in (1001, 1002, 1004):
        os.link(guided / f"phase.{f}.exr", partial / f"phase.{f}.exr")
    config = _config(small_shot, tmp_path / "o", guidance=str(partial / "phase.####.exr"))
    with pytest.raises(
        MissingFramesError,
        match=r"lacks 3 frame\(s\): 1003, 1005-1006; run the "
        r"propagation job first",
    ) as info:
        run_pipeline(config)
    assert info.value.frames == [1003, 1005, 1006]
    assert not (tmp_path / "o").exists()
    config.frames = "1001-1002"
    assert run_pipeline(config).written == [1001, 1002]
    # Guidance before the plate's first frame is no warm-up frame (no plate to read).
    os.link(guided / "phase.1001.exr", partial / "phase.1000.exr")
    config = _config(
        small_shot,
        tmp_path / "w",
        guidance=str(partial / "phase.####.exr"),
        frames="1001",
        engine__overlap=2,
    )
    assert run_pipeline(config).written == [1001]


def test_propagation_phase_refuses_matte_feedback(small_shot, tmp_path) -> None:
    config = _config(small_shot, tmp_path, engine__phase="propagate")
    config.propagate.backend = "flow"
    config.propagate.flow.feed = "matte"
    with pytest.raises(ConfigError, match="feed=matte"):
        run_pipeline(config)
