"""python -m tillbridge_cli … (the same as the `tillbridge` command)."""

import sys

from tillbridge_cli.main import main

sys.exit(main())
