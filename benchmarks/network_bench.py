"""The learned path against the classical default: seconds per frame on the same frames.

Renders a few synthetic 1080p frames (scene-linear, with their first-frame mask as
guidance), then runs each configuration's per-frame stages (:class:`Stages`,
what a worker runs) on them and prints seconds per frame and per stage:

* ``classical``: the weight-free default (closed-form matte + multi-level colour);
* ``small`` / ``mgm`` at working resolution 512 and 1024: the matting network with
  confidence-guided decoding (T steps) and the foreground colour network -- the
  shipped starter weights (``weights/``) where they exist, else random weights of
  the architecture (the network's time does not depend on the values; the colour
  network's does, through the size of the uncertain band it runs on).

Each configuration runs in its own child process, so the peak RSS is its own.

Usage: python benchmarks/network_bench.py [--frames 2] [--size 1920x1080] [--steps 3]
       [--sizes small,mgm] [--working 512,1024] [--json F]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing as mp
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _rss import peak_rss_mb  # noqa: E402

SHIPPED = Path(__file__).resolve().parent.parent / "weights"


def _weights(folder: str, size: str) -> tuple[str, str]:
    """The shipped starter weights where they exist (a realistic uncertain band for the
    colour network), else random weights of the architecture."""
    import torch

    from vfxmatte.decontaminate.colour_net import ColourNet
    from vfxmatte.matte.network.arch import PRNMattingNet
    from vfxmatte.weights import save_checkpoint

    torch.manual_seed(0)
    matte = PRNMattingNet(size)
    colour = ColourNet()
    m = os.path.join(folder, f"{size}.safetensors")
    c = os.path.join(folder, "colour.safetensors")
    if (SHIPPED / f"matte_{size}.safetensors").exists():
        m = str(SHIPPED / f"matte_{size}.safetensors")
    else:
        save_checkpoint(m, "matte", {"arch": dataclasses.asdict(matte.arch)}, matte.state_dict())
    if (SHIPPED / "colour.safetensors").exists():
        c = str(SHIPPED / "colour.safetensors")
    else:
        save_checkpoint(c, "colour", {"arch": dataclasses.asdict(colour.arch)}, colour.state_dict())
    return m, c


def measure(job: dict) -> dict:
    """One configuration over the frames, in a fresh process."""
    import numpy as np

    from vfxmatte.engine.config import PipelineConfig
    from vfxmatte.engine.stages import ColourContext, Stages
    from vfxmatte.io.mask import read_mask
    from vfxmatte.io.plate import open_plate

    config = PipelineConfig(plate=job["plate"], mask=job["mask"])
    if job["name"] != "classical":
        matte_w, colour_w = _weights(job["folder"], job["size"])
        config.matte.backend = "network"
        config.matte.network.weights = matte_w
        config.matte.network.working_size = job["working"]
        config.matte.network.iterations = job["steps"]
        config.decontaminate.backend = "network"
        config.decontaminate.network.weights = colour_w
    plate = open_plate(job["plate"])
    frames = plate.frames[: job["frames"]]
    first = plate.read(frames[0])
    colour = ColourContext.for_plate(config, first)
    stages = Stages(config, colour)
    guidance = read_mask(job["mask"])
    loaded = [plate.read(n) for n in frames]
    displays = [colour.display(f.pixels[..., :3]) for f in loaded]
    stages.process(loaded[0], guidance, displays[0])  # warm-up: first-call costs
    stages.timer.seconds.clear()
    start = time.perf_counter()
    for frame, display in zip(loaded, displays, strict=True):
        result = stages.process(frame, guidance, display)
    total = (time.perf_counter() - start) / len(loaded)
    per_stage = {k: v / len(loaded) for k, v in stages.timer.seconds.items()}
    return {
        "name": job["name"],
        "s_per_frame": total,
        "stages": per_stage,
        "peak_rss_mb": peak_rss_mb(),
        "alpha_mean": float(np.mean(result.alpha)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2)
    parser.add_argument("--size", default="1920x1080")
    parser.add_argument("--steps", type=int, default=3, help="decoding steps T")
    parser.add_argument("--sizes", default="small,mgm")
    parser.add_argument("--working", default="512,1024")
    parser.add_argument("--json", default="")
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.split("x"))

    from vfxmatte.synth import ShotSpec, write_shot

    with tempfile.TemporaryDirectory() as folder:
        shot = write_shot(folder, ShotSpec(width=width, height=height, frames=args.frames, seed=2))
        base = {"plate": shot.plate, "mask": shot.mask, "frames": args.frames, "folder": folder}
        jobs = [{**base, "name": "classical"}]
        for size in args.sizes.split(","):
            for working in (int(w) for w in args.working.split(",")):
                jobs.append({**base, "name": f"{size}@{working}", "size": size,
                             "working": working, "steps": args.steps})  # fmt: skip
        results = []
        ctx = mp.get_context("spawn")
        for job in jobs:
            with ctx.Pool(1) as pool:
                results.append(pool.apply(measure, (job,)))
            r = results[-1]
            print(f"  ran {r['name']}: {r['s_per_frame']:.2f} s/frame", flush=True)
    base_time = results[0]["s_per_frame"]
    print(f"\n{width}x{height}, {args.frames} frames, decoding steps T={args.steps}, "
          f"torch threads {os.cpu_count()} cores")  # fmt: skip
    print(f"{'path':<14}{'s/frame':>9}{'vs classical':>14}{'matte':>8}{'decont.':>9}{'RSS MB':>8}")
    for r in results:
        st = r["stages"]
        print(f"{r['name']:<14}{r['s_per_frame']:>9.2f}{r['s_per_frame'] / base_time:>13.2f}x"
              f"{st.get('matte', 0):>8.2f}{st.get('decontaminate', 0):>9.2f}"
              f"{r['peak_rss_mb']:>8.0f}")  # fmt: skip
    if args.json:
        Path(args.json).write_text(json.dumps({"size": args.size, "results": results}, indent=2))


if __name__ == "__main__":
    main()
