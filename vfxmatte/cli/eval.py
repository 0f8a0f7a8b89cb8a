"""``vfxmatte eval PRED GT``: matting metrics per frame and averaged."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "eval",
        help="compare predicted mattes with ground truth",
        description="SAD, MSE, MAD, Grad, Conn (Rhemann et al. 2009 definitions), dtSSD and "
        "foreground MSE per frame and averaged.",
    )
    parser.add_argument("pred", help="predicted matte pattern, e.g. out/shot.####.exr")
    parser.add_argument("gt", help="ground-truth alpha pattern")
    parser.add_argument("--frames", help="frame range (default: all of PRED)")
    parser.add_argument("--pred-channel", help="alpha channel of PRED (default: A)")
    parser.add_argument("--gt-channel", help="alpha channel of GT (default: A)")
    parser.add_argument("--pred-fg", help="predicted straight foreground pattern")
    parser.add_argument("--gt-fg", help="ground-truth straight foreground pattern")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfxmatte.evaluate import evaluate_sequences

    acc = evaluate_sequences(
        args.pred,
        args.gt,
        frames=args.frames,
        pred_channel=args.pred_channel,
        gt_channel=args.gt_channel,
        pred_fg=args.pred_fg,
        gt_fg=args.gt_fg,
    )
    print(acc.table())
    return 0
