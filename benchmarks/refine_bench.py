"""Sparse full-resolution refinement against the dense full-resolution baseline.

For 1080p and 4K UHD it renders a frame of the synthetic shot (a hairy object
with a translucent veil over a textured background), makes the coarse alpha the
matte stage would give (ground truth area-downsampled to a 1024-wide working
resolution) and its confidence (``1 -`` the working-resolution mean of
``|upsampled coarse - ground truth|``), then runs the *same* refinement network
(random weights, seeded: timing only) four ways:

* ``dense``: the plain dense full-resolution forward on every pixel (2 threads),
  the baseline;
* ``torch``: :class:`vfxmatte.refine.sparse.SparseRefiner` with the gather + GEMM
  sparse convolution (2 threads), the default;
* ``torch-1t``: the same with 1 thread. On a shared CPU every parallel region of
  a 2-thread run can wait a scheduler slice for its second thread (small
  element-wise ops then cost ~10 ms instead of ~0.3 ms), so this is the figure
  that shows how the work itself scales;
* ``spconv``: the same refiner with ``impl=spconv`` (1 thread: the CPU wheel is
  only correct single-threaded).

Each variant runs in a fresh process (spawn) so that its peak memory is its own.
Peak memory is the process's ``VmHWM`` (high-water mark of resident memory, read
from ``/proc/self/status``); "+MB" is that peak minus the resident memory just
before the first refinement call (torch imported, network built, the frame's
inputs loaded), i.e. what the refinement itself needed. The frame's inputs are
written to disk by the parent and loaded by each child, so rendering costs are
not counted. Times are the best of ``--repeats`` calls after one warm-up call
(other processes share the CPU; the best call is the least disturbed one, the
median is saved too), each call being the whole per-frame work (input checks,
upsampling, selection, network, scatter). The least process CPU time of those
calls is printed too, a figure that contention with other processes disturbs
less (but that counts a waiting OpenMP thread's spinning). The sparse torch and
spconv outputs are compared.

Usage: python benchmarks/refine_bench.py [--repeats 3] [--tau 0.02] [--width 32]
       [--blocks 3] [--json F]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402

RESOLUTIONS = {"1080p": (1920, 1080), "4K UHD": (3840, 2160)}
WORKING = 1024  # long side of the matte stage's working resolution
# name -> (implementation, torch threads)
VARIANTS = {
    "dense": ("dense", 2),
    "torch": ("torch", 2),
    "torch-1t": ("torch", 1),
    "spconv": ("spconv", 1),
}


def _rss_mb() -> float:
    with open("/proc/self/status", encoding="ascii") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def render_inputs(width: int, height: int, path: str) -> None:
    """Display image, working-resolution alpha and confidence of a synthetic frame -> .npz."""
    import cv2
    import numpy as np

    from vfxmatte.io.colour import linear_to_srgb
    from vfxmatte.synth import ShotSpec, render_frame

    frame = render_frame(ShotSpec(width=width, height=height, frames=2, seed=1, supersample=2), 1)
    image = np.clip(linear_to_srgb(frame.image), 0.0, 1.0).astype(np.float32)
    size = (WORKING, round(WORKING * height / width))
    alpha = cv2.resize(frame.alpha, size, interpolation=cv2.INTER_AREA)
    coarse = cv2.resize(alpha, (width, height), interpolation=cv2.INTER_LINEAR)
    error = cv2.resize(np.abs(coarse - frame.alpha), size, interpolation=cv2.INTER_AREA)
    np.savez(path, image=image, alpha=alpha, confidence=1.0 - error)


def _network(arch: dict[str, int]) -> Any:
    import torch

    from vfxmatte.refine.sparse_net import SparseRefineArch, SparseRefineNet

    torch.manual_seed(0)
    return SparseRefineNet(SparseRefineArch(**arch)).eval()


def _dense_refiner(net: Any, tau: float) -> Any:
    """The dense baseline: the same network on every full-resolution pixel."""
    import torch

    from vfxmatte.refine.base import check_refine_inputs, upsample
    from vfxmatte.refine.sparse_net import dense_inputs

    def refine(image: Any, alpha: Any, confidence: Any) -> Any:
        image, alpha, confidence = check_refine_inputs(image, alpha, confidence)
        height, width = image.shape[:2]
        with torch.no_grad():
            coarse = upsample(torch.from_numpy(alpha), height, width)
            error = 1.0 - upsample(torch.from_numpy(confidence), height, width)
            full = net.forward_dense(dense_inputs(torch.from_numpy(image), coarse, error))[0, 0]
            return torch.where(error > tau, full, coarse).numpy()

    return refine


def measure(args: tuple[str, str, str, dict[str, int], float, int]) -> dict[str, Any]:
    """One variant on one frame, in a fresh process."""
    import numpy as np
    import torch

    from vfxmatte.refine.sparse import SparseRefineConfig, SparseRefiner

    variant, inputs_path, output_path, arch, tau, repeats = args
    impl, threads = VARIANTS[variant]
    torch.set_num_threads(threads)
    data = np.load(inputs_path)
    image, alpha, confidence = data["image"], data["alpha"], data["confidence"]
    net = _network(arch)
    if impl == "dense":
        refine = _dense_refiner(net, tau)
    else:
        config = SparseRefineConfig(tau=tau, impl=impl, device="cpu")
        refine = SparseRefiner(config, network=net)
    before = _rss_mb()
    out = refine(image, alpha, confidence)  # warm-up
    times, cpu = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = refine(image, alpha, confidence)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    np.save(output_path, out)
    row: dict[str, Any] = {
        "threads": threads,
        "time_s": min(times),
        "median_s": statistics.median(times),
        "cpu_s": min(cpu),
        "times_s": times,
        "peak_rss_mb": peak_rss_mb(),
        "rss_before_mb": before,
    }
    row["peak_above_inputs_mb"] = row["peak_rss_mb"] - before
    if impl != "dense":
        row["active_pixels"] = refine.last_stats.active
        row["active_fraction"] = refine.last_stats.active_fraction
    return row


def run_resolution(
    name: str, folder: str, arch: dict[str, int], tau: float, repeats: int
) -> dict[str, Any]:
    import numpy as np

    width, height = RESOLUTIONS[name]
    inputs = os.path.join(folder, f"inputs_{width}.npz")
    render_inputs(width, height, inputs)
    ctx = mp.get_context("spawn")
    rows: dict[str, Any] = {}
    for variant in VARIANTS:
        out = os.path.join(folder, f"{variant}_{width}.npy")
        with ctx.Pool(1) as pool:
            rows[variant] = pool.map(measure, [(variant, inputs, out, arch, tau, repeats)])[0]
    torch_out = np.load(os.path.join(folder, f"torch_{width}.npy"))
    spconv_out = np.load(os.path.join(folder, f"spconv_{width}.npy"))
    rows["torch_vs_spconv_max_abs"] = float(np.abs(torch_out - spconv_out).max())
    return rows


def _print(name: str, rows: dict[str, Any]) -> None:
    dense = rows["dense"]
    active = rows["torch"]
    print(
        f"{name}: active pixels {active['active_pixels']:,} "
        f"({100 * active['active_fraction']:.2f}% of the frame); "
        f"torch vs spconv max |diff| {rows['torch_vs_spconv_max_abs']:.2e}"
    )
    for variant in VARIANTS:
        row = rows[variant]
        line = (
            f"  {variant:<8} ({row['threads']} thr)  {row['time_s'] * 1000:8.0f} ms "
            f"(median {row['median_s'] * 1000:6.0f}, CPU {row['cpu_s'] * 1000:6.0f})  "
            f"peak RSS {row['peak_rss_mb']:6.0f} MB (+{row['peak_above_inputs_mb']:5.0f} MB)"
        )
        if variant != "dense":
            line += (
                f"  | vs dense: {dense['time_s'] / row['time_s']:5.1f}x faster, "
                f"{dense['peak_above_inputs_mb'] / max(row['peak_above_inputs_mb'], 1.0):5.1f}x "
                f"less memory (+MB), {dense['peak_rss_mb'] / row['peak_rss_mb']:4.1f}x (peak RSS)"
            )
        print(line, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per variant")
    parser.add_argument("--tau", type=float, default=0.02, help="error threshold")
    parser.add_argument("--width", type=int, default=32, help="network width")
    parser.add_argument("--blocks", type=int, default=3, help="residual blocks")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    arch = {"width": args.width, "blocks": args.blocks, "feature_channels": 0}
    print(
        f"Sparse refinement vs dense, {os.cpu_count()} cores, network width {args.width}, "
        f"{args.blocks} blocks, tau {args.tau}, working resolution {WORKING} px wide"
    )
    results: dict[str, Any] = {"arch": arch, "tau": args.tau, "resolutions": {}}
    with tempfile.TemporaryDirectory() as folder:
        for name in RESOLUTIONS:
            rows = run_resolution(name, folder, arch, args.tau, args.repeats)
            results["resolutions"][name] = rows
            _print(name, rows)
    low, high = results["resolutions"]["1080p"], results["resolutions"]["4K UHD"]
    scale = {v: high[v]["time_s"] / low[v]["time_s"] for v in VARIANTS}
    results["4k_over_1080p_time"] = scale
    cpu_scale = {v: high[v]["cpu_s"] / low[v]["cpu_s"] for v in VARIANTS}
    results["4k_over_1080p_cpu_time"] = cpu_scale
    print(
        "4K UHD / 1080p time: "
        + ", ".join(f"{v} {s:.2f}x" for v, s in scale.items())
        + " (target for torch <= 2.5x; pixels 4x, active pixels "
        f"{high['torch']['active_pixels'] / max(low['torch']['active_pixels'], 1):.2f}x)"
    )
    print("4K UHD / 1080p CPU time: " + ", ".join(f"{v} {s:.2f}x" for v, s in cpu_scale.items()))
    speed = high["dense"]["time_s"] / high["torch"]["time_s"]
    memory = high["dense"]["peak_above_inputs_mb"] / max(high["torch"]["peak_above_inputs_mb"], 1)
    print(
        f"4K UHD targets, sparse torch vs dense: {speed:.1f}x faster (target >= 8x), "
        f"{memory:.1f}x less peak memory above the inputs (target >= 4x)"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
