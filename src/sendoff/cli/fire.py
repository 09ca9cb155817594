"""``sendoff fire``: send a request from the shell without waiting for it."""

from __future__ import annotations

import argparse
import sys

from ..clients.fire_and_forget import FireAndForget
from .base import add_request_options, build_request, command


def _fire_arguments(parser: argparse.ArgumentParser) -> None:
    add_request_options(parser)
    parser.add_argument("--wait", action="store_true",
                        help="wait for the response and print its status")


@command(
    "fire",
    "send a request and return at once (a detached process delivers it); "
    "--wait prints the status",
    _fire_arguments,
)
def run_fire(args: argparse.Namespace) -> int:
    """Hand the request to a detached helper, or with ``--wait`` deliver it and print
    ``STATUS REASON``. Exit 0 when handed over (or answered below 400), 1 when answered
    4xx/5xx, 2 when it could not be handed over or delivered (the reason on stderr)."""
    request = build_request(args)
    options = {"timeout": args.timeout, "verify": not args.insecure, "ca_bundle": args.ca_bundle}
    if not args.wait:
        receipt = FireAndForget(mode="process", **options).execute(request)
        if receipt.error is not None:
            print(f"sendoff: {receipt.error}", file=sys.stderr)
            return 2
        return 0
    client = FireAndForget(**options)
    receipt = client.execute(request)
    response = receipt.wait(args.timeout * (client.settings.retries + 1) + 5)
    if response is None:
        print(f"sendoff: {receipt.error or 'no response'}", file=sys.stderr)
        return 2
    print(f"{response.status} {response.reason}")
    return 0 if response.ok else 1
