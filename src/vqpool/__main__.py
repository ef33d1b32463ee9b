"""``python -m vqpool``: the same as the ``vqpool`` command."""

import sys

from vqpool.cli import main

sys.exit(main())
