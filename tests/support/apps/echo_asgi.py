"""ASGI echo app for uvicorn and hypercorn (``echo_asgi:application``); see ``echo_common``.

``/len/`` sets content-length; ``/chunked/`` sends the body in two ``more_body`` messages
(two chunks). ``/close/`` sends ``connection: close`` and no length: both servers then
chunk the body and close the connection (neither can send a close-delimited answer to
an HTTP/1.1 request).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from echo_common import body_parts, framing, record

Message = dict[str, Any]


async def application(
    scope: dict[str, Any],
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] != "http":
        return
    method = scope["method"]
    request_id = next(
        (value.decode("latin-1") for name, value in scope["headers"] if name == b"x-request-id"),
        "-",
    )
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        more = message.get("more_body", False)
    record(method, request_id)
    parts = body_parts(request_id)
    headers = [(b"content-type", b"text/plain"), (b"x-request-id", request_id.encode("latin-1"))]
    kind = framing(scope["path"])
    if kind == "len":
        headers.append((b"content-length", str(sum(map(len, parts))).encode()))
    elif kind == "close":
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if method == "HEAD":
        await send({"type": "http.response.body", "body": b""})
    elif kind == "len":
        await send({"type": "http.response.body", "body": b"".join(parts)})
    else:
        for part in parts:
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
