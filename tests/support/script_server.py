"""A raw TCP server on loopback whose every connection follows a script.

Unlike :class:`~tests.support.recording_server.RecordingServer`, nothing here is
well-behaved HTTP unless the script says so: a script is a coroutine that gets a
:class:`Peer` for each accepted connection and writes bytes, drips them, writes forever,
closes (FIN) or resets (RST, ``SO_LINGER`` 0) whenever it likes.

Requests are parsed eagerly with httptools as their bytes arrive and recorded in
``server.received`` at once, as a real server reads pipelined requests into its buffer
whether or not it answers them; the script takes them in order with
:meth:`Peer.next_request`. ``Peer.respond`` records what was answered in
``server.answered``, so that tests can tell "received" from "processed".
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httptools

from tests.support.recording_server import wait_for_count

Script = Callable[["Peer"], Awaitable[None]]


@dataclass
class Req:
    """One request as the server read it."""

    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes
    http_version: str
    conn: int
    keep_alive: bool = True

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return ", ".join(values) if values else None


@dataclass
class _Parse:
    url: bytes = b""
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: list[bytes] = field(default_factory=list)


def response(
    body: bytes | str = b"",
    status: int = 200,
    headers: list[tuple[str, str]] | None = None,
    *,
    close: bool = False,
    length: bool = True,
    version: str = "HTTP/1.1",
) -> bytes:
    """The bytes of a complete response (``length=False``: no Content-Length)."""
    data = body.encode() if isinstance(body, str) else body
    lines = [f"{version} {status} {'OK' if status == 200 else 'Status'}"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    if length:
        lines.append(f"Content-Length: {len(data)}")
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + data


def echo(req: Req, *, close: bool = False, body: bool = True) -> bytes:
    """A response naming the request it answers (header and body), so that every
    receipt can be checked to carry its own answer."""
    data = f"echo {req.method} {req.target}".encode()
    return response(data if body else b"", headers=[("X-Echo", req.target)], close=close)


class Peer:
    """The server side of one accepted connection, as a script sees it."""

    def __init__(
        self,
        server: ScriptServer,
        conn: int,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        self.server = server
        self.conn = conn
        self.reader = reader
        self.writer = writer
        self.requests: asyncio.Queue[Req | None] = asyncio.Queue()
        self.served = 0
        self.parsed = 0
        self._parse = _Parse()
        self._parser = httptools.HttpRequestParser(self)
        self._pump = asyncio.get_running_loop().create_task(self._read_forever())

    # -- reading (eager, on a task of its own) ----------------------------------------------
    async def _read_forever(self) -> None:
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                try:
                    self._parser.feed_data(data)
                except httptools.HttpParserError:
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self.requests.put_nowait(None)

    def on_message_begin(self) -> None:
        self._parse = _Parse()

    def on_url(self, url: bytes) -> None:
        self._parse.url += url

    def on_header(self, name: bytes, value: bytes) -> None:
        self._parse.headers.append((name.decode("latin-1"), value.decode("latin-1")))

    def on_body(self, body: bytes) -> None:
        self._parse.body.append(body)

    def on_message_complete(self) -> None:
        parsed = self._parse
        req = Req(
            method=self._parser.get_method().decode(),
            target=parsed.url.decode("latin-1"),
            headers=parsed.headers,
            body=b"".join(parsed.body),
            http_version=self._parser.get_http_version(),
            conn=self.conn,
            keep_alive=self._parser.should_keep_alive(),
        )
        if self.parsed > self.served:  # an earlier one on this connection is unanswered
            with self.server._cond:
                self.server.pipelined += 1
        self.parsed += 1
        self.server._record(self.server.received, req)
        self.requests.put_nowait(req)

    # -- what scripts use -------------------------------------------------------------------
    async def next_request(self) -> Req | None:
        """The next request read on this connection; None once the client closed it."""
        return await self.requests.get()

    async def write(self, data: bytes) -> bool:
        """Write ``data``; False if the client has gone."""
        if self.writer.is_closing():
            return False
        try:
            self.writer.write(data)
            await self.writer.drain()
        except (ConnectionError, OSError):
            return False
        return True

    async def respond(self, req: Req, data: bytes) -> bool:
        """Write ``req``'s answer and record it as answered."""
        self.served += 1
        self.server._record(self.server.answered, req)
        return await self.write(data)

    async def drip(self, data: bytes, every: float = 1.0) -> bool:
        """Write ``data`` one byte every ``every`` seconds (server behaviour, not a test's
        synchronisation); False once the client has gone."""
        for i in range(len(data)):
            if not await self.write(data[i : i + 1]):
                return False
            await asyncio.sleep(every)
        return True

    async def forever(self, block: bytes) -> None:
        """Write ``block`` again and again, as fast as the client reads, until it goes."""
        while await self.write(block):
            pass

    async def client_has_read(self, timeout: float = 10.0) -> None:
        """Wait until every byte written so far has been read by the client application
        (the peer socket's receive queue, seen in /proc/net/tcp, is empty)."""
        deadline = time.monotonic() + timeout
        sock = self.writer.get_extra_info("socket")
        here = sock.getsockname()
        there = sock.getpeername()
        while True:
            if self.writer.transport.get_write_buffer_size() == 0 and _queues_empty(here, there):
                return
            if time.monotonic() > deadline:
                raise AssertionError("the client did not read what the server wrote")
            await asyncio.sleep(0.005)

    def close(self) -> None:
        """Close with a FIN (after what was written), at once: bytes the client sends
        after it make the kernel answer with a RST, which may destroy answers the client
        has not read yet (see :meth:`lingering_close`)."""
        self.writer.close()

    async def lingering_close(self, timeout: float = 10.0) -> None:
        """Close as careful servers do (nginx ``lingering_close``): FIN, then read and
        drop what the client still sends until it closes too, so that no RST destroys
        the answers written before."""
        if self.writer.can_write_eof():
            self.writer.write_eof()
        try:
            await asyncio.wait_for(asyncio.shield(self._pump), timeout)
        except (TimeoutError, asyncio.CancelledError):
            pass
        self.writer.close()

    def reset(self) -> None:
        """Close with a RST: SO_LINGER on with a zero timeout, then close."""
        sock = self.writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.writer.transport.abort()


def _hex_address(address: tuple[str, int]) -> str:
    packed = socket.inet_aton(address[0])
    return f"{int.from_bytes(packed, 'little'):08X}:{address[1]:04X}"


def _queues_empty(server_side: tuple[str, int], client_side: tuple[str, int]) -> bool:
    """True when the server socket has nothing unacknowledged and the client socket has
    nothing unread (IPv4 loopback; /proc/net/tcp)."""
    ours, theirs = _hex_address(server_side), _hex_address(client_side)
    found = 0
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            cols = line.split()
            local, remote, queues = cols[1], cols[2], cols[4]
            tx, rx = (int(x, 16) for x in queues.split(":"))
            if (local, remote) == (ours, theirs):
                found += 1
                if tx:
                    return False
            elif (local, remote) == (theirs, ours):
                found += 1
                if rx:
                    return False
    return found == 2


class ScriptServer:
    """``ScriptServer(script)``: each accepted connection runs ``await script(peer)``; the
    connection is closed when the script returns (unless the script closed it)."""

    def __init__(self, script: Script, host: str = "127.0.0.1") -> None:
        self.script = script
        self.host = host
        self.port = 0
        self.connections = 0
        self.received: list[Req] = []
        self.answered: list[Req] = []
        #: requests that arrived while an earlier one on their connection was unanswered
        self.pipelined = 0
        self._cond = threading.Condition()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.AbstractServer | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def __enter__(self) -> ScriptServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    @property
    def origin(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        ready = threading.Event()
        failure: list[BaseException] = []

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                self._server = loop.run_until_complete(
                    asyncio.start_server(self._accept, self.host, 0, backlog=1024)
                )
                self.port = self._server.sockets[0].getsockname()[1]
            except BaseException as exc:
                failure.append(exc)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="script-server", daemon=True)
        self._thread.start()
        ready.wait(10)
        if failure:
            raise failure[0]

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        with self._cond:
            self.connections += 1
            conn = self.connections
        peer = Peer(self, conn, reader, writer)
        try:
            await self.script(peer)
        except (ConnectionError, OSError, asyncio.CancelledError):
            pass  # the client went, or the server stops
        finally:
            peer._pump.cancel()
            await asyncio.gather(peer._pump, return_exceptions=True)
            if not writer.is_closing():
                writer.close()
            self._tasks.discard(task)

    def stop(self) -> None:
        loop = self._loop
        if loop is None or self._thread is None:
            return

        async def shutdown() -> None:
            assert self._server is not None
            self._server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), loop)
        self._thread.join(10)
        self._loop = None

    # -- what tests read ----------------------------------------------------------------------
    def _record(self, into: list[Req], req: Req) -> None:
        with self._cond:
            into.append(req)
            self._cond.notify_all()

    def wait_for(self, n: int, timeout: float = 10.0) -> list[Req]:
        """Wait until ``n`` requests have been received (AssertionError at the deadline)."""
        return wait_for_count(self._cond, self.received, n, timeout)

    def targets(self, which: str = "received") -> list[str]:
        with self._cond:
            return [r.target for r in getattr(self, which)]


async def keep_alive_echo(peer: Peer) -> None:
    """A well-behaved keep-alive server: every request answered with its echo, in order."""
    while (req := await peer.next_request()) is not None:
        if not await peer.respond(req, echo(req, body=req.method != "HEAD")):
            return
