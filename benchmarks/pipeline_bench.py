"""The default weight-free pipeline: seconds per frame per stage, against the I/O floor.

For 1080p and 4K UHD it renders a short synthetic shot (scene-linear EXR half),
measures in the same child process the EXR read+write time of those frames (the
floor of the foundation benchmark), then runs ``vfxmatte matte`` on them with the
defaults (snapcut -> classical -> multilevel, RGBA EXR out) twice per round, in turn:
with the read-ahead/write-behind threads (``engine.io_depth=1``, the default) and
without them (``io_depth=0``: read, matte and write one after the other, the loop
as it was before). It prints each stage's seconds per frame, the total, the ratio
to the floor, the pipelined/sequential ratio (median over rounds) and the peak
RSS. "read"/"write" are the seconds the loop waits for them; "read (thread)" and
"write (thread)" what the threads spent. A second part runs a long shot at a small
size and prints RSS after the first frames and at the end, to show memory stays
flat with shot length.

Usage: python benchmarks/pipeline_bench.py [--frames 4] [--rounds 2] [--long-frames 200]
       [--resolutions 1080p,4K UHD] [--json F]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402

RESOLUTIONS = {"1080p": (1920, 1080), "4K UHD": (3840, 2160)}
STAGES = ("read", "propagate", "matte", "decontaminate", "write")


def _config(shot, out: str):  # noqa: ANN001, ANN202
    from vfxmatte.engine.config import PipelineConfig

    config = PipelineConfig(plate=shot.plate, mask=shot.mask, output=out)
    config.engine.progress = False
    return config


def _io_floor(shot, n: int, folder: str) -> float:  # noqa: ANN001
    """Seconds per frame to read a plate frame and write an RGBA EXR half zip."""
    import numpy as np

    from vfxmatte.io.image import read_image, write_image
    from vfxmatte.io.sequence import FramePattern

    pattern = FramePattern.parse(shot.plate)
    frames = pattern.frames_on_disk()[:n]
    start = time.perf_counter()
    for number in frames:
        pixels = read_image(pattern.path(number), "RGB").pixels
        rgba = np.concatenate([pixels, pixels[..., :1]], axis=2)
        write_image(os.path.join(folder, f"floor.{number}.exr"), rgba, list("RGBA"))
    return (time.perf_counter() - start) / len(frames)


def _timed_run(shot, spec, folder: str, n: int, depth: int, i: int) -> dict[str, float]:  # noqa: ANN001, E501
    from vfxmatte.engine.pipeline import run_pipeline

    config = _config(shot, os.path.join(folder, f"out{depth}-{i}", "m.####.exr"))
    config.frames = f"{spec.first_frame + 1}-{spec.first_frame + n}"
    config.key_frame = spec.first_frame + 1
    config.mask = shot.mask  # the first-frame mask is close enough to frame 2 to start
    config.engine.io_depth = depth
    report = run_pipeline(config)
    row = {f"{k}_s": v / n for k, v in report.timings.items()}
    row["total_s"] = report.seconds / n
    return row


def _median(values: list[float]) -> float:
    values = sorted(values)
    mid = len(values) // 2
    return values[mid] if len(values) % 2 else (values[mid - 1] + values[mid]) / 2


def measure(args: tuple[str, int, int]) -> dict[str, dict[str, float]]:
    """One resolution, in a fresh process so that its peak RSS is its own.

    Rounds alternate pipelined and sequential runs of the same frames; each figure
    is the median over the rounds, ``ratio`` the median of the per-round ratios.
    """
    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.synth import ShotSpec, write_shot

    res, n, rounds = args
    width, height = RESOLUTIONS[res]
    runs: dict[int, list[dict[str, float]]] = {1: [], 0: []}
    with tempfile.TemporaryDirectory() as folder:
        spec = ShotSpec(width=width, height=height, frames=n + 1, seed=1)
        shot = write_shot(os.path.join(folder, "shot"), spec)
        # Warm-up frame: JIT compilation (numba) and first-touch costs are not per frame.
        warm = _config(shot, os.path.join(folder, "warm", "w.####.exr"))
        warm.frames = str(spec.first_frame)
        run_pipeline(warm)
        floor = _io_floor(shot, n, folder)
        for i in range(rounds):
            for depth in (1, 0) if i % 2 == 0 else (0, 1):
                runs[depth].append(_timed_run(shot, spec, folder, n, depth, i))
    rows: dict[str, dict[str, float]] = {}
    for depth, name in ((1, "pipelined"), (0, "sequential")):
        keys = set().union(*runs[depth])
        rows[name] = {k: _median([r.get(k, 0.0) for r in runs[depth]]) for k in keys}
        rows[name]["io_floor_s"] = floor
    ratios = [a["total_s"] / b["total_s"] for a, b in zip(runs[1], runs[0], strict=True)]
    rows["pipelined"]["vs_sequential"] = _median(ratios)
    rows["pipelined"]["peak_rss_mb"] = rows["sequential"]["peak_rss_mb"] = peak_rss_mb()
    return rows


def long_shot(n: int, width: int = 640, height: int = 360) -> dict[str, float]:
    """RSS after 10% of a long shot and at its end."""
    import psutil

    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.synth import ShotSpec, write_shot

    proc = psutil.Process()
    samples: dict[int, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        shot = write_shot(folder, ShotSpec(width=width, height=height, frames=n, seed=2))
        config = _config(shot, os.path.join(folder, "out", "m.####.exr"))

        def sample(event) -> None:  # noqa: ANN001
            if event.done in (max(1, n // 10), n):
                samples[event.done] = proc.memory_info().rss / 2**20

        start = time.perf_counter()
        run_pipeline(config, on_progress=sample)
        seconds = (time.perf_counter() - start) / n
    early, late = samples[max(1, n // 10)], samples[n]
    return {"frames": n, "rss_early_mb": early, "rss_end_mb": late, "s_per_frame": seconds}


def _line(res: str, name: str, row: dict[str, float]) -> str:
    stages = "  ".join(f"{s} {row.get(s + '_s', 0.0):.2f}" for s in STAGES)
    threads = "  ".join(
        f"{s} {row[s + ' (thread)_s']:.2f}" for s in ("read", "write") if s + " (thread)_s" in row
    )
    extra = f" [threads: {threads}]" if threads else ""
    return (
        f"{res:<7} {name:<10} s/frame: {stages}{extra}  | total {row['total_s']:.2f}  I/O floor "
        f"{row['io_floor_s']:.2f}  ratio {row['total_s'] / row['io_floor_s']:.1f}x"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="frames timed per resolution")
    parser.add_argument("--rounds", type=int, default=2, help="pipelined+sequential pairs")
    parser.add_argument("--long-frames", type=int, default=200, help="frames of the RSS run")
    parser.add_argument("--resolutions", default=",".join(RESOLUTIONS), help="comma list")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    print(f"Default pipeline on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    rows = {}
    ctx = mp.get_context("spawn")
    for res in [r.strip() for r in args.resolutions.split(",") if r.strip()]:
        with ctx.Pool(1) as pool:
            both = pool.map(measure, [(res, args.frames, args.rounds)])[0]
        rows[res] = both
        for name in ("sequential", "pipelined"):
            print(_line(res, name, both[name]), flush=True)
        print(
            f"{res:<7} pipelined / sequential total: {both['pipelined']['vs_sequential']:.2f}x "
            f"(median of {args.rounds} paired rounds); target <= 3x the I/O floor at 1080p; "
            f"peak RSS {both['pipelined']['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    if "4K UHD" in rows and "1080p" in rows:
        for name in ("sequential", "pipelined"):
            scale = rows["4K UHD"][name]["total_s"] / rows["1080p"][name]["total_s"]
            print(f"4K UHD / 1080p total per frame, {name}: {scale:.2f}x (target <= 2x; pixels 4x)")
    flat = None
    if args.long_frames:
        with ctx.Pool(1) as pool:
            flat = pool.apply(long_shot, (args.long_frames,))
        print(
            f"Long shot {flat['frames']} frames 640x360: RSS {flat['rss_early_mb']:.0f} MB after "
            f"{flat['frames'] // 10} frames, {flat['rss_end_mb']:.0f} MB at the end "
            f"({flat['s_per_frame']:.2f} s/frame)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps({"resolutions": rows, "long_shot": flat}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
