"""The App's ASGI boundary: the main request built from a server's scope, and the App
served as an ASGI application (``app.asgi``)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Collection
from typing import Any, Protocol

from ..background import asgi as background_asgi
from ..background.executors import Executor
from ..background.tasks import OnError
from ..core.types import Receive, Scope, Send
from ..http.models import Request, Response
from .exceptions import HTTPException
from .gateway import build_request, outgoing_headers


def request_from_scope(
    scope: Scope, body: bytes, trusted_proxies: Collection[str] = ()
) -> Request[Any]:
    """The main request an ASGI server described in ``scope`` (with its whole body)."""
    client = scope.get("client")
    return build_request(
        scope["method"],
        scope["path"],
        bytes(scope.get("query_string", b"")).decode("latin-1"),
        [(k.decode("latin-1"), v.decode("latin-1")) for k, v in scope.get("headers", ())],
        body,
        client[0] if client else None,
        trusted_proxies,
    )


async def read_body(receive: Receive, max_body: int) -> bytes | None:
    """The whole request body; None if the client disconnected first."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_body:
            raise HTTPException(413)
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)


async def send_response(
    send: Send, status: int, headers: list[tuple[str, str]], body: bytes
) -> None:
    """Send a whole response."""
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers],
        }
    )
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """Acknowledge startup and shutdown (the App has nothing to set up)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


class Served(Protocol):
    """What :class:`ASGIEntry` needs of the application it serves (an ``hmvc.App``)."""

    max_body: int
    trusted_proxies: frozenset[str]
    executor: Executor
    on_error: OnError

    def respond(self, build: Callable[[], Request[Any]]) -> tuple[Response, bool]: ...


class ASGIEntry:
    """An App as an ASGI application (``app.asgi``). Controllers are synchronous, so
    each request runs in a worker thread, with the context of the task serving it."""

    def __init__(self, app: Served) -> None:
        self.app = app

    def __repr__(self) -> str:
        return f"<ASGI entry of {self.app!r}>"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            raise ValueError(f"a sendoff App serves HTTP only, not {scope['type']!r}")
        app = self.app
        await background_asgi.serve(
            self._http, scope, receive, send, executor=app.executor, on_error=app.on_error
        )

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        app = self.app
        try:
            body = await read_body(receive, app.max_body)
        except HTTPException as exc:
            response, head = exc.get_response(), False
        else:
            if body is None:
                return  # the client went away
            response, head = await asyncio.to_thread(
                app.respond, lambda: request_from_scope(scope, body, app.trusted_proxies)
            )
        content = response.body
        headers = outgoing_headers(response, content)
        await send_response(send, response.status, headers, b"" if head else content)
