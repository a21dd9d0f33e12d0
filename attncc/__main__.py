"""`python -m attncc` runs the command-line interface."""

from attncc.cli import main

raise SystemExit(main())
