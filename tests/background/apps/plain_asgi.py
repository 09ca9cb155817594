"""A bare ASGI app (no framework) for uvicorn: the README's plain ASGI recipe."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

from common import handle_async, hold, wait_for_async

from sendoff.asgi import BackgroundMiddleware


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    params = dict(parse_qsl(scope["query_string"].decode()))
    if scope["path"] == "/stream":
        hold(params["id"])
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"first part\n", "more_body": True})
        await wait_for_async(f"go-{params['id']}")
        await send({"type": "http.response.body", "body": b"second part\n"})
        return
    body = (await handle_async(scope["path"], params)).encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": body})


application = BackgroundMiddleware(app, on_error="continue")
threaded = BackgroundMiddleware(app, executor="thread", on_error="continue")
