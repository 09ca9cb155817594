"""Processes the SIGTERM tests start: a script, a WSGI and an ASGI app that fire
``FIRES`` requests per call at ``RECEIVER_URL`` and log to stderr."""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

from sendoff import FireAndForget

logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s: %(message)s")
CLIENT = FireAndForget(timeout=30, exit_timeout=1.0, connections_per_origin=4)
RECEIVER = os.environ.get("RECEIVER_URL", "")
FIRES = int(os.environ.get("FIRES", "100"))


def _fire() -> bytes:
    for n in range(FIRES):
        CLIENT.fire("POST", RECEIVER, json={"n": n})
    return b"fired"


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = _fire()
    start_response("200 OK", [("Content-Length", str(len(body)))])
    return [body]


async def asgi(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    if scope["type"] != "http":
        return
    body = _fire()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


if __name__ == "__main__":  # the plain script: fire, say so, then wait to be stopped
    _fire()
    print("fired", flush=True)
    time.sleep(60)
