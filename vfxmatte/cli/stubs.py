"""Subcommands whose stages have not landed yet: they say so and exit non-zero."""

from __future__ import annotations

import argparse
from typing import Any

from vfxmatte.errors import BackendUnavailableError

# Subcommand -> what it will do; removed from here as each lands.
PENDING = {
    "train": "train the matting networks from a YAML config",
}


def register(sub: Any) -> None:
    for name, what in PENDING.items():
        parser = sub.add_parser(name, help=f"{what} (not available in this version)")
        parser.add_argument("rest", nargs=argparse.REMAINDER)
        parser.set_defaults(run=_not_yet)


def _not_yet(args: argparse.Namespace) -> int:
    raise BackendUnavailableError(
        f"'vfxmatte {args.command}' ({PENDING[args.command]}) is not part of this version yet."
    )
