"""``vfxmatte synth OUTDIR``: write a synthetic shot with exact ground truth."""

from __future__ import annotations

import argparse
import time
from typing import Any

from vfxmatte.cli.params import add_config_arguments, config_from_args


def register(sub: Any) -> None:
    from vfxmatte.synth import ShotSpec

    parser = sub.add_parser(
        "synth",
        help="make a synthetic shot (plate EXRs, ground truth, first-frame mask)",
        description="Render a synthetic shot with exact ground truth: a scene-linear EXR "
        "plate, alpha/foreground/background/layers, and a coarse first-frame mask.",
    )
    parser.add_argument("outdir", help="folder to write the shot into")
    parser.add_argument(
        "--dtype", choices=("half", "float"), default="half", help="EXR pixel type (default: half)"
    )
    add_config_arguments(parser, ShotSpec)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfxmatte.synth import ShotSpec, write_shot

    spec = config_from_args(ShotSpec, args)
    start = time.perf_counter()
    paths = write_shot(args.outdir, spec, dtype=args.dtype)
    elapsed = time.perf_counter() - start
    print(
        f"Wrote a {spec.width}x{spec.height} shot of {spec.frames} frames "
        f"({spec.first_frame}-{spec.first_frame + spec.frames - 1}) in {elapsed:.1f} s:"
    )
    for name, value in vars(paths).items():
        print(f"  {name:<12} {value}")
    return 0
