"""A bare ASGI app (no framework) for uvicorn: the test endpoints, and at ``/readme`` the
README's plain ASGI recipe, line for line."""

from __future__ import annotations

from urllib.parse import parse_qsl

from common import handle_async, hold, wait_for_async

from sendoff import background
from sendoff.asgi import BackgroundMiddleware


async def app(scope, receive, send):
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
    if scope["path"] != "/readme":
        body = (await handle_async(scope["path"], params)).encode()
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": body})
        return
    background.add(print, "after the response to", scope["path"], flush=True)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"ok"})


application = BackgroundMiddleware(app, on_error="continue")
threaded = BackgroundMiddleware(app, executor="thread", on_error="continue")
