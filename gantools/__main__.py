"""``python -m gantools``: the same as the ``gantools`` command."""

import sys

from gantools.cli import main

sys.exit(main())
