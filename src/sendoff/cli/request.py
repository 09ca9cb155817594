"""``sendoff request``: send a blocking request and print the response."""

from __future__ import annotations

import argparse
import sys

from ..clients.external import External
from .base import add_request_options, build_request, command


def _request_arguments(parser: argparse.ArgumentParser) -> None:
    add_request_options(parser)
    parser.add_argument("-i", "--include", action="store_true", help="print the headers too")
    parser.add_argument("--backend", default="auto",
                        choices=["auto", "urllib3", "pycurl", "httpx", "stdlib"])
    parser.add_argument("--follow", action="store_true", help="follow redirects")


@command("request", "send a request, wait, print the response", _request_arguments)
def run_request(args: argparse.Namespace) -> int:
    client = External(args.backend, timeout=args.timeout, verify=not args.insecure,
                      follow_redirects=args.follow, ca_bundle=args.ca_bundle)
    response = client.execute(build_request(args))
    out = sys.stdout
    if args.include:
        out.write(f"{response.http_version} {response.status} {response.reason}\n")
        for name, value in response.headers.multi_items():
            out.write(f"{name}: {value}\n")
        out.write("\n")
    out.write(response.text)
    out.flush()
    return 0 if response.ok else 1
