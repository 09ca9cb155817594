"""``python -m sendoff``: the same as the ``sendoff`` command."""

from .cli import main

raise SystemExit(main())
