"""``python -m firmware_sim …`` runs the simulator CLI (same as ``loaphuong sim …``)."""

import sys

from firmware_sim.cli import main

sys.exit(main())
