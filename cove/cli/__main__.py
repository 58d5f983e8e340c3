"""`python -m cove.cli`."""

import sys

from cove.cli.main import main

sys.exit(main())
