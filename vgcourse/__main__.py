"""``python -m vgcourse ...`` runs the command-line interface."""

from vgcourse.cli import main

raise SystemExit(main())
