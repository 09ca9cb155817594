"""One non-blocking HTTP/1.1 connection of the engine: connect, TLS, write, parse.

Everything here runs on the engine thread. Responses are parsed with httptools (llhttp):
content-length, chunked and close-delimited bodies, 1xx interim responses (skipped),
and bodiless answers (HEAD, 204, 304).
"""

from __future__ import annotations

import errno
import socket
import ssl
from collections import deque
from typing import TYPE_CHECKING, Any

import httptools

from ..core import errors
from ..transports.exchange import Exchange
from .poller import READ, WRITE
from .receipt import RESENT

if TYPE_CHECKING:
    from .engine import Engine
    from .pool import Pool
    from .receipt import Receipt

RESOLVING, CONNECTING, HANDSHAKING, OPEN, CLOSED = range(5)
RECV_SIZE = 64 * 1024  # larger reads cost an mmap per call
_NOT_YET = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)


class _HeadDone(Exception):
    """Raised from the parser to end a HEAD response at its headers."""


class Connection:
    """A keep-alive connection to one origin, carrying up to ``pool.pipeline`` requests."""

    __slots__ = (
        "_body",
        "_exchange",
        "_headers",
        "_reason",
        "addresses",
        "closing",
        "deadline",
        "engine",
        "fd",
        "first",
        "inflight",
        "out",
        "parser",
        "pool",
        "responding",
        "served",
        "sock",
        "state",
        "wants",
    )

    def __init__(self, pool: Pool, first: list[Receipt]) -> None:
        self.pool = pool
        self.engine: Engine = pool.engine
        self.first = first  # the requests this connection was opened for, sent once it is
        self.inflight: deque[Receipt] = deque()
        self.sock: Any = None
        self.fd = -1
        self.state = RESOLVING
        self.parser: Any = None
        self.out = b""
        self.wants = 0
        self.served = 0
        self.responding = False
        self.closing = False
        self._expect(first[0].timeout)
        self.addresses: list[tuple[Any, ...]] = []
        self._reset_message()

    def __repr__(self) -> str:
        return f"<Connection {self.pool.label} fd={self.fd} state={self.state}>"

    # -- opening ----------------------------------------------------------------------------
    def connect(self, addresses: list[tuple[Any, ...]]) -> None:
        """Start a non-blocking connect to the first of ``addresses`` (getaddrinfo tuples)."""
        self.addresses = list(addresses)
        self._connect_next(None)

    def _connect_next(self, last_error: BaseException | None) -> None:
        if self.sock is not None:
            self._drop_socket()
        if not self.addresses:
            reason = last_error or "no address to connect to"
            self.fail_connect(errors.ConnectError, reason)
            return
        family, socktype, proto, _, address = self.addresses.pop(0)
        try:
            sock = socket.socket(family, socktype, proto)
        except OSError as exc:
            self._connect_next(exc)
            return
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock
        self.fd = sock.fileno()
        self.state = CONNECTING
        code = sock.connect_ex(address)
        if code not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EAGAIN):
            self._connect_next(OSError(code, errno.errorcode.get(code, str(code))))
            return
        self.engine.watch(self, WRITE)

    def _connected(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._connect_next(OSError(code, errno.errorcode.get(code, str(code))))
            return
        context = self.pool.ssl_context
        if context is None:
            self._opened()
            return
        try:  # the TLS socket keeps the descriptor, so the poller keeps watching it
            self.sock = context.wrap_socket(
                self.sock, server_hostname=self.pool.host, do_handshake_on_connect=False
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            self.fail_connect(errors.TLSError, exc)
            return
        self.state = HANDSHAKING
        self._handshake()

    def _handshake(self) -> None:
        try:
            self.sock.do_handshake()
        except ssl.SSLWantReadError:
            self._want(READ)
        except ssl.SSLWantWriteError:
            self._want(WRITE)
        except ssl.SSLError as exc:
            self.fail_connect(errors.TLSError, exc)
        except OSError as exc:
            self.fail_connect(errors.ConnectError, exc)
        else:
            self._opened()

    def _opened(self) -> None:
        self.state = OPEN
        self.parser = httptools.HttpResponseParser(self)
        self._want(READ)
        first, self.first = self.first, []
        self.pool.opened(self, first)

    def fail_connect(self, cls: type[errors.TransportError], reason: object) -> None:
        """The connection could not be opened: fail the request that asked for it."""
        first, self.first = self.first, []
        self.close()
        for item in first:
            self.engine.fail(item, self.engine.error(item, cls, reason), connect_phase=True)

    # -- writing ----------------------------------------------------------------------------
    def send(self, items: list[Receipt]) -> None:
        """Write ``items`` (already taken from the queue) behind what is in flight."""
        if not self.inflight:
            self._expect(items[0].timeout)
        self.inflight.extend(items)
        data = items[0].wire if len(items) == 1 else b"".join(i.wire for i in items)
        if self.out:
            self.out += data
            return
        self._write(data)

    def _write(self, data: bytes) -> None:
        try:
            sent = self.sock.send(data)
        except _NOT_YET:
            sent = 0
        except OSError as exc:
            self.lost(exc)
            return
        if sent < len(data):
            self.out = data[sent:]
            self._want(READ | WRITE)
        elif self.out:
            self.out = b""
            self._want(READ)

    # -- events from the poller -------------------------------------------------------------
    def on_event(self, events: int) -> None:
        state = self.state
        if state == OPEN:
            if events & WRITE and self.out:
                self._write(self.out)
            if events & ~WRITE and self.state == OPEN:
                self._read()
        elif state == CONNECTING:
            self._connected()
        elif state == HANDSHAKING:
            self._handshake()

    def _read(self) -> None:
        sock = self.sock
        try:
            data = sock.recv(RECV_SIZE)
            if self.pool.ssl_context is not None:
                while sock.pending():
                    data += sock.recv(RECV_SIZE)
        except _NOT_YET:
            return
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        except OSError as exc:
            self.lost(exc)
            return
        if not data:
            self._eof()
            return
        if self.inflight:
            self.deadline = self.engine.now + self.inflight[0].timeout
        else:  # bytes nobody asked for: the server is confused, stop using this connection
            self.close()
            return
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            if not isinstance(exc.__context__, _HeadDone):
                raise
            self.parser = httptools.HttpResponseParser(self)
        except httptools.HttpParserUpgrade:
            self.abort(errors.ProtocolError, "the server switched protocols", resend=False)
            return
        except httptools.HttpParserError as exc:
            self.abort(errors.ProtocolError, f"invalid response: {exc}", resend=False)
            return
        if self.closing:
            self.abort(errors.ProtocolError, "the server closed the connection", resend=True)
        elif len(self.inflight) < self.pool.pipeline:
            self.pool.refill(self)

    def _eof(self) -> None:
        if self.responding and self._exchange is None and self._is_close_delimited():
            self.on_message_complete()  # the body ran until the server closed
        self.abort(
            errors.ProtocolError, "the server closed the connection before the response",
            resend=True,
        )

    def _is_close_delimited(self) -> bool:
        if self.parser is None or self.parser.get_status_code() < 200 or not self.inflight:
            return False
        names = {k.lower() for k, _ in self._headers}
        return b"content-length" not in names and b"transfer-encoding" not in names

    # -- httptools callbacks ----------------------------------------------------------------
    def _reset_message(self) -> None:
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._exchange: Exchange | None = None

    def on_message_begin(self) -> None:
        self.responding = True
        self._reset_message()

    def on_status(self, reason: bytes) -> None:
        self._reason = reason

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            return
        item = self.inflight[0]
        if item.txn is not None:
            assert item.prepared is not None
            exchange = self._exchange = Exchange("engine", item.prepared, item.txn)
            exchange.head(
                status,
                self._reason.decode("latin-1"),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._headers],
                "HTTP/" + self.parser.get_http_version(),
            )
        if item.wire.startswith(b"HEAD "):
            self.on_message_complete()
            raise _HeadDone

    def on_body(self, body: bytes) -> None:
        if self._exchange is not None:
            self._exchange.feed(body)
        else:
            self._body.append(body)

    def on_message_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        if status < 200 or not self.responding:
            return  # an interim 1xx answer; the real one follows
        self.responding = False
        item = self.inflight.popleft()
        self.served += 1
        if not parser.should_keep_alive():
            self.closing = True
        exchange = self._exchange
        if exchange is not None:
            self.engine.complete(item, exchange.finish(self.peer()))
        else:
            body = self._body
            self.engine.complete(
                item,
                (
                    status,
                    self._reason,
                    self._headers,
                    body[0] if len(body) == 1 else b"".join(body),
                    "HTTP/" + parser.get_http_version(),
                ),
            )
        self._expect(self.inflight[0].timeout if self.inflight else self.pool.idle_timeout)

    def _expect(self, seconds: float) -> None:
        """Set the deadline for the next byte (or, idle, for closing) ``seconds`` ahead."""
        engine = self.engine
        deadline = self.deadline = engine.now + seconds
        if deadline < engine.sweep_at:
            engine.sweep_at = deadline

    def peer(self) -> Any:
        try:
            return self.sock.getpeername()[:2]
        except OSError:
            return None

    # -- endings ----------------------------------------------------------------------------
    def timed_out(self) -> None:
        """The deadline passed: connecting, waiting for a response, or idle too long."""
        if self.state in (RESOLVING, CONNECTING, HANDSHAKING):
            self.fail_connect(errors.TimeoutError, "timed out connecting")
        elif self.inflight:
            self.abort(errors.TimeoutError, "timed out waiting for the response", resend=False)
        else:
            self.close()

    def lost(self, exc: BaseException) -> None:
        """A send or receive failed: the connection is gone."""
        if self.state != OPEN:
            self.fail_connect(errors.ConnectError, exc)
        else:
            self.abort(errors.ProtocolError, f"connection lost ({exc})", resend=True)

    def abort(self, cls: type[errors.TransportError], reason: object, *, resend: bool) -> None:
        """Close and settle what is in flight.

        With ``resend`` (the server closed or reset the connection), a request that saw
        no byte of its response goes back to the queue once, if this connection had
        already carried a request before it: a reused keep-alive connection the server
        closed under us. Everything else fails with ``cls(reason)``.
        """
        items = list(self.inflight)
        self.inflight.clear()
        responding, served = self.responding, self.served
        self.close()
        engine = self.engine
        again = []
        for index, item in enumerate(items):
            fresh = served == 0 and index == 0
            answered = index == 0 and responding
            if resend and not answered and not fresh and not item.tries & RESENT:
                item.tries |= RESENT
                again.append(item)
            else:
                engine.fail(item, engine.error(item, cls, reason))
        if again:  # on a new connection: the pool's other idle ones may be stale too
            self.pool.open(again, resent=True)

    def close(self) -> None:
        """Close the socket (without settling anything) and leave the pool."""
        if self.state == CLOSED:
            return
        self.state = CLOSED
        self.parser = None
        if self.sock is not None:
            self._drop_socket()
        self.pool.closed(self)

    def _drop_socket(self) -> None:
        self.engine.unwatch(self)
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None
        self.fd = -1

    def _want(self, events: int) -> None:
        if events != self.wants:
            self.engine.watch(self, events)
