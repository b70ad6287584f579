"""`python -m voidrail dealer --module my_service --instances 2`: see voidrail.cli."""

import sys

from .cli import main

sys.exit(main())
