"""The GPU figures of one run (what ``gpu_bench.sh`` prints), also dry-runnable on CPU.

In one process, on ``--device``:

* **network path**: seconds per frame of the per-frame stages (:class:`Stages`) with
  the matting network (shipped ``small`` weights, working size 1024, T=3) and the
  colour network, at each ``--sizes`` (default 1080p and 4K UHD), fp16 with ``--half``
  (CUDA only), and the peak GPU memory of each size;
* **sparse refinement**: the refinement network (width 32, 3 blocks, random weights)
  on ~2% active pixels of a 1080p grid: ``spconv`` (when importable), the torch
  gather path, and a dense full-resolution forward;
* **SAM 2.1 tiny propagation** (random weights, 1024 input): frames per second over
  ``--sam-frames`` frames of a 1080p synthetic shot.

Published anchors to compare with (not measured here): SAM2Matting 40 fps at 1080p
in 3.6 GB on an A6000 (SAM 2.1 tiny + matting net); MatAnyone2 about 10 fps at 1080p;
RVM 154 fps at 4K on an RTX 3090 (fp16).

``--quick`` shrinks everything (sizes 320x180, 2 frames) to check the script on CPU.
A part that fails is reported with its error and the others still run.

Usage: python benchmarks/gpu_bench.py [--device cuda] [--half] [--sizes 1920x1080,3840x2160]
       [--frames 5] [--sam-frames 16] [--quick] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

SHIPPED = Path(__file__).resolve().parent.parent / "weights"
ANCHORS = {
    "SAM2Matting (A6000, SAM 2.1 tiny + matting net, 1080p)": "40 fps, 3.6 GB",
    "MatAnyone2 (1080p)": "about 10 fps",
    "RVM (RTX 3090, fp16, 4K)": "154 fps",
}


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def _peak_reset(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def _peak_gb(device: str) -> float | None:
    import torch

    if device.startswith("cuda"):
        return torch.cuda.max_memory_allocated() / 2**30
    return None


def _shot(folder: str, width: int, height: int, frames: int) -> Any:
    from vfxmatte.synth import ShotSpec, write_shot

    return write_shot(folder, ShotSpec(width=width, height=height, frames=frames, seed=4))


def network_path(args: argparse.Namespace, folder: str) -> dict[str, Any]:
    """Seconds per frame of matte + colour networks per size; peak GPU memory."""
    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.stages import ColourContext, Stages
    from vfxmatte.io.mask import read_mask
    from vfxmatte.io.plate import open_plate

    out: dict[str, Any] = {}
    for size in args.sizes.split(","):
        width, height = (int(v) for v in size.lower().split("x"))
        shot = _shot(os.path.join(folder, f"net{size}"), width, height, args.frames + 1)
        config = PipelineConfig(plate=shot.plate, mask=shot.mask)
        config.matte.backend = "network"
        config.matte.network.weights = str(SHIPPED / "matte_small.safetensors")
        config.matte.network.device = args.device
        config.matte.network.half = args.half
        config.decontaminate.backend = "network"
        config.decontaminate.network.weights = str(SHIPPED / "colour.safetensors")
        config.decontaminate.network.device = args.device
        plate = open_plate(shot.plate)
        frames = [plate.read(n) for n in plate.frames]
        colour = ColourContext.for_plate(config, frames[0])
        stages = Stages(config, colour)
        guidance = read_mask(shot.mask)
        displays = [colour.display(f.pixels[..., :3]) for f in frames]
        stages.process(frames[0], guidance, displays[0])  # warm-up (kernels, allocator)
        _sync(args.device)
        _peak_reset(args.device)
        stages.timer.seconds.clear()
        start = time.perf_counter()
        for frame, display in zip(frames[1:], displays[1:], strict=True):
            stages.process(frame, guidance, display)
        _sync(args.device)
        n = len(frames) - 1
        out[size] = {
            "s_per_frame": (time.perf_counter() - start) / n,
            "stages_s": {k: v / n for k, v in stages.timer.seconds.items()},
            "peak_gpu_gb": _peak_gb(args.device),
        }
        row = out[size]
        print(
            f"network path {size}: {row['s_per_frame']:.3f} s/frame {row['stages_s']}  "
            f"peak GPU {row['peak_gpu_gb']} GB",
            flush=True,
        )
    return out


def sparse_refine(args: argparse.Namespace) -> dict[str, Any]:
    """spconv vs the torch gather path vs dense, same network, ~2% of a 1080p grid."""
    import torch

    from vfxmatte.refine.sparse_conv import ActiveSet
    from vfxmatte.refine.sparse_net import SparseRefineNet

    height, width = (180, 320) if args.quick else (1080, 1920)
    torch.manual_seed(0)
    net = SparseRefineNet().eval().to(args.device)
    yy, xx = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    ring = (yy - height / 2) ** 2 / (height / 3) ** 2 + (xx - width / 2) ** 2 / (width / 3) ** 2
    mask = (ring - 1.0).abs() < 0.04  # an elliptic band, about 2% of the pixels
    active = ActiveSet.from_mask(mask)
    active = ActiveSet(active.coords.to(args.device), height, width)
    channels = net.arch.in_channels
    rows = torch.rand(len(active), channels, device=args.device)
    dense = torch.rand(1, channels, height, width, device=args.device)
    out: dict[str, Any] = {"active_fraction": len(active) / (height * width)}

    def timed(fn: Any) -> float:
        with torch.inference_mode():
            fn()
            _sync(args.device)
            best = float("inf")
            for _ in range(3):
                start = time.perf_counter()
                fn()
                _sync(args.device)
                best = min(best, time.perf_counter() - start)
        return best

    out["torch_s"] = timed(lambda: net(rows, active, impl="torch"))
    out["dense_s"] = timed(lambda: net.forward_dense(dense))
    try:
        out["spconv_s"] = timed(lambda: net(rows, active, impl="spconv"))
        with torch.inference_mode():
            diff = (net(rows, active, impl="spconv") - net(rows, active, impl="torch")).abs()
        out["spconv_vs_torch_max_abs"] = float(diff.max())
    except Exception as exc:  # noqa: BLE001 - spconv missing or not built for this device
        out["spconv_s"] = None
        out["spconv_error"] = f"{type(exc).__name__}: {exc}"
    print(f"sparse refine {width}x{height}: {out}", flush=True)
    return out


def sam2_fps(args: argparse.Namespace, folder: str) -> dict[str, Any]:
    """SAM 2.1 tiny (random weights) propagation frames per second over a 1080p shot."""
    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.pipeline import run_pipeline

    width, height = (320, 180) if args.quick else (1920, 1080)
    shot = _shot(os.path.join(folder, "sam"), width, height, args.sam_frames)
    config = PipelineConfig(
        plate=shot.plate, mask=shot.mask, output=os.path.join(folder, "sam_out", "m.####.exr")
    )
    config.engine.progress = False
    config.engine.phase = "propagate"
    config.propagate.backend = "sam2"
    sam = config.propagate.sam2
    sam.model, sam.random_weights, sam.device = "tiny", True, args.device
    if args.quick:
        sam.image_size = 256
    if args.half and args.device.startswith("cuda"):
        sam.precision = "bfloat16"
    _peak_reset(args.device)
    start = time.perf_counter()
    report = run_pipeline(config)
    seconds = time.perf_counter() - start
    frames = len(report.written) + len(report.reused)
    out = {
        "frames": frames,
        "fps": frames / seconds,
        "seconds_with_startup": seconds,
        "peak_gpu_gb": _peak_gb(args.device),
    }
    print(f"SAM 2.1 tiny propagation {width}x{height}: {out}", flush=True)
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--half", action="store_true", help="fp16 networks (CUDA only)")
    parser.add_argument("--sizes", default="1920x1080,3840x2160")
    parser.add_argument("--frames", type=int, default=5, help="timed frames per size")
    parser.add_argument("--sam-frames", type=int, default=16)
    parser.add_argument("--quick", action="store_true", help="tiny sizes: check it runs")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args()
    if args.quick:
        args.sizes, args.frames, args.sam_frames = "320x180", 2, 3
    import torch

    info: dict[str, Any] = {
        "device": args.device,
        "half": args.half,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpu": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
        "python": platform.python_version(),
        "quick": args.quick,
    }
    print(f"GPU bench: {info}", flush=True)
    results: dict[str, Any] = {"info": info, "anchors_published": ANCHORS}
    with tempfile.TemporaryDirectory() as folder:
        for name, part in (
            ("network_path", lambda: network_path(args, folder)),
            ("sparse_refine", lambda: sparse_refine(args)),
            ("sam2_tiny", lambda: sam2_fps(args, folder)),
        ):
            try:
                results[name] = part()
            except Exception as exc:  # noqa: BLE001 - one failing part must not hide the others
                traceback.print_exc()
                results[name] = {"error": f"{type(exc).__name__}: {exc}"}
    for anchor, figure in ANCHORS.items():
        print(f"published anchor: {anchor}: {figure}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
        print(f"wrote {args.json}")
    failed = [k for k, v in results.items() if isinstance(v, dict) and "error" in v]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
