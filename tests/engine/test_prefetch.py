"""Read-ahead / write-behind threads: same frames, same errors, bounded, cancel still works."""

from __future__ import annotations

import json
import threading
import time

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.engine.prefetch import ReadAhead, WriteBehind
from vfxmatte.errors import InputError, OutputError
from vfxmatte.io.image import read_image, write_image
from vfxmatte.io.sequence import FramePattern

FRAMES = list(range(1001, 1007))


# -- the helpers ---------------------------------------------------------------------


def test_read_ahead_keeps_order_and_stays_bounded() -> None:
    loaded: list[int] = []
    reader = ReadAhead(lambda k: loaded.append(k) or k * 10, range(20), depth=2)
    with reader:
        time.sleep(0.3)
        # depth 2 waiting in the queue, one more loaded and waiting to be put
        assert len(loaded) <= 3
        assert [reader.take(k) for k in range(20)] == [k * 10 for k in range(20)]
    with pytest.raises(RuntimeError, match="is next"):
        ReadAhead(lambda k: k, [1, 2], depth=1).take(2)


def test_read_ahead_hands_the_error_of_its_key_unchanged_and_goes_on() -> None:
    error = InputError("Frame 3 is broken: read it again.")

    def load(k: int) -> int:
        if k == 3:
            raise error
        return k

    for depth in (0, 1, 3):
        with ReadAhead(load, range(6), depth=depth) as reader:
            got = []
            for k in range(6):
                try:
                    got.append(reader.take(k))
                except InputError as exc:
                    assert exc is error and str(exc) == "Frame 3 is broken: read it again."
                    got.append(None)
        assert got == [0, 1, 2, None, 4, 5]


def test_read_ahead_closed_early_stops_its_thread() -> None:
    before = threading.active_count()
    with ReadAhead(lambda k: np.zeros((64, 64)), range(1000), depth=2) as reader:
        reader.take(0)
    assert threading.active_count() == before


def test_write_behind_reports_in_order_and_waits_for_the_oldest() -> None:
    reports: list[tuple[int, str]] = []
    running = threading.Event()
    release = threading.Event()

    def slow() -> None:
        running.set()
        release.wait(5)

    with WriteBehind(lambda tag, e: reports.append((tag, repr(e))), depth=1) as writes:
        writes.submit(1, slow)
        running.wait(5)
        assert reports == []  # submitted, not written yet: not reported
        threading.Timer(0.2, release.set).start()
        writes.submit(2, lambda: None)  # waits for 1 first (depth 1), reports it
        assert reports == [(1, "None")]
        writes.then(lambda: reports.append((3, "then")))
        assert reports == [(1, "None"), (2, "None"), (3, "then")]


def test_write_behind_error_reaches_the_caller_and_close_waits() -> None:
    error = OutputError("Cannot write 'out/m.1002.exr': the disk is full.")
    written: list[int] = []

    def done(tag: int, exc: BaseException | None) -> None:
        if exc is not None:
            raise exc

    def write(tag: int) -> None:
        time.sleep(0.05)
        if tag == 2:
            raise error
        written.append(tag)

    for depth in (0, 1, 2):
        written.clear()
        with pytest.raises(OutputError) as got:
            with WriteBehind(done, depth=depth) as writes:
                for tag in range(1, 6):
                    writes.submit(tag, lambda t=tag: write(t))
                writes.flush()
        assert got.value is error
        assert 1 in written and 2 not in written
        # close() waited: nothing is written after the error left the loop
        after = list(written)
        time.sleep(0.2)
        assert written == after


# -- the frame loops -----------------------------------------------------------------


def _config(shot, out, depth: int, **kwargs) -> PipelineConfig:
    config = PipelineConfig(plate=shot.plate, mask=shot.mask, output=str(out / "m.####.exr"))
    config.engine.progress = False
    config.engine.io_depth = depth
    config.output_options.kinds = "rgba,confidence"
    for key, value in kwargs.items():
        section, _, name = key.partition("__")
        if name:
            setattr(getattr(config, section), name, value)
        else:
            setattr(config, key, value)
    return config


def _files(folder) -> dict[str, np.ndarray]:
    return {
        p.name: read_image(p).pixels
        for p in sorted(folder.rglob("*.exr"))
        if not p.name.startswith(".")
    }


def _same(a, b) -> None:
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb) and fa
    for name in fa:
        np.testing.assert_array_equal(fa[name], fb[name], err_msg=name)


def _events(config, **kwargs) -> tuple[list[tuple[int, int, str]], object]:
    events: list[tuple[int, int, str]] = []
    report = run_pipeline(
        config, on_progress=lambda e: events.append((e.number, e.done, e.status)), **kwargs
    )
    return events, report


@pytest.mark.parametrize("feed", ["mask", "matte"])
def test_local_loop_is_bit_identical_with_and_without_threads(small_shot, tmp_path, feed):
    runs = {}
    for depth in (0, 1, 3):
        out = tmp_path / f"d{depth}"
        config = _config(small_shot, out, depth, guidance_output=str(out / "guide" / "g.####.exr"))
        config.propagate.flow.feed = feed
        config.key_frame = 1003  # two passes: forward, then backward from the keyframe
        config.mask = small_shot.frame(small_shot.alpha, 1003)
        runs[depth] = _events(config)
    for depth in (1, 3):
        _same(tmp_path / "d0", tmp_path / f"d{depth}")
        assert runs[depth][0] == runs[0][0]  # the same events, in the same order
        assert runs[depth][1].written == runs[0][1].written == FRAMES


def test_chunk_runner_is_bit_identical_with_and_without_threads(small_shot, tmp_path):
    guide = tmp_path / "guide" / "g.####.exr"
    run_pipeline(_config(small_shot, tmp_path / "ref", 0, guidance_output=str(guide)))
    for depth in (0, 2):
        config = _config(small_shot, tmp_path / f"c{depth}", depth, engine__chunk_size=4)
        config.guidance = str(guide)
        config.engine.overlap = 1
        events, report = _events(config)
        assert report.written == FRAMES and [e[0] for e in events] == FRAMES
    _same(tmp_path / "c0", tmp_path / "c2")
    for name, pixels in _files(tmp_path / "c2").items():
        np.testing.assert_array_equal(pixels, read_image(tmp_path / "ref" / name).pixels)


def test_worker_run_is_bit_identical_with_and_without_threads(small_shot, tmp_path):
    from vfxmatte.worker.server import Worker

    for depth in (0, 1):
        lines: list[str] = []
        worker = Worker(lines.append)
        config = {
            "plate": small_shot.plate,
            "mask": small_shot.mask,
            "output": str(tmp_path / f"w{depth}" / "m.####.exr"),
            "engine": {"io_depth": depth, "progress": False},
        }
        worker.handle_line(json.dumps({"type": "run", "id": 1, "config": config}))
        worker.wait(120)
        final = json.loads(lines[-1])
        assert final["type"] == "result", final
    _same(tmp_path / "w0", tmp_path / "w1")


def _plate_with_bad_frame(shot, tmp_path, bad: int = 1003) -> str:
    folder = tmp_path / "plate"
    folder.mkdir(exist_ok=True)
    src = FramePattern.parse(shot.plate)
    for f in FRAMES:
        frame = read_image(src.path(f))
        pixels = frame.pixels.copy()
        if f == bad:
            pixels[5, 7, 1] = np.inf
        write_image(folder / f"p.{f}.exr", pixels, list(frame.channels), dtype="float")
    return str(folder / "p.####.exr")


@pytest.mark.parametrize("guided", [False, True])
def test_reader_errors_are_the_same_sentences(small_shot, tmp_path, guided):
    plate = _plate_with_bad_frame(small_shot, tmp_path)
    guide = tmp_path / "guide" / "g.####.exr"
    if guided:
        run_pipeline(_config(small_shot, tmp_path / "g", 0, guidance_output=str(guide)))
    results = {}
    for depth in (0, 1):
        config = _config(small_shot, tmp_path / f"skip{depth}", depth, engine__on_error="skip")
        config.plate = plate
        config.guidance = str(guide) if guided else ""
        events, report = _events(config)
        results[depth] = (events, report.failed, report.written)
        config = _config(small_shot, tmp_path / f"stop{depth}", depth)
        config.plate = plate
        config.guidance = str(guide) if guided else ""
        with pytest.raises(InputError, match=r"Frame 1003 .*infinite") as stop:
            run_pipeline(config)
        results[depth] += (str(stop.value),)
        assert sorted(p.name for p in (tmp_path / f"stop{depth}").glob("m.*.exr")) == [
            "m.1001.exr",
            "m.1002.exr",
        ]
    assert results[0] == results[1]
    assert list(results[1][1]) == [1003] and results[1][2] == [1001, 1002, 1004, 1005, 1006]


def test_writer_errors_are_the_same_sentences(small_shot, tmp_path, monkeypatch):
    from vfxmatte.engine import outputs

    guide = tmp_path / "guide" / "g.####.exr"
    run_pipeline(_config(small_shot, tmp_path / "g", 0, guidance_output=str(guide)))
    real = outputs.write_image

    def failing(path, *args, **kwargs):
        if ".1003." in str(path):
            raise OutputError(f"Cannot write '{path}': no space left on the device.")
        return real(path, *args, **kwargs)

    monkeypatch.setattr(outputs, "write_image", failing)
    messages = {}
    for depth in (0, 1):
        for guided in (False, True):
            out = tmp_path / f"d{depth}" / str(guided)
            config = _config(small_shot, out, depth, engine__on_error="skip")
            config.guidance = str(guide) if guided else ""
            events: list[int] = []
            with pytest.raises(OutputError, match="no space left") as got:
                run_pipeline(config, on_progress=lambda e, seen=events: seen.append(e.number))
            messages[(depth, guided)] = (str(got.value).replace(f"d{depth}", "D"), events)
            # written frames are reported once on disk; 1003 never as written
            assert events[:2] == [1001, 1002] and len(events) <= 3
            assert not (out / "m.1003.exr").exists()
    assert messages[(0, False)] == messages[(1, False)]
    assert messages[(0, True)] == messages[(1, True)]


@pytest.mark.parametrize("depth", [1, 3])
@pytest.mark.parametrize("guided", [False, True])
def test_cancel_with_threads_writes_what_was_reported(small_shot, tmp_path, guided, depth):
    out = tmp_path / "out"
    config = _config(small_shot, out, depth)
    if guided:
        guide = tmp_path / "guide" / "g.####.exr"
        run_pipeline(_config(small_shot, tmp_path / "g", 0, guidance_output=str(guide)))
        config.guidance = str(guide)
    seen: list[int] = []
    report = run_pipeline(
        config, on_progress=lambda e: seen.append(e.number), should_cancel=lambda: len(seen) >= 2
    )
    assert report.cancelled and report.written == seen
    if depth == 1:
        assert seen == [1001, 1002]  # as without threads: the cancel is seen before 1003
    else:
        assert 2 <= len(seen) < len(FRAMES)  # the frames on their way are finished
    on_disk = sorted(int(p.name.split(".")[1]) for p in out.glob("m.*.exr"))
    assert on_disk == seen  # nothing written that is not reported, nothing after the cancel
    assert not [p for p in out.rglob(".*")]  # no temporary left
