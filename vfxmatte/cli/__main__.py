import sys

from vfxmatte.cli import main

sys.exit(main())
