"""What a local Dask cluster costs a run: start, first task, close; and a small shot.

Part 1, in turn for ``--rounds`` rounds: a local cluster of ``--workers`` workers as
``--executor dask`` starts it (:class:`~vfxmatte.engine.dask_executor.DaskExecutor`:
TLS, the stages plugin whose workers end without a last garbage collection), and
the baseline, the same cluster without the plugin (workers end as Python ends them,
as before). Each worker runs one task that builds the default stages and imports
torch (the network backends and the sparse refiner do); start, that first task and
close are timed. Part 2: a ``--frames``-frame 640x360 shot in this process (local),
with ``--executor dask`` forced, and with ``--executor dask`` left to decide (a shot
this small runs locally, with a warning).

Usage: python benchmarks/dask_overhead_bench.py [--workers 2] [--rounds 2] [--frames 24]
       [--json F]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path


def _first_task(_: int) -> float:
    """What a chunk does first on a fresh worker: build the stages, import torch."""
    start = time.perf_counter()
    import torch  # noqa: F401

    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.stages import ColourContext, Stages

    Stages(PipelineConfig(), ColourContext("lin_rec709", "lin_rec709", None))
    return time.perf_counter() - start


def _timed_cluster(workers: int, with_plugin: bool) -> dict[str, float]:
    import distributed

    from vfxmatte.engine.config import EngineConfig
    from vfxmatte.engine.dask_executor import DaskExecutor, start_local_cluster

    start = time.perf_counter()
    if with_plugin:
        executor = DaskExecutor(EngineConfig(executor="dask", workers=workers))
        client, close = executor.client, executor.close
    else:
        cluster = start_local_cluster(workers)
        client = distributed.Client(cluster, set_as_default=False)

        def close() -> None:
            client.close()
            cluster.close()

    started = time.perf_counter()
    futures = [client.submit(_first_task, i, pure=False) for i in range(workers)]
    client.gather(futures)
    tasks = time.perf_counter()
    close()
    end = time.perf_counter()
    return {"start_s": started - start, "first_task_s": tasks - started, "close_s": end - tasks}


def _shot_runs(frames: int, workers: int) -> dict[str, float]:
    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.synth import ShotSpec, write_shot

    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        shot = write_shot(folder, ShotSpec(width=640, height=360, frames=frames, seed=2))
        for name, executor, force in (
            ("local", "local", False),
            ("dask_forced", "dask", True),
            ("dask_auto", "dask", False),
        ):
            config = PipelineConfig(
                plate=shot.plate, mask=shot.mask, output=os.path.join(folder, name, "m.####.exr")
            )
            config.engine.progress = False
            config.engine.executor, config.engine.workers = executor, workers
            config.engine.force_executor = force
            start = time.perf_counter()
            run_pipeline(config)
            out[f"{name}_s"] = time.perf_counter() - start
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--frames", type=int, default=24, help="frames of the small shot")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
    print(f"Local Dask cluster of {args.workers} workers on {os.cpu_count()} cores")
    runs: dict[str, list[dict[str, float]]] = {"now": [], "baseline": []}
    for i in range(args.rounds):
        for name in ("now", "baseline") if i % 2 == 0 else ("baseline", "now"):
            runs[name].append(_timed_cluster(args.workers, name == "now"))
    rows = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()
    }
    for name, row in rows.items():
        total = sum(row.values())
        print(
            f"{name:<9} start {row['start_s']:.2f} s  first task {row['first_task_s']:.2f} s  "
            f"close {row['close_s']:.2f} s  | overhead {total:.2f} s (median of {args.rounds})"
        )
    now, base = rows["now"], rows["baseline"]
    print(
        f"close now / baseline: {now['close_s'] / base['close_s']:.2f}x; start+close "
        f"{now['start_s'] + now['close_s']:.2f} s vs {base['start_s'] + base['close_s']:.2f} s"
    )
    shot = _shot_runs(args.frames, args.workers) if args.frames else {}
    if shot:
        print(
            f"{args.frames} frames 640x360: local {shot['local_s']:.1f} s, dask forced "
            f"{shot['dask_forced_s']:.1f} s, dask left to decide {shot['dask_auto_s']:.1f} s"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"cluster": rows, "shot": shot}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
