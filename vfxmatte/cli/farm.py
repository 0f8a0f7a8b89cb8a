"""``vfxmatte farm-split PLATE --mask MASK -o OUT --chunk-size 10``: render-farm jobs.

Prints the jobs that matte a shot on a render farm without Dask: first a
propagation job (``vfxmatte matte ... --phase propagate``), then one chunk job per
``--chunk-size`` frames (``vfxmatte matte ... --frames 1001-1010 --guidance
GUIDE``), each depending on the propagation job only. Plain shell lines by
default (comments start with ``#``), or a JSON job description with ``--json``.
Takes every option of ``vfxmatte matte``; the jobs carry those that differ from
the defaults.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfxmatte.cli.matte import add_pipeline_arguments, build_config, config_file_input


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "farm-split",
        help="print render-farm jobs: propagation, then chunks of frames",
        description="Print the jobs that matte a shot on a render farm: a propagation job, "
        "then chunk jobs of --chunk-size frames that depend on it only.",
    )
    parser.add_argument(
        "plate_arg", nargs="?", metavar="PLATE", help="plate: shot.####.exr or a video file"
    )
    parser.add_argument("--json", action="store_true", help="print a JSON job description")
    parser.add_argument(
        "--program",
        default="vfxmatte",
        help="how farm machines start vfxmatte (default: vfxmatte), e.g. "
        "'/opt/venv/bin/python -m vfxmatte'",
    )
    add_pipeline_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfxmatte.engine.farm import plan_farm_jobs

    plan = plan_farm_jobs(
        build_config(args), program=args.program, extra_inputs=config_file_input(args)
    )
    if args.json:
        print(json.dumps(plan.to_dict(), indent=2))
    else:
        print("\n".join(plan.shell_lines()))
    return 0
