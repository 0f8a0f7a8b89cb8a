"""The ``vfxmatte`` command line.

Each subcommand lives in its own module with ``register(subparsers)`` and
``run(args) -> int``. Errors derived from :class:`~vfxmatte.errors.VfxMatteError`
print one sentence and exit with status 2; nothing else is caught.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from vfxmatte import __version__
from vfxmatte.errors import VfxMatteError

__all__ = ["build_parser", "main"]

# Subcommand name -> module under vfxmatte.cli; imported when the parser is built.
SUBCOMMANDS = {
    "info": "info",
    "synth": "synth",
    "demo": "demo",
    "matte": "matte",
    "propagate": "propagate",
    "panoptic": "panoptic",
    "train": "train",
    "eval": "eval",
    "export": "export",
    "weights": "weights",
    "farm-split": "farm",
    "worker": "worker",
}

log = logging.getLogger("vfxmatte")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vfxmatte",
        description="Production mattes for VFX plates: plate + first-frame mask -> soft "
        "alpha, straight foreground and premultiplied scene-linear RGBA EXR.",
    )
    parser.add_argument("--version", action="version", version=f"vfxmatte {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name in dict.fromkeys(SUBCOMMANDS.values()):
        importlib.import_module(f"vfxmatte.cli.{module_name}").register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vfxmatte`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    level = logging.WARNING - 10 * min(args.verbose, 2)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    if not getattr(args, "run", None):
        parser.print_help()
        return 1
    try:
        return int(args.run(args) or 0)
    except VfxMatteError as exc:
        print(f"vfxmatte {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vfxmatte {args.command}: interrupted.", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
