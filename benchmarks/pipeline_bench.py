"""The default weight-free pipeline: seconds per frame per stage, against the I/O floor.

For 1080p and 4K UHD it renders a short synthetic shot (scene-linear EXR half),
measures in the same child process the EXR read+write time of those frames (the
floor of the foundation benchmark), then runs ``vfxmatte matte`` on them with the
defaults (flow -> classical -> multilevel, RGBA EXR out) and prints each stage's
seconds per frame, the total, the ratio to the floor and the peak RSS. A second
part runs a long shot at a small size and prints RSS after the first frames and
at the end, to show memory stays flat with shot length.

Usage: python benchmarks/pipeline_bench.py [--frames 4] [--long-frames 200] [--json F]
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


def measure(args: tuple[str, int]) -> dict[str, float]:
    """One resolution, in a fresh process so that its peak RSS is its own."""
    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.synth import ShotSpec, write_shot

    res, n = args
    width, height = RESOLUTIONS[res]
    with tempfile.TemporaryDirectory() as folder:
        spec = ShotSpec(width=width, height=height, frames=n + 1, seed=1)
        shot = write_shot(os.path.join(folder, "shot"), spec)
        # Warm-up frame: JIT compilation (numba) and first-touch costs are not per frame.
        warm = _config(shot, os.path.join(folder, "warm", "w.####.exr"))
        warm.frames = str(spec.first_frame)
        run_pipeline(warm)
        floor = _io_floor(shot, n, folder)
        config = _config(shot, os.path.join(folder, "out", "m.####.exr"))
        config.frames = f"{spec.first_frame + 1}-{spec.first_frame + n}"
        config.key_frame = spec.first_frame + 1
        config.mask = shot.mask  # the first-frame mask is close enough to frame 2 to start
        report = run_pipeline(config)
    row = {f"{k}_s": v / n for k, v in report.timings.items()}
    row["total_s"] = report.seconds / n
    row["io_floor_s"] = floor
    row["peak_rss_mb"] = peak_rss_mb()
    return row


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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=4, help="frames timed per resolution")
    parser.add_argument("--long-frames", type=int, default=200, help="frames of the RSS run")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    print(f"Default pipeline on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    rows = {}
    ctx = mp.get_context("spawn")
    for res in RESOLUTIONS:
        with ctx.Pool(1) as pool:
            row = pool.map(measure, [(res, args.frames)])[0]
        rows[res] = row
        stages = "  ".join(f"{s} {row.get(s + '_s', 0.0):.2f}" for s in STAGES)
        print(
            f"{res:<7} s/frame: {stages}  | total {row['total_s']:.2f}  I/O floor "
            f"{row['io_floor_s']:.2f}  ratio {row['total_s'] / row['io_floor_s']:.1f}x "
            f"(target <= 15x at 1080p)  peak RSS {row['peak_rss_mb']:.0f} MB",
            flush=True,
        )
    scale = rows["4K UHD"]["total_s"] / rows["1080p"]["total_s"]
    print(f"4K UHD / 1080p total time per frame: {scale:.2f}x (target <= 3x; pixels 4x)")
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
