"""Parallel executors: a Dask LocalCluster of 2 worker processes, worker processes, errors."""

from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import Future
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pytest

from vfxmatte.engine.config import PipelineConfig
from vfxmatte.engine.pipeline import run_pipeline
from vfxmatte.errors import ConfigError, DeviceError, InputError
from vfxmatte.io.image import read_image, write_image

distributed = pytest.importorskip("distributed")
cloudpickle = pytest.importorskip("cloudpickle")
# The functions below run inside the workers: ship them by value, not by module name.
cloudpickle.register_pickle_by_value(sys.modules[__name__])

FRAMES = list(range(1001, 1007))
KINDS = "rgba,alpha"


def _config(shot, out, **engine) -> PipelineConfig:
    config = PipelineConfig(plate=shot.plate, mask=shot.mask, output=str(out / "m.####.exr"))
    config.output_options.kinds = KINDS
    config.engine.progress = False
    for key, value in engine.items():
        setattr(config.engine, key, value)
    return config


def _assert_same_frames(reference, out) -> None:
    for f in FRAMES:
        for name in ("m", "m_alpha"):
            a = read_image(reference / f"{name}.{f}.exr").pixels
            b = read_image(out / f"{name}.{f}.exr").pixels
            np.testing.assert_array_equal(a, b, err_msg=f"{name}.{f}")


@pytest.fixture(scope="module")
def reference(small_shot, tmp_path_factory):
    """The local executor's frames of the shot."""
    out = tmp_path_factory.mktemp("local")
    assert run_pipeline(_config(small_shot, out)).written == FRAMES
    return out


@pytest.fixture(scope="module")
def cluster():
    """2 worker processes, one thread each, on CPU; shared by the tests of this module."""
    from vfxmatte.engine.dask_executor import start_local_cluster

    with start_local_cluster(2) as cluster:
        yield cluster


def _plugin_counts(dask_worker) -> tuple[int, int]:
    cache = dask_worker.plugins["vfxmatte-stages"].cache
    return cache.builds, cache.chunks


def test_dask_matches_local_bit_for_bit_and_builds_stages_once(
    small_shot, reference, cluster, tmp_path
) -> None:
    config = _config(
        small_shot, tmp_path, executor="dask", scheduler=cluster.scheduler_address, chunk_size=1
    )
    events = []
    report = run_pipeline(config, on_progress=events.append)
    assert report.ok and report.written == FRAMES
    assert report.statuses() == {f: "written" for f in FRAMES}
    assert sorted(e.number for e in events) == FRAMES and events[-1].done == 6
    assert {"propagate", "matte", "decontaminate", "write"} <= set(report.timings)
    _assert_same_frames(reference, tmp_path)
    # Six one-frame chunks on two workers: each worker built its stages once.
    with distributed.Client(cluster, set_as_default=False) as client:
        counts = client.run(_plugin_counts)
    assert sum(chunks for _, chunks in counts.values()) == 6
    assert all(builds == (1 if chunks else 0) for builds, chunks in counts.values())
    # A second run finds every frame done and sends nothing to the workers.
    again = run_pipeline(config)
    assert again.reused == FRAMES and not again.written


def _crash_on_second_file(marker: str, out: str, frame: int) -> None:
    """In a worker: die half-way through writing ``frame`` (rgba written, alpha not), once."""
    from vfxmatte.engine import outputs

    original = outputs.write_image

    def write_image(path, *args, **kwargs):
        name = os.path.basename(str(path))
        if name == f"m_alpha.{frame}.exr" and not os.path.exists(marker):
            state = {
                n: [os.stat(os.path.join(out, n)).st_ino, os.stat(os.path.join(out, n)).st_mtime_ns]
                for n in os.listdir(out)
                if n.endswith(".exr")
            }
            with open(marker, "w") as fh:
                json.dump(state, fh)
            os._exit(1)
        return original(path, *args, **kwargs)

    outputs.write_image = write_image


def test_killed_worker_is_retried_and_no_frame_is_written_twice(
    small_shot, reference, cluster, tmp_path
) -> None:
    out, marker = tmp_path / "out", tmp_path / "crashed.json"
    out.mkdir()
    with distributed.Client(cluster, set_as_default=False) as client:
        client.run(_crash_on_second_file, str(marker), str(out), 1005)
    config = _config(
        small_shot, out, executor="dask", scheduler=cluster.scheduler_address, chunk_size=3
    )
    report = run_pipeline(config)
    assert marker.exists(), "no worker died: the test did not test anything"
    assert report.ok and report.statuses() == {f: "written" for f in FRAMES}
    _assert_same_frames(reference, out)
    state = json.loads(marker.read_text())
    # Frame 1004 was complete when its worker died: the retry kept its files as they were.
    for name in ("m.1004.exr", "m_alpha.1004.exr"):
        assert name in state
        stat = os.stat(out / name)
        assert [stat.st_ino, stat.st_mtime_ns] == state[name]
    assert "m_alpha.1005.exr" not in state  # it died half-way through frame 1005
    assert not [n for n in os.listdir(out) if n.startswith(".")]  # no temporary left


def test_processes_executor_matches_local(small_shot, reference, tmp_path) -> None:
    config = _config(small_shot, tmp_path, executor="processes", workers=2, chunk_size=2, overlap=1)
    report = run_pipeline(config)
    assert report.ok and report.written == FRAMES
    _assert_same_frames(reference, tmp_path)


def _plate_with_nan(shot, folder) -> str:
    folder.mkdir()
    for f in FRAMES:
        frame = read_image(shot.plate.replace("####", str(f)))
        pixels = frame.pixels.copy()
        if f == 1003:
            pixels[10, 10, 0] = np.nan
        write_image(folder / f"p.{f}.exr", pixels, list(frame.channels), dtype="float")
    return str(folder / "p.####.exr")


def test_a_bad_frame_fails_alone_as_in_the_local_loop(small_shot, cluster, tmp_path) -> None:
    plate = _plate_with_nan(small_shot, tmp_path / "plate")
    local = _config(small_shot, tmp_path / "local", on_error="skip")
    local.plate = plate
    expected = run_pipeline(local)
    assert list(expected.failed) == [1003]
    # Its own local cluster (started and closed by the run): propagation runs here,
    # beside the chunks, and skips the bad frame as the local loop does.
    config = _config(
        small_shot, tmp_path / "dask", executor="dask", workers=2, on_error="skip",
        force_executor=True,
    )  # fmt: skip
    config.plate = plate
    environ = dict(os.environ)
    report = run_pipeline(config)
    assert dict(os.environ) == environ  # the cluster's nannies left this process as it was
    assert list(report.failed) == [1003] and "NaN" in report.failed[1003]
    assert report.written == [1001, 1002, 1004, 1005, 1006]
    assert not (tmp_path / "dask" / "m.1003.exr").exists()
    for f in report.written:
        for name in ("m", "m_alpha"):
            np.testing.assert_array_equal(
                read_image(tmp_path / "dask" / f"{name}.{f}.exr").pixels,
                read_image(tmp_path / "local" / f"{name}.{f}.exr").pixels,
            )
    # on_error=stop: the propagation on the cluster's machine stops the run.
    config = _config(small_shot, tmp_path / "stop", executor="dask", on_error="stop")
    config.plate, config.engine.scheduler = plate, cluster.scheduler_address
    with pytest.raises(InputError, match=r"Frame 1003 .* NaN or infinite"):
        run_pipeline(config)
    _assert_stopped_before(1003, tmp_path / "stop", tmp_path / "local")


def _assert_stopped_before(bad: int, out, local) -> None:
    """What a stopped run leaves: frames before ``bad`` at most, as the local loop wrote
    them, and nothing written after the run returned."""
    written = sorted(p.name for p in out.glob("*.exr"))
    assert all(int(name.split(".")[1]) < bad for name in written), written
    for name in written:
        np.testing.assert_array_equal(
            read_image(out / name).pixels, read_image(local / name).pixels
        )
    time.sleep(1.5)  # a chunk left running on the cluster would write meanwhile
    assert sorted(p.name for p in out.glob("*.exr")) == written


def test_a_stopped_run_leaves_no_chunk_writing_on_the_cluster(
    small_shot, cluster, tmp_path, monkeypatch
) -> None:
    """Chunks start as the guidance lands, so one may be matting when a later frame
    stops the propagation; it must not go on writing after the run has stopped."""
    from vfxmatte.engine import propagation

    def slow(*args, **kwargs):
        propagator = make(*args, **kwargs)
        step = propagator.step

        def slow_step(*args, **kwargs):
            time.sleep(0.6)  # a slow propagation: the chunks of 1001 and 1002 start
            return step(*args, **kwargs)

        propagator.step = slow_step
        return propagator

    make = propagation.make_propagator
    monkeypatch.setattr(propagation, "make_propagator", slow)
    plate = _plate_with_nan(small_shot, tmp_path / "plate")
    local = _config(small_shot, tmp_path / "local", on_error="skip")
    local.plate = plate
    local.propagate.backend = "snapcut"
    assert list(run_pipeline(local).failed) == [1003]
    config = _config(
        small_shot, tmp_path / "stop", executor="dask", scheduler=cluster.scheduler_address
    )
    config.plate = plate
    config.propagate.backend = "snapcut"
    with pytest.raises(InputError, match=r"Frame 1003 .* NaN or infinite"):
        run_pipeline(config)
    _assert_stopped_before(1003, tmp_path / "stop", tmp_path / "local")


class _FakeExecutor:
    """Runs chunks in this process; the first future of each chunk fails as a dead pool."""

    retry_errors = (BrokenProcessPool,)
    workers = 2
    propagates_here = True

    def __init__(self) -> None:
        from vfxmatte.engine.stages import Stages

        self.stages_cls = Stages
        self.submitted: list[str] = []

    def propagate(self, config):
        from vfxmatte.engine.propagation import propagate_to_files

        return propagate_to_files(config)

    def submit(self, task):
        from vfxmatte.engine.chunks import run_chunk

        future: Future = Future()
        if task.chunk.name not in self.submitted:
            future.set_exception(BrokenProcessPool("a worker died"))
        else:
            future.set_result(run_chunk(task, self.stages_cls(task.config, task.colour)))
        self.submitted.append(task.chunk.name)
        return future

    def wait(self, futures, timeout):
        return set(futures)

    def lost_worker(self, exc):
        return "its worker process died" if isinstance(exc, BrokenProcessPool) else None

    def cancel(self, futures) -> None:
        pass

    def close(self) -> None:
        pass


def test_chunks_of_a_dead_process_pool_are_resubmitted(
    small_shot, reference, tmp_path, monkeypatch
) -> None:
    fake = _FakeExecutor()
    monkeypatch.setattr("vfxmatte.engine.executors.make_executor", lambda engine: fake)
    config = _config(small_shot, tmp_path, executor="processes", chunk_size=3)
    report = run_pipeline(config)
    assert sorted(fake.submitted) == ["1001-1003", "1001-1003", "1004-1006", "1004-1006"]
    assert report.ok and report.written == FRAMES
    _assert_same_frames(reference, tmp_path)
    # Out of retries: the chunk's frames are failed (skip) or the run stops (stop).
    config = _config(
        small_shot, tmp_path / "r0", executor="processes", chunk_size=3, retries=0, on_error="skip"
    )
    fake.submitted.clear()
    report = run_pipeline(config)
    assert sorted(report.failed) == FRAMES and "worker process died" in report.failed[1001]
    config.engine.on_error = "stop"
    fake.submitted.clear()
    with pytest.raises(DeviceError, match=r"Frames 100[14]-100[36] could not be matted: its w"):
        run_pipeline(config)


def test_unreachable_scheduler_fails_fast_and_clearly(small_shot, tmp_path) -> None:
    config = _config(
        small_shot, tmp_path, executor="dask", scheduler="tcp://127.0.0.1:9", connect_timeout=1.0
    )
    start = time.perf_counter()
    with pytest.raises(
        DeviceError,
        match=r"No Dask scheduler answered at 'tcp://127.0.0.1:9' "
        r"within 1 s.*leave --scheduler empty",
    ):
        run_pipeline(config)
    assert time.perf_counter() - start < 15
    assert not (tmp_path / "m.1001.exr").exists()


def test_bad_executor_options(small_shot, tmp_path) -> None:
    config = _config(small_shot, tmp_path, executor="dsak")
    with pytest.raises(ConfigError, match="'engine.executor' got 'dsak'.*Did you mean 'dask'"):
        run_pipeline(config)
    config = _config(small_shot, tmp_path, executor="processes")
    config.propagate.backend = "flow"
    config.propagate.flow.feed = "matte"
    with pytest.raises(ConfigError, match="feed=matte .* use --executor local"):
        run_pipeline(config)
    config = _config(small_shot, tmp_path, executor="dask", workers=-1)
    with pytest.raises(ConfigError, match="'engine.workers' got -1"):
        run_pipeline(config)


def test_a_shot_too_small_for_dask_runs_locally_unless_forced(
    small_shot, reference, tmp_path, caplog
) -> None:
    from vfxmatte.engine.executors import LOCAL_DASK_OVERHEAD_S, too_small_for_dask

    config = _config(small_shot, tmp_path / "small", executor="dask", workers=2)
    start = time.perf_counter()
    with caplog.at_level("WARNING", logger="vfxmatte.engine.executors"):
        report = run_pipeline(config)
    assert time.perf_counter() - start < LOCAL_DASK_OVERHEAD_S  # no cluster was started
    assert "too small for Dask, running locally unless forced" in caplog.text
    assert "--engine.force-executor" in caplog.text
    assert report.written == FRAMES
    assert not list((tmp_path / "small").glob("*guidance*"))  # the local loop: no guidance files
    _assert_same_frames(reference, tmp_path / "small")
    # A long 4K shot on 8 cores is worth a cluster; one core never is.
    assert too_small_for_dask(config, 3840, 2160, 200, cores=8) is None
    assert too_small_for_dask(config, 3840, 2160, 200, cores=1) is not None
    config.engine.workers = 1
    assert too_small_for_dask(config, 3840, 2160, 200, cores=8) is not None
