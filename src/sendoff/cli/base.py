"""What every subcommand shares: the registry, the request options and the Request
they describe."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from ..core.errors import InvalidRequest
from ..http.models import Request

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


def build_request(args: argparse.Namespace) -> Request[Any]:
    """A Request from the options of :func:`add_request_options`."""
    request = Request(args.url, args.method)
    for number, item in enumerate(args.query, 1):
        key, value = _pair("query", number, item, "=")
        request.query(key, value)
    for number, item in enumerate(args.data, 1):
        key, value = _pair("data", number, item, "=")
        request.post(key, value)
    if args.json is not None:
        try:
            request.json(json.loads(args.json))
        except json.JSONDecodeError as exc:
            raise InvalidRequest("json", f"not valid JSON: {exc}") from None
    for number, item in enumerate(args.header, 1):
        name, value = _pair("header", number, item, ":")
        request.headers(name, value.strip())
    request.timeout(args.timeout)
    return request


def _pair(field: str, number: int, item: str, sep: str) -> tuple[str, str]:
    """``NAME<sep>VALUE`` split; the error names the option and its rank, never the text
    (a header missing its ':' may well be ``Authorization Bearer <token>``)."""
    key, found, value = item.partition(sep)
    if not found or not key.strip():
        raise InvalidRequest(
            field, f"argument #{number} is not of the form NAME{sep}VALUE (no {sep!r} after a name)"
        )
    return key.strip(), value
