"""Entry point of `python -m corral.agent` (see `corral.agent.cli`)."""

import sys

from corral.agent.cli import main

sys.exit(main())
