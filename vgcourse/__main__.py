"""``python -m vgcourse ...`` runs the command-line interface."""

from vgcourse.tools.cli import main

raise SystemExit(main())
