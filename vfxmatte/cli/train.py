"""``vfxmatte train CONFIG.yaml [--set KEY=VALUE ...] [--resume]``: train a network."""

from __future__ import annotations

import argparse
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "train",
        help="train the matting, sparse refinement or foreground colour network from a YAML config",
        description="Train the PRN matting network (task: matte), the sparse refiner on a "
        "frozen matting network (task: refine) or the foreground colour network (task: "
        "colour) on synthetic composites or matting folders. Writes "
        "checkpoint.pt (resumable), log.csv/log.jsonl, eval.jsonl, previews/ and "
        "<name>.safetensors under out_dir. See the README, section Training for every option.",
    )
    parser.add_argument("config", nargs="?", help="YAML config (omit to use the defaults)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override an option, e.g. --set optim.lr=5e-4 --set data.crop_size=320",
    )
    parser.add_argument(
        "--resume", action="store_true", help="continue from <out_dir>/checkpoint.pt"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from vfxmatte.train.config import load_train_config
    from vfxmatte.train.trainer import train

    config = load_train_config(args.config, args.overrides)
    path = train(config, resume=args.resume)
    print(f"weights: {path}")
    return 0
