"""``vfxmatte worker``: the persistent worker that hosts such as Nuke talk to.

Serves the JSON-lines protocol of :mod:`vfxmatte.worker` on stdin/stdout until
``shutdown`` or the end of its input. ``--schema`` prints the options as JSON
(what the worker's ``schema`` request returns); ``--write-schema PATH`` writes
them to a file, e.g. the copy the Nuke plugin ships.
"""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "worker",
        help="serve the JSON-lines worker protocol on stdin/stdout (Nuke and other hosts)",
        description="A persistent local worker: reads one JSON request per line on stdin "
        "(hello, schema, run, cancel, status, shutdown) and writes JSON messages on stdout "
        "(progress per frame, result, error). See the README, section Nuke.",
    )
    parser.add_argument(
        "--schema", action="store_true", help="print the config schema as JSON and exit"
    )
    parser.add_argument(
        "--write-schema", metavar="PATH", help="write the config schema as JSON to PATH and exit"
    )
    parser.set_defaults(run=run)


def schema_text() -> str:
    """The config schema as indented JSON text, ending with a newline."""
    from vfxmatte.worker.schema import config_schema

    return json.dumps(config_schema(), indent=2) + "\n"


def run(args: argparse.Namespace) -> int:
    if args.schema:
        print(schema_text(), end="")
        return 0
    if args.write_schema:
        from vfxmatte.io.atomic import atomic_path

        with atomic_path(args.write_schema) as tmp:
            tmp.write_text(schema_text(), encoding="utf-8")
        print(f"vfxmatte worker: wrote the config schema to {args.write_schema}")
        return 0
    from vfxmatte.worker.server import serve

    return serve()
