"""``vfxmatte matte PLATE --mask MASK -o OUT``: the main job."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from vfxmatte.cli.params import add_config_arguments, config_from_args

# Short spellings of the options artists use most.
ALIASES = {
    "output": "-o",
    "mask": "-m",
    "input.mask_resize": "--mask-resize",
    "input.mask_channel": "--mask-channel",
    "input.colourspace": "--colourspace",
    "input.ocio": "--ocio",
    "input.channels": "--channels",
    "input.nonfinite": "--nonfinite",
    "engine.on_error": "--on-error",
    "engine.overwrite": "--overwrite",
    "engine.executor": "--executor",
    "engine.scheduler": "--scheduler",
    "engine.workers": "--workers",
    "engine.dashboard": "--dashboard",
    "engine.chunk_size": "--chunk-size",
    "engine.overlap": "--overlap",
    "engine.phase": "--phase",
    "output_options.kinds": "--outputs",
    "output_options.preview": "--preview",
    "output_options.dtype": "--dtype",
    "output_options.compression": "--compression",
}


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "matte",
        help="matte a plate from a first-frame mask",
        description="Propagate the keyframe mask through the shot, matte every frame, "
        "decontaminate the foreground and write premultiplied scene-linear EXRs.",
    )
    parser.add_argument(
        "plate_arg",
        nargs="?",
        metavar="PLATE",
        help="plate: shot.####.exr, an image or a video file",
    )
    add_pipeline_arguments(parser)
    parser.set_defaults(run=run)


def add_pipeline_arguments(parser: argparse.ArgumentParser) -> None:
    """``--config``, ``--set`` and a flag per :class:`PipelineConfig` option (read by
    :func:`build_config`)."""
    from vfxmatte.engine.config import PipelineConfig

    parser.add_argument("--config", help="YAML file with the options below (same nesting)")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one option, e.g. matte.classical.band_fraction=0.05",
    )
    add_config_arguments(parser, PipelineConfig, aliases=ALIASES)


def build_config(args: argparse.Namespace) -> Any:
    """Defaults < YAML file < --set < explicit flags."""
    from vfxmatte.config import load_config
    from vfxmatte.engine.config import PipelineConfig

    config = load_config(PipelineConfig, args.config, args.set)
    config = config_from_args(PipelineConfig, args, base=config)
    if args.plate_arg:
        config.plate = args.plate_arg
    return config


def config_file_input(args: argparse.Namespace) -> dict[str, str]:
    """The ``--config`` YAML file as an input the run must not write."""
    return {"config file": args.config} if getattr(args, "config", None) else {}


def run(args: argparse.Namespace) -> int:
    from vfxmatte.engine.pipeline import run_pipeline
    from vfxmatte.warmup import warm_up_for

    config = build_config(args)
    warm_up_for(config)  # pymatting's first-run compile, announced
    report = run_pipeline(config, extra_inputs=config_file_input(args))
    print(f"vfxmatte matte: {report.summary()}")
    for kind, pattern in report.outputs.items():
        print(f"  {kind:<11} {pattern}")
    for number, message in sorted(report.failed.items()):
        print(f"  frame {number} failed: {message}", file=sys.stderr)
    if report.drift.samples:
        print(f"  {report.drift.summary()}")
    if report.cancelled:
        return 130
    return 0 if report.ok else 1
