"""``python -m vfxmatte.worker``: the same as ``vfxmatte worker``."""

import sys

from vfxmatte.cli import main

sys.exit(main(["worker", *sys.argv[1:]]))
