"""The ``sendoff`` command.

``sendoff request METHOD URL`` sends a blocking request and prints the response. Every
subcommand that builds a request shares the options of :func:`add_request_options`.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Sequence

from . import __version__
from .clients.external import External
from .errors import InvalidRequest, SendoffError
from .http.request import Request

Runner = Callable[[argparse.Namespace], int]
Arguments = Callable[[argparse.ArgumentParser], None]

#: subcommand name -> (help, add_arguments, run); other modules register theirs here.
COMMANDS: dict[str, tuple[str, Arguments, Runner]] = {}


def command(name: str, help: str, add_arguments: Arguments) -> Callable[[Runner], Runner]:
    """Register ``run(args) -> exit code`` as ``sendoff NAME``."""

    def register(run: Runner) -> Runner:
        COMMANDS[name] = (help, add_arguments, run)
        return run

    return register


def add_request_options(parser: argparse.ArgumentParser) -> None:
    """METHOD URL, the options that shape a request, and the TLS options."""
    parser.add_argument("method", help="HTTP method, e.g. GET or POST")
    parser.add_argument("url", help="http:// or https:// URL")
    parser.add_argument("-q", "--query", action="append", default=[], metavar="K=V",
                        help="query-string parameter (repeatable)")
    parser.add_argument("-d", "--data", action="append", default=[], metavar="K=V",
                        help="form field, sent x-www-form-urlencoded (repeatable)")
    parser.add_argument("--json", metavar="TEXT", help="JSON body")
    parser.add_argument("-H", "--header", action="append", default=[], metavar="'NAME: VALUE'",
                        help="request header (repeatable)")
    parser.add_argument("--timeout", type=float, default=30.0, metavar="S",
                        help="seconds (default 30)")
    parser.add_argument("--ca-bundle", metavar="PEM", help="trust these CAs")
    parser.add_argument("--insecure", action="store_true", help="do not verify TLS (unsafe)")


def build_request(args: argparse.Namespace) -> Request:
    """A Request from the options of :func:`add_request_options`."""
    request = Request(args.url, args.method)
    for item in args.query:
        key, value = _pair("query", item, "=")
        request.query(key, value)
    for item in args.data:
        key, value = _pair("data", item, "=")
        request.post(key, value)
    if args.json is not None:
        try:
            request.json(json.loads(args.json))
        except json.JSONDecodeError as exc:
            raise InvalidRequest("json", f"not valid JSON: {exc}") from None
    for item in args.header:
        name, value = _pair("header", item, ":")
        request.headers(name, value.strip())
    request.timeout(args.timeout)
    return request


def _pair(field: str, item: str, sep: str) -> tuple[str, str]:
    key, found, value = item.partition(sep)
    if not found or not key.strip():
        raise InvalidRequest(field, f"{item!r} is not of the form NAME{sep}VALUE")
    return key.strip(), value


def _request_arguments(parser: argparse.ArgumentParser) -> None:
    add_request_options(parser)
    parser.add_argument("-i", "--include", action="store_true", help="print the headers too")
    parser.add_argument("--backend", default="auto",
                        choices=["auto", "urllib3", "pycurl", "httpx", "stdlib"])
    parser.add_argument("--follow", action="store_true", help="follow redirects")


@command("request", "send a request, wait, print the response", _request_arguments)
def _run_request(args: argparse.Namespace) -> int:
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


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``sendoff`` console script."""
    _load_commands()
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


def _load_commands() -> None:
    """Import the modules that register further subcommands."""
    from .delivery import cli as _fire  # noqa: F401  (sendoff fire)


if __name__ == "__main__":
    # run as a script this module is __main__; subcommands register in sendoff.cli
    from sendoff.cli import main as _main

    raise SystemExit(_main())
