"""``vfxmatte propagate PLATE --mask M [--mask M2 ...] -o GUIDE``: guidance files only.

Propagation is sequential; matting is not. Write the guidance once here, then
matte frames anywhere (farm chunks, Dask) with ``--propagate.backend given
--mask GUIDE``. Several ``--mask`` give several objects, each its own layer
(``obj1.A``, ``obj2.A`` ...; a single object is written as ``A``).
"""

from __future__ import annotations

import argparse
from typing import Any

from vfxmatte.cli.params import add_config_arguments, config_from_args


def register(sub: Any) -> None:
    from vfxmatte.engine.config import InputConfig, PropagateStageConfig

    parser = sub.add_parser(
        "propagate",
        help="propagate keyframe masks through a shot and write guidance masks",
        description=__doc__.splitlines()[0],
    )
    parser.add_argument("plate", help="plate: shot.####.exr, an image or a video file")
    parser.add_argument(
        "-m",
        "--mask",
        action="append",
        required=True,
        help="keyframe mask of one object (repeat for several objects)",
    )
    parser.add_argument("-o", "--output", required=True, help="guidance pattern, e.g. g.####.exr")
    parser.add_argument("--frames", help="frame range (default: all)")
    parser.add_argument("--key-frame", type=int, help="frame number of --mask (default: first)")
    parser.add_argument(
        "--keyframes",
        default="",
        help="later keyframes: 'FRAME=PATH[,PATH2...];FRAME=...' (one path per object)",
    )
    add_config_arguments(parser, PropagateStageConfig, "propagate.")
    add_config_arguments(parser, InputConfig, "input.")
    parser.set_defaults(run=run)


def _keyframes(args: argparse.Namespace, first: int) -> dict[int, list[str]]:
    from vfxmatte.errors import ConfigError

    keys = {args.key_frame if args.key_frame is not None else first: list(args.mask)}
    for item in filter(None, (s.strip() for s in args.keyframes.split(";"))):
        number, sep, paths = item.partition("=")
        if not sep or not number.strip().lstrip("-").isdigit():
            raise ConfigError(f"--keyframes expects 'FRAME=PATH[,PATH2];...', got {item!r}.")
        keys[int(number)] = [p.strip() for p in paths.split(",")]
        if not all(keys[int(number)]):
            raise ConfigError(
                f"The --keyframes entry {item!r} has an empty mask path; write "
                "FRAME=PATH[,PATH2] with one path per object."
            )
    return keys


def run(args: argparse.Namespace) -> int:
    from vfxmatte.engine.config import InputConfig, PipelineConfig, PropagateStageConfig
    from vfxmatte.engine.guidance import write_guidance
    from vfxmatte.io.plate import open_plate

    config = PipelineConfig(plate=args.plate, frames=args.frames or "")
    config.propagate = config_from_args(PropagateStageConfig, args, "propagate.")
    config.input = config_from_args(InputConfig, args, "input.")
    plate = open_plate(config.plate, config.frames or None, first_frame=config.input.first_frame)
    written = write_guidance(config, args.output, _keyframes(args, plate.frames[0]))
    print(f"vfxmatte propagate: wrote guidance for {len(written)} frame(s) to {args.output}")
    return 0
