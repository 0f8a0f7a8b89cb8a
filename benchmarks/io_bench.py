"""Frame I/O floor: read and write time per frame, MB/s and peak RSS.

MB/s counts file bytes; Mpx/s counts pixels, which compares formats fairly.

EXR (half; zip and dwaa) and 16-bit PNG at 1080p and 4K UHD, on frames of the
synthetic shot (a textured scene-linear plate, so compression sees realistic
content). Each configuration runs in a fresh process so that its peak RSS is its
own. Later stage benchmarks compare against the EXR read+write time measured here.

Usage: python benchmarks/io_bench.py [--frames N] [--json results.json]
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

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402

RESOLUTIONS = {"1080p": (1920, 1080), "4K UHD": (3840, 2160)}
FORMATS = {
    "EXR half zip": (".exr", "half", "zip"),
    "EXR half dwaa": (".exr", "half", "dwaa"),
    "PNG 16-bit": (".png", "uint16", "zip"),
}


def plate_frame(width: int, height: int, seed: int = 0) -> np.ndarray:
    """An ``H x W x 3`` float32 scene-linear plate frame of the synthetic shot."""
    from vfxmatte.synth import ShotSpec, render_frame

    spec = ShotSpec(width=width, height=height, frames=1, seed=seed, motion_blur_samples=1)
    return render_frame(spec, 0).image


def measure(args: tuple[str, str, int, str]) -> dict[str, float]:
    """Write then read ``n`` frames of one configuration; runs in a child process.

    The frame is rendered by the parent and loaded here, so the child's peak RSS
    is that of one frame plus the I/O, not of the renderer.
    """
    from vfxmatte.io.image import read_image, write_image

    fmt, res, n, folder = args
    ext, dtype, compression = FORMATS[fmt]
    width, height = RESOLUTIONS[res]
    frame = np.load(Path(folder) / f"{res}.npy")
    if ext == ".png":
        frame = np.clip(frame, 0.0, 1.0)  # display-referred preview
    paths = [Path(folder) / f"bench.{i:04d}{ext}" for i in range(n)]
    write_image(paths[0], frame, ["R", "G", "B"], dtype=dtype, compression=compression)
    t0 = time.perf_counter()
    for path in paths:
        write_image(path, frame, ["R", "G", "B"], dtype=dtype, compression=compression)
    t_write = (time.perf_counter() - t0) / n
    read_image(paths[0])  # warm the cache the same way for every format
    t0 = time.perf_counter()
    for path in paths:
        read_image(path)
    t_read = (time.perf_counter() - t0) / n
    size_mb = sum(p.stat().st_size for p in paths) / n / 1e6
    for path in paths:
        path.unlink()
    return {
        "read_ms": t_read * 1e3,
        "write_ms": t_write * 1e3,
        "file_mb": size_mb,
        "read_mb_s": size_mb / t_read,
        "write_mb_s": size_mb / t_write,
        "read_mpx_s": width * height / t_read / 1e6,
        "write_mpx_s": width * height / t_write / 1e6,
        "peak_rss_mb": peak_rss_mb(),
    }


def run(frames_1080: int, frames_4k: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    ctx = mp.get_context("spawn")
    with tempfile.TemporaryDirectory() as folder:
        for res, (width, height) in RESOLUTIONS.items():
            np.save(Path(folder) / f"{res}.npy", plate_frame(width, height))
        for res in RESOLUTIONS:
            n = frames_1080 if res == "1080p" else frames_4k
            for fmt in FORMATS:
                with ctx.Pool(1) as pool:
                    result = pool.map(measure, [(fmt, res, n, folder)])[0]
                rows.append({"resolution": res, "format": fmt, "frames": n, **result})
                print_row(rows[-1])
    return rows


def print_row(row: dict[str, object]) -> None:
    print(
        f"{row['resolution']:<7} {row['format']:<14} read {row['read_ms']:7.1f} ms "
        f"({row['read_mb_s']:5.1f} MB/s, {row['read_mpx_s']:5.1f} Mpx/s)  write "
        f"{row['write_ms']:7.1f} ms ({row['write_mb_s']:5.1f} MB/s, {row['write_mpx_s']:5.1f} "
        f"Mpx/s)  file {row['file_mb']:5.1f} MB  "
        f"peak RSS {row['peak_rss_mb']:6.0f} MB",
        flush=True,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=6, help="frames per 1080p configuration")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    print(f"I/O floor on {os.cpu_count()} cores, Python {sys.version.split()[0]}")
    rows = run(args.frames, max(2, args.frames // 2))
    by_key = {(r["resolution"], r["format"]): r for r in rows}
    for res in RESOLUTIONS:
        exr = by_key[(res, "EXR half zip")]
        png = by_key[(res, "PNG 16-bit")]
        print(
            f"{res}: EXR half zip read+write {exr['read_ms'] + exr['write_ms']:.0f} ms/frame "
            f"(the floor later stages compare with); PNG 16-bit "
            f"{png['read_ms'] + png['write_ms']:.0f} ms/frame"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
