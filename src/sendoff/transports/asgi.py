"""Calling an ASGI application in-process: the scope a server would build for a prepared
request, and a runner that drives the app (and its lifespan) on an event loop of its own
(what ``Internal`` uses)."""

from __future__ import annotations

import asyncio
import concurrent.futures
import threading
from typing import Any
from urllib.parse import unquote

from ..core.errors import TimeoutError
from ..core.log import logger
from ..core.types import ASGIApp, Message, Scope
from ..http.headers import Headers
from ..http.models import PreparedRequest, Response

log = logger.getChild("transports")
#: The ``asgi`` entry of every scope sendoff builds or serves.
ASGI_VERSION = {"version": "3.0", "spec_version": "2.3"}

def scope_for(prepared: PreparedRequest, client_ip: str | None) -> Scope:
    """The HTTP scope an ASGI server would build for ``prepared``."""
    url = prepared.url
    path, _, query = prepared.target.partition("?")
    return {
        "type": "http",
        "asgi": dict(ASGI_VERSION),
        "http_version": prepared.protocol.removeprefix("HTTP/"),
        "method": prepared.method,
        "scheme": url.scheme,
        "path": unquote(path),
        "raw_path": path.encode("ascii"),
        "query_string": query.encode("ascii", errors="replace"),
        "root_path": "",
        "headers": [
            (k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in prepared.headers
        ],
        "client": (client_ip or "127.0.0.1", 0),
        "server": (url.host, url.port),
    }


class ASGIRunner:
    """Runs an ASGI application on an event loop in a thread of its own, so that blocking
    callers (and callers on another loop) can execute requests against it. The app's
    lifespan starts with the first request and shuts down at :meth:`close`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._state: dict[str, Any] = {}
        self._lifespan_in: asyncio.Queue[Message] | None = None
        self._lifespan_out: asyncio.Queue[Message] | None = None
        self._lifespan_task: asyncio.Future[None] | None = None

    def call(self, scope: Scope, body: bytes, timeout: float) -> Response:
        """Exchange one request with the app; sendoff's TimeoutError past ``timeout``."""
        loop = self._started(timeout)
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            raise RuntimeError(
                "Internal cannot execute a request against an ASGI app from inside that "
                "app's own requests (it would wait on the loop it blocks)"
            )
        if self._state:
            scope["state"] = dict(self._state)
        future = asyncio.run_coroutine_threadsafe(self._exchange(scope, body), loop)
        try:
            return future.result(timeout)
        except concurrent.futures.TimeoutError:
            future.cancel()
            raise TimeoutError(
                f"the ASGI application did not answer {scope['method']} {scope['path']} "
                f"within {timeout} s"
            ) from None

    async def _exchange(self, scope: Scope, body: bytes) -> Response:
        sent_body = asyncio.Event()
        delivered = False
        start: Message = {}
        chunks: list[bytes] = []

        async def receive() -> Message:
            nonlocal delivered
            if not delivered:
                delivered = True
                return {"type": "http.request", "body": body, "more_body": False}
            await sent_body.wait()
            return {"type": "http.disconnect"}

        async def send(message: Message) -> None:
            if message["type"] == "http.response.start":
                start.update(message)
            elif message["type"] == "http.response.body":
                chunks.append(bytes(message.get("body", b"")))
                if not message.get("more_body", False):
                    sent_body.set()

        try:
            await self.app(scope, receive, send)
        finally:
            sent_body.set()
        if not start:
            raise RuntimeError(f"the ASGI application {self.app!r} sent no response")
        pairs = [
            (bytes(k).decode("latin-1"), bytes(v).decode("latin-1"))
            for k, v in start.get("headers", ())
        ]
        return Response(start["status"], Headers.from_wire(pairs), b"".join(chunks))

    # -- the loop and the lifespan ------------------------------------------------------------
    def _started(self, timeout: float) -> asyncio.AbstractEventLoop:
        loop = self._loop
        if loop is not None:
            return loop
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(
                    target=loop.run_forever, name="sendoff-internal-asgi", daemon=True
                )
                thread.start()
                self._thread = thread
                asyncio.run_coroutine_threadsafe(self._startup(), loop).result(timeout)
                self._loop = loop
            return self._loop

    async def _startup(self) -> None:
        self._lifespan_in = asyncio.Queue()
        self._lifespan_out = asyncio.Queue()
        scope: Scope = {"type": "lifespan", "asgi": dict(ASGI_VERSION), "state": self._state}
        self._lifespan_task = asyncio.ensure_future(
            self.app(scope, self._lifespan_in.get, self._lifespan_out.put)
        )
        reply = await self._lifespan_step("lifespan.startup")
        if reply is not None and reply["type"] == "lifespan.startup.failed":
            raise RuntimeError(f"the ASGI application failed to start: {reply.get('message', '')}")

    async def _lifespan_step(self, kind: str) -> Message | None:
        """Send a lifespan event; the reply, or None when the app has no lifespan support."""
        assert self._lifespan_in is not None
        assert self._lifespan_out is not None
        task = self._lifespan_task
        if task is None or task.done():
            return None
        await self._lifespan_in.put({"type": kind})
        reply: asyncio.Future[Message] = asyncio.ensure_future(self._lifespan_out.get())
        waiting: set[asyncio.Future[Any]] = {reply, task}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if reply in done:
            answer: Message = reply.result()
            return answer
        reply.cancel()
        if task.exception() is not None:  # the ASGI spec's way to say "no lifespan"
            log.debug("ASGI app %r does not support lifespan: %r", self.app, task.exception())
        return None

    def close(self, timeout: float = 5.0) -> None:
        """Run the app's lifespan shutdown and stop the loop."""
        with self._lock:
            loop, thread = self._loop, self._thread
            self._loop = self._thread = None
        if loop is None or thread is None:
            return
        try:
            asyncio.run_coroutine_threadsafe(self._lifespan_step("lifespan.shutdown"), loop).result(
                timeout
            )
        finally:
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
            loop.close()
