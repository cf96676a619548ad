"""`python -m hilt` runs the command-line interface."""

from hilt.host.cli import main

raise SystemExit(main())
