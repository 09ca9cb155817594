"""One non-blocking HTTP/1.1 connection: connect, TLS, write, parse.

Responses are parsed with httptools (llhttp): content-length, chunked and
close-delimited bodies, 1xx interim responses (skipped), and bodiless answers (HEAD,
204, 304). A connection knows no pool and no reactor: it reports to its owner through
:class:`ConnectionOwner` and asks its loop for polling through :class:`Loop`.

Every exchange ends in bounded time and memory: ``timeout`` bounds the connect and
each wait for bytes, the job's ``expires`` bounds the whole exchange, the response head
and a body somebody will read are capped (:class:`Limits`), and a body nobody will read
is counted and dropped as it streams. A response cut off before its end is a
:class:`~sendoff.ProtocolError`, never an answer.
"""

from __future__ import annotations

import errno
import os
import socket
import ssl
from collections import deque
from typing import Any, NamedTuple, Protocol

import httptools

from ..core import errors
from ..transports.exchange import Exchange
from .job import RESENT, Answer, Job

READ = 0x001  # select.POLLIN / EPOLLIN
WRITE = 0x004  # select.POLLOUT / EPOLLOUT
CONNECTING, HANDSHAKING, OPEN, CLOSED = range(4)
RECV_SIZE = 64 * 1024  # larger reads cost an mmap per call
_NOT_YET = (BlockingIOError, InterruptedError, ssl.SSLWantReadError, ssl.SSLWantWriteError)

#: Default caps: bytes of a response's status line and headers, and of a body somebody
#: will read (a body nobody reads is not kept, whatever its size).
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024


class Limits(NamedTuple):
    """Caps on what one response may hold in memory."""

    head: int = MAX_HEAD
    body: int = MAX_BODY


class Loop(Protocol):
    """What a connection needs of the loop that polls it."""

    now: float
    sweep_at: float

    def watch(self, fd: int, handler: Any, events: int) -> None: ...

    def unwatch(self, fd: int) -> None: ...


class ConnectionOwner(Protocol):
    """What a connection reports, and to whom (its pool)."""

    def opened(self, conn: Connection) -> None:
        """Connected (and TLS done): it can take jobs."""

    def answered(self, conn: Connection, job: Job, answer: Answer) -> None:
        """A whole response arrived for ``job``."""

    def committed(self, conn: Connection) -> None:
        """The head of the answer in flight came in and keeps the connection open (it is
        keep-alive and frames its body): a request may now be pipelined behind it."""

    def lost(
        self,
        conn: Connection,
        failed: list[tuple[Job, BaseException]],
        resend: list[Job],
        connecting: bool,
    ) -> None:
        """The connection ended with jobs unanswered: ``failed`` end with their error,
        ``resend`` saw not one byte of their response and may be sent again;
        ``connecting`` says it never opened."""

    def closed(self, conn: Connection) -> None:
        """The connection is closed and forgets its owner."""


class _HeadDone(Exception):
    """Raised from the parser to end a HEAD response at its headers."""


class _Unasked(Exception):
    """Raised from the parser: a response arrived that no request is waiting for."""


class _Lean:
    """The parser callbacks of an answer nobody will read: its status and framing are
    all that matters, so the parser calls back twice per response instead of once per
    header and body chunk."""

    __slots__ = ("on_headers_complete", "on_message_complete")

    def __init__(self, conn: Connection) -> None:
        self.on_headers_complete = conn.on_lean_headers_complete
        self.on_message_complete = conn.on_message_complete


class Connection:
    """A keep-alive connection to one origin, carrying one request at a time or, once the
    server has shown it keeps connections, several pipelined."""

    __slots__ = (
        "_answers",
        "_body",
        "_body_size",
        "_committed",
        "_exchange",
        "_full",
        "_head_done",
        "_head_size",
        "_headers",
        "_keep",
        "_lean",
        "_reason",
        "addresses",
        "closing",
        "deadline",
        "early",
        "fd",
        "host",
        "idle_timeout",
        "inflight",
        "label",
        "last_blocks",
        "last_unsafe",
        "limits",
        "loop",
        "out",
        "owner",
        "parser",
        "port",
        "responding",
        "served",
        "server_closed",
        "sock",
        "ssl_context",
        "state",
        "timeout",
        "wants",
    )

    def __init__(
        self,
        owner: ConnectionOwner,
        loop: Loop,
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None,
        limits: Limits,
        idle_timeout: float,
        label: str = "",
        early: bool = False,
    ) -> None:
        self.owner = owner
        self.loop = loop
        self.host = host
        self.port = port
        self.ssl_context = ssl_context
        self.limits = limits
        self.idle_timeout = idle_timeout
        self.label = label or f"{host}:{port}"
        self.inflight: deque[Job] = deque()
        self.sock: Any = None
        self.fd = -1
        self.state = CONNECTING
        self.parser: Any = None
        self.out = b""
        self.wants = 0
        self.served = 0
        self.responding = False  # a byte of the current response has arrived
        self.closing = False  # the server or a request ends the connection after this answer
        self.server_closed = False  # the server ended it without being asked to
        self.last_blocks = False  # the last job sent may have nothing pipelined behind it
        self.last_unsafe = False  # the last job sent is not idempotent (POST, PATCH)
        #: tell the owner when an answer's head commits to keep the connection
        self.early = early
        self.timeout = 0.0
        self.deadline = float("inf")
        self.addresses: list[tuple[Any, ...]] = []
        self._reason = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._body: list[bytes] = []
        self._body_size = 0
        self._head_size = 0
        self._head_done = False
        self._committed = False
        self._keep = True
        self._exchange: Exchange | None = None
        self._full: Any = None
        self._lean: Any = None
        self._answers: list[tuple[Job, Answer]] = []

    def __repr__(self) -> str:
        return f"<Connection {self.label} fd={self.fd} state={self.state}>"

    # -- opening ----------------------------------------------------------------------------
    def connect(self, addresses: list[tuple[Any, ...]], first: Job, blocks: bool = False) -> None:
        """Start a non-blocking connect to the first of ``addresses`` (getaddrinfo tuples),
        trying the next on failure, for ``first``, which is written once it is open.
        ``first``'s timeout bounds the connect, and so does its deadline."""
        self.addresses = list(addresses)
        now = self.loop.now
        first.expires = now + first.limit
        self.timeout = first.timeout
        self.inflight.append(first)
        self.last_blocks = blocks
        self._set_deadline(min(now + first.timeout, first.expires))
        self._connect_next(None)

    def _connect_next(self, last_error: BaseException | None) -> None:
        if self.sock is not None:
            self._drop_socket()
        if not self.addresses:
            self._lost_connecting(errors.ConnectError, last_error or "no address to connect to")
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
        self._want(WRITE)

    def _connected(self) -> None:
        code = self.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            self._connect_next(OSError(code, errno.errorcode.get(code, str(code))))
            return
        if self.ssl_context is None:
            self._opened()
            return
        try:  # the TLS socket keeps the descriptor, so the poller keeps watching it
            self.sock = self.ssl_context.wrap_socket(
                self.sock, server_hostname=self.host, do_handshake_on_connect=False
            )
        except (ssl.SSLError, OSError, ValueError) as exc:
            self._lost_connecting(errors.TLSError, exc)
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
            self._lost_connecting(errors.TLSError, exc)
        except OSError as exc:
            self._lost_connecting(errors.ConnectError, exc)
        else:
            self._opened()

    def _opened(self) -> None:
        self.state = OPEN
        self._full = httptools.HttpResponseParser(self)
        self._lean = httptools.HttpResponseParser(_Lean(self))
        self.parser = self._full
        self._want(READ)
        first = self.inflight[0]
        self._set_deadline(min(self.loop.now + first.timeout, first.expires))
        self._write(first.wire)
        if self.state == OPEN:
            self.owner.opened(self)

    # -- writing ----------------------------------------------------------------------------
    def accepts(self, trusted: bool = False) -> bool:
        """True if a job may be written now.

        Behind requests in flight (pipelining) only when the server has already answered
        one on this connection, nothing in flight forbids it (a HEAD, HTTP/1.0 or
        ``Connection: close`` request), and either the answer in flight has shown its
        head and committed to keep the connection, with nothing else behind it, or the
        origin is ``trusted`` (and the last request is idempotent). Without that, a
        server that closes after an answer resets the connection over the requests it
        has not read, and the answer is lost with them (RFC 9112, section 9.6).
        """
        if self.state != OPEN or self.closing or self.last_blocks:
            return False
        inflight = self.inflight
        if not inflight:
            return True
        if self.served == 0:
            return False
        if trusted and not self.last_unsafe:
            return True
        return len(inflight) == 1 and self._committed

    def send(self, job: Job, blocks: bool = False) -> None:
        """Write ``job`` behind what is in flight; ``blocks`` says nothing may follow it
        on this connection (HEAD, HTTP/1.0, ``Connection: close``)."""
        inflight = self.inflight
        loop = self.loop
        expires = job.expires = loop.now + job.limit
        if not inflight:
            self.timeout = job.timeout
            if not self.early:  # between two answers: the parser may change
                ref = job.receipt
                wanted = job.txn is not None or (ref is not None and ref() is not None)
                self.parser = self._full if wanted else self._lean
            deadline = loop.now + job.timeout
            if deadline > expires:
                deadline = expires
            self.deadline = deadline
            if deadline < loop.sweep_at:
                loop.sweep_at = deadline
        inflight.append(job)
        self.last_blocks = blocks
        if self.early:
            self.last_unsafe = not job.idempotent
        if self.out:
            self.out += job.wire
            return
        self._write(job.wire)

    def _write(self, data: bytes) -> None:
        try:
            # os.write: the send() syscall without the socket object's checks
            sent = os.write(self.fd, data) if self.ssl_context is None else self.sock.send(data)
        except _NOT_YET:
            sent = 0
        except OSError as exc:
            self._lost(errors.ProtocolError, f"connection lost ({exc})", resend=True)
            return
        if sent < len(data):
            self.out = data[sent:]
            self._want(READ | WRITE)
        elif self.out:
            self.out = b""
            self._want(READ)

    # -- events from the loop ---------------------------------------------------------------
    def on_event(self, events: int) -> None:
        state = self.state
        if state == OPEN:
            if events & WRITE:
                if self.out:
                    self._write(self.out)
                if not events & ~WRITE or self.state != OPEN:
                    return
            self._read()
            return
        elif state == CONNECTING:
            self._connected()
        elif state == HANDSHAKING:
            self._handshake()

    def expired(self, now: float) -> None:
        """The deadline passed: connecting, waiting for bytes, or idle too long."""
        if self.state in (CONNECTING, HANDSHAKING):
            self._lost_connecting(errors.TimeoutError, "timed out connecting")
        elif self.inflight:
            if now >= self.inflight[0].expires:
                reason = "the response did not complete within the request's deadline"
            else:
                reason = "timed out waiting for the response"
            self._lost(errors.TimeoutError, reason, resend=False)
        else:
            self.close()

    def on_failure(self, error: BaseException) -> None:
        """A bug surfaced while handling this connection: end what it carries."""
        if self.state in (CONNECTING, HANDSHAKING):
            self._lost_connecting(errors.ProtocolError, f"internal error: {error!r}")
        else:
            self._lost(errors.ProtocolError, f"internal error: {error!r}", resend=False)

    def _read(self) -> None:
        try:
            if self.ssl_context is None:
                data = os.read(self.fd, RECV_SIZE)  # recv(), minus the socket's checks
            else:
                sock = self.sock
                data = sock.recv(RECV_SIZE)
                while sock.pending():
                    data += sock.recv(RECV_SIZE)
        except _NOT_YET:
            return
        except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
            data = b""
        except OSError as exc:
            self._lost(errors.ProtocolError, f"connection lost ({exc})", resend=True)
            return
        if not data:
            self._eof()
            return
        inflight = self.inflight
        if not inflight:  # bytes nobody asked for: the server is confused
            self.close()
            return
        self.responding = True
        loop = self.loop
        deadline = loop.now + self.timeout
        expires = inflight[0].expires
        if deadline > expires:
            deadline = expires
        self.deadline = deadline
        if deadline < loop.sweep_at:
            loop.sweep_at = deadline
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserCallbackError as exc:
            self.closing = True  # nothing more goes on this connection...
            self._report()  # ...but the answers that came whole before the fault count
            cause = exc.__context__
            if isinstance(cause, _HeadDone | _Unasked):
                self.close_after_answer()  # after a HEAD, or bytes nobody asked for
                return
            if isinstance(cause, errors.TransportError):  # a cap was exceeded
                self._lost(type(cause), str(cause), resend=False)
                return
            listener = self._exchange.listener_error if self._exchange is not None else None
            if listener is not None and cause is listener:
                self._lost_with(listener)
                return
            raise
        except httptools.HttpParserUpgrade:
            self.closing = True
            self._report()
            self._lost(errors.ProtocolError, "the server switched protocols", resend=False)
            return
        except httptools.HttpParserError as exc:
            self.closing = True
            self._report()
            self._lost(errors.ProtocolError, f"invalid response: {exc}", resend=False)
            return
        if self._answers:
            # Reported only now that the parser has taken the whole read: a byte after an
            # answer with nothing in flight behind it was unasked (and closed the
            # connection above), never the answer of a request sent in the meantime.
            self._report()
        if self.state != OPEN:
            return
        if self._head_done or not self.responding:
            self._head_size = 0
        else:  # still in a response's head: bound what the parser buffers for it
            self._head_size += len(data)
            if self._head_size > self.limits.head:
                self._lost(
                    errors.ProtocolError,
                    f"the response head exceeds {self.limits.head} bytes",
                    resend=False,
                )
                return
        if self.closing and not self.responding:
            self.close_after_answer()
        elif self.early and self._committed and inflight:
            self.owner.committed(self)

    def _report(self) -> None:
        """Tell the owner about the answers that came whole in the last read."""
        answers, self._answers = self._answers, []
        for job, answer in answers:
            self.owner.answered(self, job, answer)

    def close_after_answer(self) -> None:
        """The last answer said the connection ends: requests pipelined behind it were
        never read by the server, so they may be sent again; then close."""
        if self.inflight:
            self._lost(
                errors.ProtocolError,
                "the server closed the connection after an earlier response",
                resend=True,
            )
        else:
            self.close()

    def _eof(self) -> None:
        if self.responding and self._head_done and self._is_close_delimited():
            self.on_message_complete()  # the body ran until the server closed
            self.closing = True
            self._report()
            if not self.inflight:
                self.close()
                return
        if self.responding:
            self._lost(
                errors.ProtocolError, "the response was cut off by the server", resend=False
            )
        else:
            self._lost(
                errors.ProtocolError,
                "the server closed the connection before the response",
                resend=True,
            )

    def _is_close_delimited(self) -> bool:
        """True if the body runs until the server closes: no Content-Length, and no
        Transfer-Encoding whose last coding is chunked (RFC 9112, section 6.3)."""
        if self.parser is None or self.parser.get_status_code() < 200:
            return False
        codings = b""
        for name, value in self._headers:
            low = name.lower()
            if low == b"content-length":
                return False
            if low == b"transfer-encoding":
                codings += b"," + value
        return codings.rsplit(b",", 1)[-1].strip().lower() != b"chunked"

    # -- httptools callbacks ----------------------------------------------------------------
    def on_message_begin(self) -> None:
        self.responding = True
        self._reason = b""
        self._headers = []
        self._body = []
        self._body_size = 0
        self._head_size = 0
        self._head_done = False
        self._committed = False
        self._keep = True
        self._exchange = None

    def on_status(self, reason: bytes) -> None:
        self._reason += reason  # called once per read the status line spans

    def on_header(self, name: bytes, value: bytes) -> None:
        self._headers.append((name, value))

    def on_lean_headers_complete(self) -> None:
        """:meth:`on_headers_complete` of an answer nobody will read."""
        if self.parser.get_status_code() < 200:
            return
        inflight = self.inflight
        if not inflight:
            raise _Unasked
        self._head_done = True
        self._keep = False
        if inflight[0].head:
            self.on_message_complete()
            raise _HeadDone

    def on_headers_complete(self) -> None:
        status = self.parser.get_status_code()
        if status < 200:
            return
        if not self.inflight:
            raise _Unasked
        self._head_done = True
        self._committed = self.early and bool(self.parser.should_keep_alive())
        job = self.inflight[0]
        txn = job.txn
        if txn is not None:
            assert job.prepared is not None
            exchange = self._exchange = Exchange("engine", job.prepared, txn, self.limits.body)
            exchange.head(
                status,
                self._reason.decode("latin-1"),
                [(k.decode("latin-1"), v.decode("latin-1")) for k, v in self._headers],
                "HTTP/" + self.parser.get_http_version(),
            )
        else:
            self._keep = job.wanted()
        if job.head:
            self.on_message_complete()
            raise _HeadDone

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._exchange is not None:
            if self._body_size > self.limits.body:
                raise self._too_big()
            self._exchange.feed(body)
        elif self._keep:
            if self._body_size > self.limits.body:
                raise self._too_big()
            self._body.append(body)

    def _too_big(self) -> errors.ProtocolError:
        return errors.ProtocolError(f"the response body exceeds {self.limits.body} bytes")

    def on_message_complete(self) -> None:
        parser = self.parser
        status = parser.get_status_code()
        if status < 200 or not self.responding:
            return  # an interim 1xx answer; the real one follows
        self.responding = False
        self._head_done = False
        job = self.inflight.popleft()
        self.served += 1
        asked = job.head or (self.early and job.closes())  # we end it after this answer
        if not parser.should_keep_alive():
            self.closing = True
            self.server_closed = not asked  # the server chose to end the connection
        elif asked:
            self.closing = True
        exchange = self._exchange
        self._exchange = None
        answer: Answer
        if exchange is not None:
            answer = exchange.finish(self.peer())
        elif self._keep:
            body = self._body
            answer = (
                status,
                self._reason,
                self._headers,
                body[0] if len(body) == 1 else b"".join(body),
                "HTTP/" + parser.get_http_version(),
            )
        else:
            answer = (status, b"", [], b"", "")
        if self.inflight:
            following = self.inflight[0]
            self.timeout = following.timeout
            self._set_deadline(min(self.loop.now + following.timeout, following.expires))
        else:
            self.last_blocks = self.last_unsafe = False
            self.deadline = self.loop.now + self.idle_timeout  # later: the sweep knows sooner
        self._committed = False
        self._answers.append((job, answer))

    def peer(self) -> Any:
        try:
            return self.sock.getpeername()[:2]
        except (OSError, AttributeError):
            return None

    # -- endings ----------------------------------------------------------------------------
    def _lost_connecting(self, cls: type[errors.TransportError], reason: object) -> None:
        jobs = list(self.inflight)
        self.inflight.clear()
        self.close(report=False)
        failed: list[tuple[Job, BaseException]] = [(job, job.error(cls, reason)) for job in jobs]
        self.owner.lost(self, failed, [], True)
        self.owner.closed(self)

    def _lost(self, cls: type[errors.TransportError], reason: object, *, resend: bool) -> None:
        """Close and end what is in flight.

        With ``resend`` (the server closed or reset the connection), an idempotent job
        (not POST or PATCH: at most once is the promise) that saw no byte of its response
        goes back once, if this connection had already carried a request before it (a
        reused keep-alive connection the server closed under us) or it was pipelined
        behind another. Everything else fails with ``cls(reason)``.
        """
        jobs = list(self.inflight)
        self.inflight.clear()
        responding, served = self.responding, self.served
        self.close(report=False)
        again: list[Job] = []
        failed: list[tuple[Job, BaseException]] = []
        for index, job in enumerate(jobs):
            first_ever = served == 0 and index == 0
            answered = index == 0 and responding
            if (
                resend
                and not answered
                and not first_ever
                and not job.tries & RESENT
                and job.idempotent
            ):
                again.append(job)
            else:
                failed.append((job, job.error(cls, reason)))
        self.owner.lost(self, failed, again, False)
        self.owner.closed(self)

    def _lost_with(self, error: BaseException) -> None:
        """A listener of the head job raised: that job ends with its error."""
        jobs = list(self.inflight)
        self.inflight.clear()
        self.close(report=False)
        failed: list[tuple[Job, BaseException]] = [(jobs[0], error)]
        reason = "the connection was closed after a listener failed on an earlier answer"
        # the server may have read (and answered) what was pipelined behind: not resent
        failed += [(job, job.error(errors.ProtocolError, reason)) for job in jobs[1:]]
        self.owner.lost(self, failed, [], False)
        self.owner.closed(self)

    def close(self, *, report: bool = True) -> None:
        """Close the socket and leave the owner; what is still in flight ends with a
        ProtocolError (it is never left waiting for a connection that is gone)."""
        if self.state == CLOSED:
            return
        if report and self.inflight:
            self._lost(errors.ProtocolError, "the connection was closed", resend=False)
            return
        self.state = CLOSED
        self.parser = None
        self.deadline = float("inf")
        if self.sock is not None:
            self._drop_socket()
        if report:
            self.owner.closed(self)

    def forget(self) -> None:
        """In a forked child: close the inherited socket without a word to the peer (the
        parent still uses the connection) and drop the jobs (the parent's)."""
        self.inflight.clear()
        if self.sock is not None:
            try:
                self.sock.close()  # no shutdown(): that would cut the parent's connection
            except OSError:
                pass
        self.sock, self.state, self.wants, self.fd = None, CLOSED, 0, -1

    def _drop_socket(self) -> None:
        if self.wants:
            self.loop.unwatch(self.fd)
            self.wants = 0
        try:
            self.sock.close()
        except OSError:
            pass
        self.sock = None
        self.fd = -1

    def _want(self, events: int) -> None:
        if events != self.wants:
            self.loop.watch(self.fd, self, events)
            self.wants = events

    def _set_deadline(self, deadline: float) -> None:
        self.deadline = deadline
        loop = self.loop
        if deadline < loop.sweep_at:
            loop.sweep_at = deadline
