"""``sendoff outbox PATH ...``: look into an outbox file, and run its relay.

    sendoff outbox PATH stats [--json]
    sendoff outbox PATH list [--status S] [--origin O] [--limit N] [--json]
    sendoff outbox PATH show ID [--json]
    sendoff outbox PATH retry ID [ID ...]
    sendoff outbox PATH replay --since T [--status delivered|dead]
    sendoff outbox PATH purge --delivered-before T
    sendoff outbox PATH relay [--webhook-secret-env NAME] [--lease S] [--ca-bundle PEM]

Times (``T``) are ISO 8601 (``2026-11-22T10:00``, UTC unless it says otherwise), seconds
since the epoch, or an age: ``90s``, ``15m``, ``2h``, ``7d`` ago. URLs are shown with
credential-like query values redacted. Tables and ``show`` print control and
bidirectional characters in stored text (an error a server provoked, a key an older
sendoff stored), and backslashes, as escapes such as ``\\x1b``, so nothing in the file
can move the cursor, recolour the terminal or reorder a line; JSON output carries the
exact text.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from ..clients.outbox import Outbox
from ..core.display import shown
from ..core.errors import InvalidRequest
from ..core.log import logger, redact_url
from ..outbox.store import MessageStatus
from ..subscribers.webhooks import StandardWebhooks
from .base import command

STATUSES = ("pending", "delivering", "delivered", "dead")
_AGE = re.compile(r"(\d+(?:\.\d+)?)([smhd])\Z")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("path", help="the outbox's SQLite file")
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    stats = actions.add_parser("stats", help="counts per status and origin")
    stats.add_argument("--json", action="store_true", help="print JSON")
    listing = actions.add_parser("list", help="messages, oldest first")
    listing.add_argument("--status", choices=STATUSES, help="only messages in this state")
    listing.add_argument("--origin", help="only messages to this origin (scheme://host:port)")
    listing.add_argument("--limit", type=int, default=100, help="at most N (default 100)")
    listing.add_argument("--json", action="store_true", help="print JSON, one object a line")
    show = actions.add_parser("show", help="one message")
    show.add_argument("id")
    show.add_argument("--json", action="store_true", help="print JSON")
    retry = actions.add_parser("retry", help="send dead (or waiting) messages again now")
    retry.add_argument("ids", nargs="+", metavar="ID")
    replay = actions.add_parser("replay", help="send messages stored since T again")
    replay.add_argument("--since", required=True, metavar="T")
    replay.add_argument("--status", choices=("delivered", "dead"),
                        help="only messages in this state (default: both)")
    purge = actions.add_parser("purge", help="delete messages delivered before T")
    purge.add_argument("--delivered-before", required=True, metavar="T")
    relay = actions.add_parser("relay", help="deliver the messages (until SIGTERM or Ctrl-C)")
    relay.add_argument("--webhook-secret-env", metavar="NAME",
                       help="sign every attempt (Standard Webhooks) with the whsec_ secret(s) "
                            "in this environment variable (space-separated for rotation)")
    relay.add_argument("--lease", type=float, metavar="S",
                       help="seconds a claimed message stays this relay's (default 60 or more)")
    relay.add_argument("--timeout", type=float, default=30.0, metavar="S",
                       help="seconds per wait of an attempt (default 30)")
    relay.add_argument("--ca-bundle", metavar="PEM", help="trust these CAs")
    relay.add_argument("--insecure", action="store_true", help="do not verify TLS (unsafe)")


@command("outbox", "look into an outbox file and run its relay", _arguments)
def run_outbox(args: argparse.Namespace) -> int:
    """Run one ``sendoff outbox`` action; exit 0, or 1 when ``show`` finds nothing."""
    if args.action == "relay":
        return _relay(args)
    if not os.path.exists(args.path):  # looking into a mistyped path must not create it
        raise InvalidRequest("path", "no outbox file there")
    outbox = Outbox(args.path, relay=None)
    try:
        return _ACTIONS[args.action](outbox, args, sys.stdout)
    finally:
        outbox.close()


def _stats(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    stats = outbox.store.stats()
    if args.json:
        out.write(json.dumps(stats) + "\n")
        return 0
    rows = [[status, str(stats[status])] for status in STATUSES]  # type: ignore[literal-required]
    _table(out, ["status", "messages"], rows)
    origins = stats["origins"]
    if origins:
        out.write("\n")
        _table(out, ["origin", "pending", "delivering", "dead"], [
            [origin, str(c["pending"]), str(c["delivering"]), str(c["dead"])]
            for origin, c in sorted(origins.items())
        ])
    age = stats["oldest_pending_age"]
    if age is not None:
        out.write(f"\noldest pending message: {age:.1f} s old\n")
    return 0


def _list(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    messages = outbox.store.list(status=args.status, origin=args.origin, limit=args.limit)
    if args.json:
        for message in messages:
            out.write(json.dumps(_public(message)) + "\n")
        return 0
    _table(out, ["id", "status", "attempts", "last", "method", "url"], [
        [m.id, m.status, str(m.attempts), _last(m), m.method, redact_url(m.url)]
        for m in messages
    ])
    return 0


def _show(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    message = outbox.status(args.id)
    if message is None:
        print(f"sendoff: no message {args.id!r} in {args.path}", file=sys.stderr)
        return 1
    fields = _public(message)
    if args.json:
        out.write(json.dumps(fields) + "\n")
        return 0
    width = max(len(k) for k in fields)
    for key, value in fields.items():
        if key.endswith("_at") and isinstance(value, float):
            value = f"{_when(value)} ({value:.3f})"
        out.write(f"{key.ljust(width)}  {'' if value is None else shown(str(value))}\n")
    return 0


def _retry(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    count = outbox.store.retry(args.ids)
    out.write(f"{count} message(s) will be sent again\n")
    return 0


def _replay(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    count = outbox.store.replay(_time(args.since, "since"), status=args.status)
    out.write(f"{count} message(s) will be sent again (same id and key)\n")
    return 0


def _purge(outbox: Outbox, args: argparse.Namespace, out: TextIO) -> int:
    count = outbox.store.purge(_time(args.delivered_before, "delivered-before"))
    out.write(f"{count} delivered message(s) deleted\n")
    return 0


_ACTIONS = {
    "stats": _stats, "list": _list, "show": _show, "retry": _retry, "replay": _replay,
    "purge": _purge,
}


def _relay(args: argparse.Namespace) -> int:
    """Deliver until SIGTERM or SIGINT, then hand what is left back to the file."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s sendoff: %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    outbox = Outbox(
        args.path, timeout=args.timeout, lease=args.lease, ca_bundle=args.ca_bundle,
        verify=not args.insecure,
    )
    if args.webhook_secret_env:
        secrets = os.environ.get(args.webhook_secret_env, "").split()
        if not secrets:
            raise InvalidRequest("webhook-secret-env", f"${args.webhook_secret_env} is empty")
        outbox.emitter.attach(StandardWebhooks(secrets))
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    assert outbox.relay is not None
    outbox.relay.wake()  # starts it
    logger.info("relay of %s running (pid %d)", outbox.path, os.getpid())
    while not stop.wait(1.0):
        pass
    logger.info("relay of %s stopping", outbox.path)
    outbox.close()
    return 0


def _public(message: MessageStatus) -> dict[str, Any]:
    fields = message.to_dict()
    fields["url"] = redact_url(message.url)
    return fields


def _last(message: MessageStatus) -> str:
    if message.last_status is not None:
        return str(message.last_status)
    return (message.last_error or "")[:40]


def _when(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def _time(text: str, field: str) -> float:
    """Seconds since the epoch for an ISO 8601 time, epoch seconds, or an age ago."""
    age = _AGE.match(text.strip())
    if age:
        return time.time() - float(age.group(1)) * _UNITS[age.group(2)]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            field, f"{text!r} is not an ISO 8601 time, epoch seconds or an age like 2h"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _table(out: TextIO, header: list[str], cells: list[list[str]]) -> None:
    rows = [[shown(cell) for cell in row] for row in cells]
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h)
              for i, h in enumerate(header)]
    out.write("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip() + "\n")
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
