"""``vfxmatte eval``: matting metrics of rendered mattes, or of a checkpoint on a dataset.

Two forms:

* ``vfxmatte eval PRED GT``: compare predicted matte sequences with ground truth;
* ``vfxmatte eval --weights W.safetensors --dataset DIR``: run a trained matting
  checkpoint (optionally followed by a sparse refiner, ``--refine R``) on every
  composite of a dataset folder and score it against the folder's alpha, beside
  the guidance mask and the classical default (``--no-baselines`` skips them).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from vfxmatte.errors import ConfigError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "eval",
        help="compare predicted mattes with ground truth, or score a checkpoint on a dataset",
        description="SAD, MSE, MAD, Grad, Conn (Rhemann et al. 2009 definitions), dtSSD and "
        "foreground MSE per frame and averaged. 'vfxmatte eval PRED GT' compares sequences; "
        "'vfxmatte eval --weights W --dataset DIR' runs a matting checkpoint on a dataset "
        "folder (composites in merged/ image/ original/..., alpha in alpha/ GT/..., optional "
        "coarse masks or trimaps in guidance/ trimaps/...; without them the guidance is the "
        "alpha > 0.5 dilated by --dilate-guidance px).",
    )
    parser.add_argument("pred", nargs="?", help="predicted matte pattern, e.g. out/shot.####.exr")
    parser.add_argument("gt", nargs="?", help="ground-truth alpha pattern")
    parser.add_argument("--frames", help="frame range (default: all of PRED)")
    parser.add_argument("--pred-channel", help="alpha channel of PRED (default: A)")
    parser.add_argument("--gt-channel", help="alpha channel of GT (default: A)")
    parser.add_argument("--pred-fg", help="predicted straight foreground pattern")
    parser.add_argument("--gt-fg", help="ground-truth straight foreground pattern")
    ckpt = parser.add_argument_group("checkpoint on a dataset")
    ckpt.add_argument("--weights", help="matting checkpoint (.safetensors or .pt of kind matte)")
    ckpt.add_argument("--dataset", help="dataset folder to run it on")
    ckpt.add_argument("--refine", help="sparse refiner checkpoint (kind refine) applied after it")
    ckpt.add_argument(
        "--iterations", type=int, default=3, help="confidence-guided decoding steps T (default 3)"
    )
    ckpt.add_argument(
        "--working-size", type=int, default=1024,
        help="long side the network mattes at (default 1024; larger frames are scaled down)",
    )  # fmt: skip
    ckpt.add_argument(
        "--max-size", type=int, default=2048,
        help="scale dataset frames down to this long side first (default 2048)",
    )  # fmt: skip
    ckpt.add_argument("--tau", type=float, default=0.1, help="refine.sparse.tau (default 0.1)")
    ckpt.add_argument("--dilate", type=int, default=0, help="refine.sparse.dilate (default 0)")
    ckpt.add_argument("--dilate-guidance", type=int, default=6, help="see the description")
    ckpt.add_argument("--limit", type=int, default=0, help="first N samples only (0: all)")
    ckpt.add_argument(
        "--no-baselines", action="store_true", help="skip the guidance and classical rows"
    )
    ckpt.add_argument("--out", help="folder for eval.json and PNG previews")
    ckpt.add_argument("--previews", type=int, default=4, help="preview PNGs to write (--out)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.weights or args.dataset:
        return run_checkpoint(args)
    if not (args.pred and args.gt):
        raise ConfigError(
            "vfxmatte eval needs PRED and GT patterns, or --weights W --dataset DIR to score a "
            "checkpoint."
        )
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


def run_checkpoint(args: argparse.Namespace) -> int:
    """``--weights W --dataset DIR``: metrics of the checkpoint (and baselines) on the folder."""
    if not (args.weights and args.dataset):
        raise ConfigError("vfxmatte eval: --weights and --dataset go together.")
    if args.pred or args.gt:
        raise ConfigError(
            "vfxmatte eval: give either PRED GT or --weights W --dataset DIR, not both."
        )
    if args.iterations < 0 or args.working_size < 64 or args.max_size < 64 or args.limit < 0:
        raise ConfigError(
            "vfxmatte eval: --iterations must be >= 0, --working-size and --max-size >= 64, "
            "--limit >= 0."
        )
    if not 0.0 <= args.tau <= 1.0 or args.dilate < 0 or args.dilate_guidance < 0:
        raise ConfigError("vfxmatte eval: --tau must lie in [0, 1]; --dilate values >= 0.")
    from vfxmatte.train.evaluation import folder_frames
    from vfxmatte.train.report import markdown_table, matte_comparison, write_previews

    frames = folder_frames(args.dataset, args.max_size, args.dilate_guidance, limit=args.limit)
    rows, preds = matte_comparison(
        args.weights,
        frames,
        iterations=(args.iterations,),
        refine=args.refine,
        working_size=args.working_size,
        tau=args.tau,
        dilate=args.dilate,
        baselines=not args.no_baselines,
    )
    print(f"{len(frames)} samples from {args.dataset}")
    print(markdown_table(rows))
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        report = {
            "weights": args.weights,
            "refine": args.refine,
            "dataset": args.dataset,
            "samples": len(frames),
            "iterations": args.iterations,
            "working_size": args.working_size,
            "alpha": rows,
        }
        (out / "eval.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
        write_previews(out, frames, preds, args.previews)
        print(f"wrote {out / 'eval.json'}")
    return 0
