"""``vfxmatte demo [OUTDIR]``: the whole default job on the built-in synthetic shot.

Renders the demo shot (scene-linear EXR plate with exact ground truth), runs
``matte`` on it from the first-frame mask with the default weight-free path, and
prints the quality against the ground truth next to that of the guidance masks
themselves, plus where the outputs and previews are.
"""

from __future__ import annotations

import argparse
import os
from typing import Any

import numpy as np

METRICS = ("SAD", "MSE", "MAD", "Grad", "Conn", "dtSSD")


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "demo",
        help="run the default job on the built-in demo shot and score it",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("outdir", nargs="?", default="vfxmatte_demo", help="output folder")
    parser.add_argument("--width", type=int, default=960)
    parser.add_argument("--height", type=int, default=540)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--objects", type=int, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(run=run)


def demo_config(shot: Any, outdir: str) -> Any:
    """The pipeline config the demo runs: defaults, all outputs, checker previews."""
    from vfxmatte.engine.config import PipelineConfig

    config = PipelineConfig(
        plate=shot.plate,
        mask=shot.mask,
        output=os.path.join(outdir, "matte", "shot.####.exr"),
        guidance_output=os.path.join(outdir, "matte", "guidance", "guidance.####.exr"),
    )
    config.output_options.kinds = "rgba,alpha,fg,confidence"
    config.output_options.preview = "checker"
    return config


def montage(outdir: str, shot: Any, number: int) -> str:
    """plate | ground truth | guidance | vfxmatte alpha | composite, one PNG row."""
    import cv2

    from vfxmatte.io.colour import linear_to_srgb
    from vfxmatte.io.image import read_image

    matte = os.path.join(outdir, "matte")

    def grey(path: str, channel: str) -> np.ndarray:
        a = read_image(path, [channel]).pixels[..., 0]
        return np.repeat(a[..., None], 3, axis=2)

    plate = np.clip(linear_to_srgb(read_image(shot.frame(shot.plate, number), "RGB").pixels), 0, 1)
    tiles = [
        plate,
        grey(shot.frame(shot.alpha, number), "A"),
        grey(os.path.join(matte, "guidance", f"guidance.{number:04d}.exr"), "A"),
        grey(os.path.join(matte, f"shot_alpha.{number:04d}.exr"), "A"),
        cv2.cvtColor(
            cv2.imread(os.path.join(matte, "preview", f"shot.{number:04d}.png")), cv2.COLOR_BGR2RGB
        ).astype(np.float32)
        / 255.0,
    ]
    row = (np.concatenate(tiles, axis=1) * 255 + 0.5).astype(np.uint8)
    path = os.path.join(outdir, f"montage.{number:04d}.png")
    cv2.imwrite(path, cv2.cvtColor(row, cv2.COLOR_RGB2BGR))
    return path


def run(args: argparse.Namespace) -> int:
    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.evaluate import evaluate_sequences
    from vfxmatte.synth import ShotSpec, write_shot
    from vfxmatte.warmup import warm_up_for

    spec = ShotSpec(
        width=args.width,
        height=args.height,
        frames=args.frames,
        objects=args.objects,
        seed=args.seed,
    )
    print(f"Rendering the demo shot ({spec.width}x{spec.height}, {spec.frames} frames) ...")
    shot = write_shot(os.path.join(args.outdir, "shot"), spec)
    config = demo_config(shot, args.outdir)
    stages = (config.propagate.backend, config.matte.backend, config.decontaminate.backend)
    print(f"Matting it from the first-frame mask ({' -> '.join(stages)}) ...")
    warm_up_for(config)  # pymatting's first-run compile, announced
    report = run_pipeline(config)
    print(f"  {report.summary()}")
    ours = evaluate_sequences(config.output, shot.alpha, pred_channel="A").mean()
    guide = evaluate_sequences(config.guidance_output, shot.alpha).mean()
    print("\nQuality against the ground truth (mean over frames; lower is better):")
    print(f"  {'metric':<7} {'guidance mask':>14} {'vfxmatte':>10} {'ratio':>7}")
    for name in METRICS:
        g, o = guide.get(name, float("nan")), ours.get(name, float("nan"))
        print(f"  {name:<7} {g:>14.4f} {o:>10.4f} {o / g if g else float('nan'):>7.2f}")
    middle = spec.first_frame + spec.frames // 2
    print("\nOutputs:")
    for kind, pattern in report.outputs.items():
        print(f"  {kind:<11} {pattern}")
    print(f"  previews    {os.path.join(args.outdir, 'matte', 'preview')}")
    print(
        f"  montage     {montage(args.outdir, shot, middle)}"
        "  (plate | truth | guidance | alpha | composite)"
    )
    return 0 if report.ok else 1
