"""A real HTTP/1.1 server on loopback that records every request it receives.

It runs an asyncio event loop in a background thread and parses with httptools, so
clients talk to it over real sockets (TCP, optionally TLS). The handler decides each
reply, including faults: slow answers, dropped connections, a keep-alive limit.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TypeVar
from urllib.parse import parse_qsl, urlsplit

import httptools

T = TypeVar("T")


def wait_for_count(
    cond: threading.Condition, received: list[T], n: int, timeout: float
) -> list[T]:
    """Wait on ``cond`` (notified as requests are appended to ``received``) until
    ``received`` holds ``n``; a copy of it then, AssertionError at the deadline."""
    deadline = time.monotonic() + timeout
    with cond:
        while len(received) < n:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"server received {len(received)} of {n} requests")
            cond.wait(left)
        return list(received)


@dataclass
class Recorded:
    """One request as the server received it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str
    connection_id: int
    peer: tuple
    received_at: float = field(default_factory=time.monotonic)

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def query(self) -> list[tuple[str, str]]:
        return parse_qsl(urlsplit(self.target).query, keep_blank_values=True)

    @property
    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("latin-1"), keep_blank_values=True)

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class Reply:
    """What the server answers. ``drop`` closes the connection without answering."""

    status: int = 200
    body: bytes | str = b"ok"
    headers: list[tuple[str, str]] = field(default_factory=list)
    delay: float = 0.0
    close: bool = False
    drop: bool = False
    chunked: bool = False
    informational: int | None = None  # e.g. 103: sent before the final response
    reason: str | None = None
    until_close: bool = False  # no Content-Length: the body ends when the server closes
    hold: threading.Event | None = None  # answer only once this is set (or the server stops)


Handler = Callable[[Recorded], Reply]


def default_handler(req: Recorded) -> Reply:
    return Reply(200, b"ok", [("Content-Type", "text/plain")])


class RecordingServer:
    """Start with ``with RecordingServer() as srv: ... srv.url("/path")``."""

    def __init__(
        self,
        handler: Handler = default_handler,
        *,
        ssl_context: ssl.SSLContext | None = None,
        host: str = "127.0.0.1",
        close_after: int | None = None,
        announce_close: bool = True,
    ) -> None:
        self.handler = handler
        self.ssl_context = ssl_context
        self.host = host
        self.close_after = close_after
        # False: close after ``close_after`` responses without saying "Connection: close",
        # as a keep-alive timeout does, so the client finds out only when it reuses it
        self.announce_close = announce_close
        self.port = 0
        self.received: list[Recorded] = []
        self.connections = 0
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._server: asyncio.AbstractServer | None = None
        self._thread: threading.Thread | None = None
        self._transports: set[asyncio.BaseTransport] = set()

    # -- lifecycle ----------------------------------------------------------------------
    def __enter__(self) -> RecordingServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        ready = threading.Event()
        errors: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
                self._server = loop.run_until_complete(
                    loop.create_server(
                        lambda: _Connection(self), self.host, 0, family=family,
                        ssl=self.ssl_context, backlog=1024,
                    )
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:  # surface bind errors in the caller
                errors.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

        self._thread = threading.Thread(target=run, name="recording-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if errors:
            raise errors[0]

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            for transport in list(self._transports):
                transport.abort()
            await self._server.wait_closed()
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        self._thread.join(10)
        self._loop = None

    # -- what tests use -------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return "https" if self.ssl_context else "http"

    def url(self, path: str = "/", host: str | None = None) -> str:
        name = host or self.host
        if ":" in name:
            name = f"[{name}]"
        return f"{self.scheme}://{name}:{self.port}{path}"

    @property
    def count(self) -> int:
        with self._cond:
            return len(self.received)

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Recorded]:
        """Wait until ``n`` requests have arrived (AssertionError at the deadline)."""
        return wait_for_count(self._cond, self.received, n, timeout)

    def _record(self, req: Recorded) -> None:
        with self._cond:
            self.received.append(req)
            self._cond.notify_all()


class _Connection(asyncio.Protocol):
    def __init__(self, server: RecordingServer) -> None:
        self.server = server
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: asyncio.Queue[Recorded | None] = asyncio.Queue()
        self.worker: asyncio.Task[None] | None = None
        self.served = 0
        self.peer: tuple = ()
        self._reset()

    def _reset(self) -> None:
        self.url = b""
        self.headers: list[tuple[str, str]] = []
        self.body: list[bytes] = []

    # asyncio.Protocol
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.server._transports.add(transport)
        self.server.connections += 1
        self.id = self.server.connections
        self.peer = transport.get_extra_info("peername") or ()
        self.worker = asyncio.get_running_loop().create_task(self._serve())

    def data_received(self, data: bytes) -> None:
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            pass
        except httptools.HttpParserError:
            assert self.transport is not None
            self.transport.write(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n"
                                 b"Connection: close\r\n\r\n")
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.transport is not None:
            self.server._transports.discard(self.transport)
        self.queue.put_nowait(None)

    # httptools callbacks
    def on_message_begin(self) -> None:
        self._reset()

    def on_url(self, url: bytes) -> None:
        self.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_headers_complete(self) -> None:
        expect = [v for k, v in self.headers if k.lower() == "expect"]
        if expect and expect[0].lower() == "100-continue" and self.transport is not None:
            self.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        req = Recorded(
            method=self.parser.get_method().decode(),
            target=self.url.decode("latin-1"),
            headers=self.headers,
            body=b"".join(self.body),
            http_version=self.parser.get_http_version(),
            connection_id=self.id,
            peer=self.peer,
        )
        self.server._record(req)
        self.queue.put_nowait(req)

    async def _serve(self) -> None:
        while True:
            req = await self.queue.get()
            if req is None or self.transport is None or self.transport.is_closing():
                return
            reply = self.server.handler(req)
            if reply.hold is not None:
                await asyncio.get_running_loop().run_in_executor(None, reply.hold.wait, 30)
            if reply.delay:
                await asyncio.sleep(reply.delay)
            if self.transport.is_closing():
                return
            if reply.drop:
                self.transport.close()
                return
            self.served += 1
            limit = self.server.close_after
            at_limit = limit is not None and self.served >= limit
            close = reply.close or reply.until_close or at_limit
            announce = reply.close or (at_limit and self.server.announce_close)
            self.transport.write(_render(req, reply, announce))
            if close:
                self.transport.close()
                return


def _render(req: Recorded, reply: Reply, close: bool) -> bytes:
    body = reply.body.encode() if isinstance(reply.body, str) else reply.body
    reason = reply.reason if reply.reason is not None else _phrase(reply.status)
    out = b""
    if reply.informational:
        out += f"HTTP/1.1 {reply.informational} {_phrase(reply.informational)}\r\n\r\n".encode()
    head = [f"HTTP/1.1 {reply.status} {reason}"]
    head += [f"{k}: {v}" for k, v in reply.headers]
    no_body = req.method == "HEAD" or reply.status in (204, 304) or reply.status < 200
    if reply.chunked and not no_body:
        head.append("Transfer-Encoding: chunked")
        half = len(body) // 2
        payload = b"".join(
            f"{len(part):x}\r\n".encode() + part + b"\r\n" for part in (body[:half], body[half:])
            if part
        ) + b"0\r\n\r\n"
    elif reply.until_close:
        payload = b"" if no_body else body
    else:
        if reply.status not in (204, 304) and not any(
            k.lower() == "content-length" for k, _ in reply.headers
        ):
            head.append(f"Content-Length: {len(body)}")
        payload = b"" if no_body else body
    if close:
        head.append("Connection: close")
    return out + ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + payload


def _phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


def free_port() -> int:
    """A loopback port nobody listens on (connections to it are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
