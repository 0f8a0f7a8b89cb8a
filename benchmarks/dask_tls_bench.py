"""What TLS costs the local Dask cluster: start-up and per-task dispatch, TLS vs plain TCP.

``--executor dask`` starts its local cluster with TLS between its processes
(temporary credentials, so no other user of the machine can connect). This
measures, in the same run, a cluster of 2 workers started with TLS (what the
executor starts) and without it (the baseline, Dask's default):

* start-up: ``start_local_cluster`` until the workers are up (credentials included);
* dispatch: 200 tiny tasks, one by one, through the cluster (the scheduler round
  trips that TLS makes dearer; a chunk of frames is one such task);
* a shot: the weight-free pipeline on a small synthetic shot, one task per frame.

Each configuration runs ``--repeat`` times, interleaved, and the fastest is kept
(the machine is shared). Prints the ratios TLS / plain and saves JSON.

Usage: python benchmarks/dask_tls_bench.py [--frames 12] [--repeat 3] [--json F]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any


def _inc(x: int) -> int:
    return x + 1


def _dispatch(client: Any, tasks: int) -> float:
    start = time.perf_counter()
    for i in range(tasks):
        client.submit(_inc, i, pure=False).result()
    return time.perf_counter() - start


def _shot_run(shot: Any, folder: str, cluster: Any) -> float:
    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.pipeline import run_pipeline

    config = PipelineConfig(
        plate=shot.plate, mask=shot.mask, output=os.path.join(folder, "m.####.exr")
    )
    config.output_options.kinds = "alpha"
    config.engine.progress = False
    config.engine.executor, config.engine.scheduler = "dask", cluster.scheduler_address
    config.engine.chunk_size = 1
    start = time.perf_counter()
    report = run_pipeline(config)
    assert report.ok and report.written, report.summary()
    return time.perf_counter() - start


def _one(tls: bool, shot: Any, folder: str, tasks: int) -> dict[str, float]:
    import distributed

    from vfxmatte.engine.dask_executor import start_local_cluster

    start = time.perf_counter()
    cluster = start_local_cluster(2, tls=tls)
    startup = time.perf_counter() - start
    try:
        assert cluster.scheduler_address.startswith("tls://" if tls else "tcp://")
        with distributed.Client(cluster, set_as_default=False) as client:
            _dispatch(client, 10)  # warm-up
            dispatch = _dispatch(client, tasks)
        seconds = _shot_run(shot, folder, cluster)
    finally:
        cluster.close()
    return {
        "startup_s": startup,
        "dispatch_ms_per_task": 1000 * dispatch / tasks,
        "shot_s": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=12)
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--json", default=str(Path(__file__).parent / "results" / "dask_tls_bench.json")
    )
    args = parser.parse_args()
    logging.getLogger("distributed").setLevel(logging.ERROR)
    from vfxmatte.engine.pipeline import run_pipeline  # noqa: F401 - import cost outside timings
    from vfxmatte.synth import ShotSpec, write_shot

    with tempfile.TemporaryDirectory() as folder:
        shot = write_shot(
            os.path.join(folder, "shot"), ShotSpec(width=160, height=96, frames=args.frames)
        )
        runs: dict[str, list[dict[str, float]]] = {"plain": [], "tls": []}
        for rep in range(args.repeat):
            for name in ("plain", "tls"):
                out = os.path.join(folder, f"{name}{rep}")
                row = _one(name == "tls", shot, out, args.tasks)
                runs[name].append(row)
                print(
                    f"{name:<5} rep {rep}: " + ", ".join(f"{k} {v:.3f}" for k, v in row.items()),
                    flush=True,
                )
    best = {name: {k: min(r[k] for r in rows) for k in rows[0]} for name, rows in runs.items()}
    ratio = {k: best["tls"][k] / best["plain"][k] for k in best["plain"]}
    print(
        "\nbest of",
        args.repeat,
        "(2 workers, tiny tasks; shot:",
        args.frames,
        "frames 160x96, one task per frame)",
    )
    for key in best["plain"]:
        plain, tls = best["plain"][key], best["tls"][key]
        print(f"  {key:<22} plain {plain:8.3f}   tls {tls:8.3f}   tls/plain {ratio[key]:.2f}x")
    result = {"frames": args.frames, "tasks": args.tasks, "repeat": args.repeat, "best": best,
              "tls_over_plain": ratio, "runs": runs, "cpu_count": os.cpu_count()}  # fmt: skip
    Path(args.json).write_text(json.dumps(result, indent=2) + "\n")
    print("saved", args.json)


if __name__ == "__main__":
    main()
