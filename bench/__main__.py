"""`python -m bench`: the same command as `bench`."""

import sys

from bench.cli import main

sys.exit(main())
