"""``python -m mosaic_conformance.fleet COMMAND ...`` is ``mosaic fleet COMMAND ...``."""

import sys

from .cli import fleet_main

sys.exit(fleet_main(prog="python -m mosaic_conformance.fleet"))
