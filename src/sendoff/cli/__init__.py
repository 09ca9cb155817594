"""The ``sendoff`` command: one module per subcommand, each registering itself in
:data:`~sendoff.cli.base.COMMANDS`.

``sendoff request METHOD URL`` sends a blocking request and prints the response;
``sendoff fire METHOD URL`` hands one to a detached process and returns at once;
``sendoff outbox PATH ...`` looks into an outbox file and runs its relay.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .. import __version__
from ..core.errors import SendoffError
from . import fire, outbox, request
from .base import COMMANDS

#: The subcommand modules (imported for their registration).
SUBCOMMANDS = (fire, outbox, request)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sendoff`` console script."""
    parser = argparse.ArgumentParser(
        prog="sendoff", description="Talk to HTTP services without making your users wait."
    )
    parser.add_argument("--version", action="version", version=f"sendoff {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, _) in sorted(COMMANDS.items()):
        add_arguments(sub.add_parser(name, help=help_text, description=help_text))
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command][2](args)
    except SendoffError as exc:
        print(f"sendoff: {exc}", file=sys.stderr)
        return 2
