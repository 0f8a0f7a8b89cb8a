"""``vfxmatte weights``: inspect checkpoints and convert foreign ones."""

from __future__ import annotations

import argparse
import json
from typing import Any

from vfxmatte.errors import ConfigError


def register(sub: Any) -> None:
    parser = sub.add_parser("weights", help="inspect or convert network checkpoints")
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    info = actions.add_parser("info", help="kind, architecture, size and metadata of a checkpoint")
    info.add_argument("path")
    info.set_defaults(run=run_info)
    convert = actions.add_parser(
        "convert-mgmatting",
        help="convert the released MGMatting checkpoint (non-commercial licence) to vfxmatte",
    )
    convert.add_argument("checkpoint", help="the release's .pth (e.g. latest_model.pth)")
    convert.add_argument("output", help="vfxmatte checkpoint to write (.safetensors)")
    convert.add_argument(
        "--accept-licence", action="store_true",
        help="confirm you may use the MGMatting weights (non-commercial research only)",
    )  # fmt: skip
    convert.set_defaults(run=run_convert)
    cast = actions.add_parser(
        "cast", help="store a checkpoint's floating-point tensors in another precision"
    )
    cast.add_argument("source", help="vfxmatte checkpoint to read")
    cast.add_argument("output", help="checkpoint to write (.safetensors or .pt)")
    cast.add_argument(
        "--dtype", default="float16", choices=("float16", "bfloat16", "float32"),
        help="storage type (default float16: half the file; networks still run in float32)",
    )  # fmt: skip
    cast.set_defaults(run=run_cast)
    parser.set_defaults(run=lambda args: parser.print_help() or 1)


def run_info(args: argparse.Namespace) -> int:
    from vfxmatte.weights import load_checkpoint

    checkpoint = load_checkpoint(args.path)
    count = sum(int(t.numel()) for t in checkpoint.state_dict.values())
    print(f"{args.path}: {checkpoint.kind} network, {len(checkpoint.state_dict)} tensors, "
          f"{count:,} values")  # fmt: skip
    print("config: " + json.dumps(checkpoint.config, sort_keys=True))
    for key, value in sorted(checkpoint.metadata.items()):
        print(f"{key}: {value}")
    return 0


def run_convert(args: argparse.Namespace) -> int:
    from vfxmatte.matte.network.convert import LICENCE_NOTE, convert_mgmatting

    if not args.accept_licence:
        raise ConfigError(
            f"{LICENCE_NOTE}. Pass --accept-licence to confirm your use is covered; vfxmatte "
            "ships its own weights and never needs these."
        )
    if not str(args.output).endswith(".safetensors"):
        raise ConfigError(f"the output should be a .safetensors file, got {args.output}")
    convert_mgmatting(args.checkpoint, args.output)
    print(f"wrote {args.output} (matte network, architecture mgm, {LICENCE_NOTE})")
    return 0


def run_cast(args: argparse.Namespace) -> int:
    import os

    from vfxmatte.weights import cast_checkpoint

    if os.path.abspath(args.source) == os.path.abspath(args.output):
        raise ConfigError("vfxmatte weights cast: write to another file than the source.")
    cast_checkpoint(args.source, args.output, args.dtype)
    before, after = os.path.getsize(args.source), os.path.getsize(args.output)
    print(f"wrote {args.output} ({args.dtype}, {after / 1e6:.1f} MB, was {before / 1e6:.1f} MB)")
    return 0
