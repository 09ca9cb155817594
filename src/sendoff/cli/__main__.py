"""``python -m sendoff.cli``: the same as the ``sendoff`` command."""

from . import main

raise SystemExit(main())
