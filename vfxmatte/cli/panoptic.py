"""``vfxmatte panoptic PLATE --labels LABELS -o OUT``: a soft layer per segment."""

from __future__ import annotations

import argparse
from typing import Any

from vfxmatte.cli.params import add_config_arguments, config_from_args


def register(sub: Any) -> None:
    from vfxmatte.panoptic.matte import PanopticConfig

    parser = sub.add_parser(
        "panoptic",
        help="soft layers for every segment of a label map, with Cryptomatte",
        description="Matte every segment of a panoptic label map; write one EXR per frame "
        "with <segment>.A layers that sum to 1, Cryptomatte channels and a preview PNG.",
    )
    parser.add_argument("plate", help="plate image or sequence pattern")
    parser.add_argument("--labels", required=True,
                        help="label map (PNG/EXR integer ids, COCO panoptic PNG) or a pattern")
    parser.add_argument("-o", "--output", required=True, help="output EXR (pattern for shots)")
    parser.add_argument("--segments-info", help="COCO panoptic JSON naming the segments")
    parser.add_argument("--frames", help="frame range (default: all)")
    parser.add_argument("--colourspace", default="auto", help="plate colourspace (default auto)")
    add_config_arguments(parser, PanopticConfig, "panoptic.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfxmatte.panoptic.matte import PanopticConfig
    from vfxmatte.panoptic.run import PanopticJob, run_panoptic

    config = config_from_args(PanopticConfig, args, "panoptic.")
    job = PanopticJob(args.plate, args.labels, args.output, args.frames, args.segments_info,
                      args.colourspace)
    frames = run_panoptic(job, config)
    print(f"vfxmatte panoptic: wrote {len(frames)} frame(s) to {args.output}")
    return 0
