"""A WSGI and an ASGI application that store one outbox message per request, for the
gunicorn and uvicorn tests. ``OUTBOX_PATH`` names the file, ``RECEIVER_URL`` where the
messages go; ``/store?n=N`` stores the message with key ``req-N`` and answers 200 once
it is committed."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qs

from sendoff import Outbox

OUTBOX = Outbox(os.environ["OUTBOX_PATH"], lease=float(os.environ.get("OUTBOX_LEASE", "2")))
RECEIVER = os.environ["RECEIVER_URL"]


def _store(query: str) -> bytes:
    n = parse_qs(query).get("n", ["0"])[0]
    receipt = OUTBOX.fire("POST", RECEIVER, json={"n": n}, key=f"req-{n}")
    return receipt.id.encode()


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    body = _store(environ.get("QUERY_STRING", ""))
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


async def asgi(
    scope: dict[str, Any], receive: Callable[..., Any], send: Callable[..., Any]
) -> None:
    if scope["type"] != "http":
        return
    body = _store(scope.get("query_string", b"").decode())
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})
