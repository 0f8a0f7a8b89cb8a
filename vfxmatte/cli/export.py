"""``vfxmatte export``: the network path as TorchScript (and the Cattery folder for Nuke)."""

from __future__ import annotations

import argparse
from typing import Any

from vfxmatte.errors import ConfigError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="export the matte (+ refine, colour) networks as TorchScript, or a Cattery folder",
        description="Writes one TorchScript module: input 1x4xHxW (scene-linear RGB + guidance "
        "mask), output 1x4xHxW (straight foreground RGB + alpha), preprocessing inside.",
    )
    parser.add_argument("--matte-weights", required=True, help="matting network checkpoint")
    parser.add_argument("--refine-weights", default="", help="sparse refiner checkpoint")
    parser.add_argument(
        "--refine-tau", type=float, default=0.1, help="refine where predicted error > this"
    )
    parser.add_argument("--colour-weights", default="", help="foreground colour checkpoint")
    parser.add_argument("-o", "--output", default="", help="TorchScript file to write (.pt)")
    parser.add_argument(
        "--nuke", default="", metavar="DIR",
        help="write a Cattery folder instead: TorchScript, export.json and CATTERY.md",
    )  # fmt: skip
    parser.add_argument("--working-size", type=int, default=1024, help="long side (default 1024)")
    parser.add_argument(
        "--iterations", type=int, default=0, help="decoding steps T (default 0: one pass)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfxmatte.export.cattery import write_cattery
    from vfxmatte.export.torchscript import build_export, save_torchscript

    if bool(args.output) == bool(args.nuke):
        raise ConfigError("give exactly one of -o/--output FILE.pt or --nuke DIR")
    if not 64 <= args.working_size <= 8192:
        raise ConfigError(f"--working-size must be in [64, 8192], got {args.working_size}")
    if not 0 <= args.iterations <= 50:
        raise ConfigError(f"--iterations must be in [0, 50], got {args.iterations}")
    if not 0.0 <= args.refine_tau <= 1.0:
        raise ConfigError(f"--refine-tau must be in [0, 1], got {args.refine_tau}")
    module = build_export(
        args.matte_weights,
        args.colour_weights,
        args.working_size,
        args.iterations,
        args.refine_weights,
        args.refine_tau,
    )
    if args.nuke:
        sources = {
            "matte": args.matte_weights,
            "refine": args.refine_weights,
            "colour": args.colour_weights,
        }
        path, check = write_cattery(module, args.nuke, sources)
        print(f"wrote {path} (scripted vs eager max diff {check.max_abs_diff:.2g})")
        print(f"next: follow {args.nuke}/CATTERY.md to make the .cat with CatFileCreator")
    else:
        check = save_torchscript(module, args.output)
        print(f"wrote {args.output} (scripted vs eager max diff {check.max_abs_diff:.2g})")
    return 0
