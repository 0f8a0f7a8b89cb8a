"""Propagation backends: seconds per frame and peak RSS over a short and a long shot.

Backends: ``sam2`` (SAM 2.1 hiera-tiny, random weights, CPU; two objects, each
its own layer) and ``flow`` (DIS optical flow, weight-free; the union of the
objects as one mask). Input is 1080p: a pool of synthetic frames
(``vfxmatte.synth``, display-referred) rendered once by the parent and played
back and forth, read from disk on every access like a decoded plate. The
keyframe is in the middle of the shot, so both forward and backward passes run.

Each configuration runs in a fresh process, so that its peak RSS is its own.
The figure that matters is the peak RSS over the long shot against the short
one: memory must not grow with the shot (bound: +10%). The baseline in the same
run is sam2 keeping every frame's stored outputs, as the ``sam2`` package does
(``drop_old_outputs=False``).

SAM 2 runs at ``--sam2-size`` (default 256, to keep the long shot within a few
minutes on a CPU); seconds per frame at the official 1024 are measured over a
few frames (``--speed-frames``). ``--sam2-size 1024`` runs the full measurement
at 1024 (about 5-8 s per frame on a 2-core CPU: 300 frames take most of an hour).

Quality: the flow backend's IoU of the propagated mask with ``alpha > 0.5`` on
each of 48 frames of the synthetic shot at 960x540, keyframe on frame 0. No
sam2 quality is given: its random weights make its masks meaningless.

Usage: python benchmarks/propagate_bench.py [--lengths 50,300] [--sam2-size 256]
       [--speed-frames 6] [--threads N] [--json results.json]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WIDTH, HEIGHT = 1920, 1080
POOL = 12  # distinct rendered frames, played back and forth
OBJECTS = (1, 2)


def pool_index(position: int) -> int:
    """Frame of the pool shown at ``position``: 0, 1, ..., POOL-1, POOL-2, ..., 1, 0, 1, ..."""
    j = position % (2 * POOL - 2)
    return j if j < POOL else 2 * POOL - 2 - j


def render_pool(folder: Path) -> None:
    """Display-referred frames (float16 .npy, widened on read) and per-object masks."""
    from vfxmatte.io.colour import to_display
    from vfxmatte.synth import ShotSpec, render_frame

    spec = ShotSpec(width=WIDTH, height=HEIGHT, frames=POOL, objects=2, seed=1)
    masks = np.zeros((POOL, len(OBJECTS), HEIGHT, WIDTH), bool)
    for i in range(POOL):
        frame = render_frame(spec, i)
        np.save(folder / f"frame{i}.npy", to_display(frame.image).astype(np.float16))
        for j, k in enumerate(OBJECTS):
            masks[i, j] = frame.layers[..., k] > 0.5
    np.save(folder / "masks.npy", masks)


def peak_rss_mb() -> float:
    """Peak RSS of this process since it started (``VmHWM``: unlike ``ru_maxrss``, not
    inherited from the parent it was forked from)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 2**20 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def measure(backend: str, length: int, options: dict, folder: str, threads: int) -> dict:
    """Propagate one configuration over ``length`` frames; runs in a child process."""
    import psutil
    import torch

    if threads:
        torch.set_num_threads(threads)
    root = Path(folder)

    def get_frame(position: int) -> np.ndarray:
        return np.load(root / f"frame{pool_index(position)}.npy").astype(np.float32)

    key = length // 2
    key_masks = np.load(root / "masks.npy", mmap_mode="r")[pool_index(key)]
    frames = list(range(length))
    process = psutil.Process()
    rss: list[float] = []
    if backend == "sam2":
        from vfxmatte.propagate.sam2 import Sam2PropagateConfig, Sam2Propagator

        prop = Sam2Propagator(Sam2PropagateConfig(random_weights=True, device="cpu", **options))
        keys = {key: {k: key_masks[j].astype(np.float32) for j, k in enumerate(OBJECTS)}}
        stream = prop.propagate(get_frame, frames, keys)
    else:
        from vfxmatte.propagate.flow import FlowPropagateConfig, propagate_sequence

        prop = None
        union = key_masks.any(axis=0).astype(np.float32)
        stream = propagate_sequence(get_frame, frames, {key: union}, FlowPropagateConfig())
    start = time.perf_counter()
    for n, _ in enumerate(stream, 1):
        if n in (10, length // 2, length):
            rss.append(process.memory_info().rss / 2**20)
    seconds = time.perf_counter() - start
    out = {
        "s_per_frame": seconds / length,
        "peak_rss_mb": peak_rss_mb(),
        "rss_mb_at_10_half_end": rss,
    }
    if prop is not None:
        out["stored_outputs_peak"] = prop.peak_stored_outputs
        out["stored_mb_peak"] = prop.peak_stored_bytes / 2**20
    return out


def flow_quality(frames: int) -> list[float]:
    """IoU with ``alpha > 0.5`` per frame, flow backend from frame 0, 960x540 synthetic shot."""
    from vfxmatte.io.colour import to_display
    from vfxmatte.propagate.flow import propagate_sequence
    from vfxmatte.synth import ShotSpec, render_frame

    spec = ShotSpec(width=960, height=540, frames=frames, objects=2, seed=1)
    rendered = [render_frame(spec, i) for i in range(frames)]
    key = {0: (rendered[0].alpha > 0.5).astype(np.float32)}
    ious = []
    for i, mask in propagate_sequence(lambda i: to_display(rendered[i].image), range(frames), key):
        truth, pred = rendered[i].alpha > 0.5, mask >= 0.5
        union = np.logical_or(truth, pred).sum()
        ious.append(1.0 if union == 0 else float(np.logical_and(truth, pred).sum() / union))
    return ious


def run_config(
    name: str, backend: str, length: int, options: dict, folder: str, threads: int
) -> dict[str, object]:
    """Run :func:`measure` in a fresh interpreter, so that its peak RSS is its own."""
    job = json.dumps([backend, length, options, folder, threads])
    proc = subprocess.run(
        [sys.executable, __file__, "--child", job], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        raise SystemExit(f"{name} over {length} frames failed (exit {proc.returncode}).")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    row = {"config": name, "backend": backend, "frames": length, **options, **result}
    rss = ", ".join(f"{v:.0f}" for v in result["rss_mb_at_10_half_end"])
    stored = ""
    if "stored_outputs_peak" in result:
        stored = (
            f"  memory bank peak {result['stored_outputs_peak']} outputs "
            f"{result['stored_mb_peak']:.1f} MB"
        )
    print(
        f"{name:<34} {length:4d} frames  {result['s_per_frame']:7.3f} s/frame  "
        f"peak RSS {result['peak_rss_mb']:6.0f} MB  (RSS at 10/half/end: {rss} MB){stored}",
        flush=True,
    )
    return row


def check_bound(rows: list[dict], name: str, short: int, long: int) -> str:
    by_len = {r["frames"]: r["peak_rss_mb"] for r in rows if r["config"] == name}
    if short not in by_len or long not in by_len:
        return ""
    growth = by_len[long] / by_len[short] - 1
    verdict = "OK" if growth <= 0.10 else "EXCEEDED"
    return f"{name}: peak RSS {long} vs {short} frames {growth * 100:+.1f}% (bound +10%): {verdict}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lengths", default="50,300", help="shot lengths, comma-separated")
    parser.add_argument("--sam2-size", type=int, default=256, help="SAM 2 image_size for RSS")
    parser.add_argument("--speed-frames", type=int, default=6, help="frames at 1024 (0: skip)")
    parser.add_argument("--no-baseline", action="store_true", help="skip keep-all sam2 run")
    parser.add_argument("--quality-frames", type=int, default=48)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--render", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(*json.loads(args.child))))
        return 0
    if args.render:
        render_pool(Path(args.render))
        return 0
    lengths = sorted(int(v) for v in args.lengths.split(","))
    threads = args.threads
    import torch

    print(
        f"Propagation at {WIDTH}x{HEIGHT} on {os.cpu_count()} cores, torch "
        f"{torch.__version__}, {threads or torch.get_num_threads()} thread(s); keyframe mid-shot, "
        f"{len(OBJECTS)} objects; frames: {POOL} rendered, played back and forth"
    )
    rows: list[dict[str, object]] = []
    size = args.sam2_size
    with tempfile.TemporaryDirectory() as folder:
        # In a child too: the parent stays small, and so do the children it starts.
        subprocess.run([sys.executable, __file__, "--render", folder], check=True)
        for length in lengths:
            rows.append(run_config("flow (DIS medium)", "flow", length, {}, folder, threads))
        sam2_name = f"sam2 tiny random @{size}"
        for length in lengths:
            opts = {"image_size": size}
            rows.append(run_config(sam2_name, "sam2", length, opts, folder, threads))
        if not args.no_baseline:
            opts = {"image_size": size, "drop_old_outputs": False}
            name = f"sam2 @{size} keep all (sam2 package)"
            rows.append(run_config(name, "sam2", lengths[-1], opts, folder, threads))
        if args.speed_frames and size != 1024:
            opts = {"image_size": 1024}
            name = "sam2 tiny random @1024 (speed)"
            rows.append(run_config(name, "sam2", args.speed_frames, opts, folder, threads))
    print()
    for name in ("flow (DIS medium)", sam2_name):
        line = check_bound(rows, name, lengths[0], lengths[-1])
        if line:
            print(line)
    kept = [r for r in rows if r.get("drop_old_outputs") is False]
    if kept:
        per = kept[0]["stored_mb_peak"] / max(1, kept[0]["stored_outputs_peak"])
        at_1024 = per * (1024 / size) ** 2
        print(
            f"memory bank without dropping: {kept[0]['stored_mb_peak']:.1f} MB over "
            f"{kept[0]['frames']} frames x {len(OBJECTS)} objects at {size} px; the stored "
            f"outputs scale with image_size^2: about {at_1024:.2f} MB per object-frame at "
            f"1024, i.e. {at_1024 * kept[0]['stored_outputs_peak']:.0f} MB for this shot"
        )
    if args.quality_frames:
        ious = flow_quality(args.quality_frames)
        print(
            f"\nflow quality, 960x540 synthetic shot, keyframe 0, {len(ious)} frames: "
            f"IoU(mask, alpha>0.5) mean {np.mean(ious):.3f}, min {np.min(ious):.3f}, "
            f"last {ious[-1]:.3f}"
        )
        for start in range(0, len(ious), 12):
            chunk = " ".join(f"{v:.3f}" for v in ious[start : start + 12])
            print(f"  frames {start:2d}-{min(start + 11, len(ious) - 1):2d}: {chunk}")
        rows.append({"config": "flow quality 960x540", "iou_per_frame": ious})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
