"""``python -m edge``: the same entry point as the ``dogmonitor`` console command."""

from edge.cli import main

raise SystemExit(main())
