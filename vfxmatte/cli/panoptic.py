"""``vfxmatte panoptic PLATE (--labels L | --instances DIR) -o OUT``: a soft layer per segment.

Segments come from a label map per frame (``--labels labels.####.png``), a folder
of instance masks (``--instances DIR``), or one keyframe label map carried through
the shot (``--labels KEY.png --key-frame N --propagate flow|snapcut|sam2``).
"""

from __future__ import annotations

import argparse
from typing import Any

from vfxmatte.cli.params import add_config_arguments, config_from_args


def register(sub: Any) -> None:
    from vfxmatte.matte.classical import ClassicalMatteConfig
    from vfxmatte.panoptic.matte import PanopticConfig
    from vfxmatte.propagate.flow import FlowPropagateConfig
    from vfxmatte.propagate.sam2 import Sam2PropagateConfig
    from vfxmatte.propagate.snapcut import SnapCutPropagateConfig

    parser = sub.add_parser(
        "panoptic",
        help="soft layers for every segment of a label map, with Cryptomatte",
        description="Matte every segment of a panoptic label map (or of an instance-mask "
        "folder); write one EXR per frame with <segment>.A layers that sum to 1, Cryptomatte "
        "channels and a preview PNG.",
    )
    parser.add_argument("plate", help="plate image, sequence pattern or video")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--labels",
        help="label map (PNG/EXR integer ids, COCO panoptic PNG), a pattern with one per "
        "frame, or the keyframe label map for --propagate",
    )
    source.add_argument(
        "--instances",
        metavar="DIR",
        help="folder of instance masks, <name>.png (or <name>.####.png sequences); "
        "order.txt lists them back to front",
    )
    parser.add_argument("-o", "--output", required=True, help="output EXR (pattern for shots)")
    parser.add_argument("--segments-info", help="COCO panoptic JSON naming the segments")
    parser.add_argument("--frames", help="frame range (default: all)")
    parser.add_argument("--colourspace", default="auto", help="plate colourspace (default auto)")
    parser.add_argument(
        "--propagate",
        choices=("flow", "snapcut", "sam2"),
        help="carry the single --labels map through the shot with this backend",
    )
    parser.add_argument(
        "--key-frame", type=int, help="frame number of the --labels map (default: first frame)"
    )
    add_config_arguments(parser, PanopticConfig, "panoptic.")
    add_config_arguments(parser, ClassicalMatteConfig, "classical.")
    add_config_arguments(parser, FlowPropagateConfig, "propagate.flow.")
    add_config_arguments(parser, SnapCutPropagateConfig, "propagate.snapcut.")
    add_config_arguments(parser, Sam2PropagateConfig, "propagate.sam2.")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfxmatte.engine.config import PropagateStageConfig
    from vfxmatte.matte.classical import ClassicalMatteConfig
    from vfxmatte.panoptic.matte import PanopticConfig
    from vfxmatte.panoptic.run import PanopticJob, run_panoptic
    from vfxmatte.propagate.flow import FlowPropagateConfig
    from vfxmatte.propagate.sam2 import Sam2PropagateConfig
    from vfxmatte.propagate.snapcut import SnapCutPropagateConfig

    config = config_from_args(PanopticConfig, args, "panoptic.")
    job = PanopticJob(
        plate=args.plate,
        output=args.output,
        labels=args.labels,
        frames=args.frames,
        segments_info=args.segments_info,
        colourspace=args.colourspace,
        instances=args.instances,
        key_frame=args.key_frame,
        propagate=args.propagate,
        propagate_config=PropagateStageConfig(
            backend=args.propagate or PropagateStageConfig().backend,
            flow=config_from_args(FlowPropagateConfig, args, "propagate.flow."),
            snapcut=config_from_args(SnapCutPropagateConfig, args, "propagate.snapcut."),
            sam2=config_from_args(Sam2PropagateConfig, args, "propagate.sam2."),
        ),
    )
    matte_config = config_from_args(ClassicalMatteConfig, args, "classical.")
    frames = run_panoptic(job, config, matte_config=matte_config)
    print(f"vfxmatte panoptic: wrote {len(frames)} frame(s) to {args.output}")
    return 0
