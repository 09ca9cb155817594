"""A keep-alive connection pool for one origin: its queue, its connections, its counters.

Callers append to :attr:`Pool.pending` (thread-safe: a deque) and read
:attr:`Pool.accepting`; everything else runs on the engine thread. ``accepting`` says
whether a connection could take a request right now. The engine sets it *before* it
looks at the queue and a caller appends *before* it reads it, so a request is never left
waiting while a connection idles: either the caller sees ``accepting`` and wakes the
engine, or the engine sees the request.
"""

from __future__ import annotations

import socket
from collections import deque
from typing import TYPE_CHECKING, Any

from ..core import errors
from ..transports.tls import ssl_context
from .connection import CLOSED, OPEN, RESOLVING, Connection

if TYPE_CHECKING:
    import ssl

    from ..http.url import URL
    from .engine import Engine
    from .receipt import Receipt
    from .sender import Sender

#: Seconds an unused keep-alive connection stays open (servers close theirs at 2-75 s;
#: a request caught by such a close is re-sent once, see Connection.abort).
IDLE_TIMEOUT = 15.0
#: Seconds a DNS answer (or failure) is reused.
DNS_TTL = 60.0
DNS_FAILURE_TTL = 1.0


class Pool:
    """The connections to one origin (scheme, host, port) of one :class:`Sender`."""

    __slots__ = (
        "accepting",
        "addresses",
        "conns",
        "delivered",
        "dns_error",
        "dns_expires",
        "dropped",
        "engine",
        "failed",
        "host",
        "label",
        "max_conns",
        "pending",
        "pipeline",
        "port",
        "resolving",
        "retried",
        "room",
        "scheme",
        "sender",
        "ssl_context",
        "waiting",
    )

    idle_timeout = IDLE_TIMEOUT

    def __init__(self, sender: Sender, url: URL) -> None:
        settings = sender.settings
        self.sender = sender
        self.engine: Engine = sender.engine
        self.scheme, self.host, self.port = url.origin
        self.label = f"{url.scheme}://{url.host_header}"
        self.pending: deque[Receipt] = deque()
        self.accepting = True
        self.conns: list[Connection] = []
        self.room: list[Connection] = []  # open connections that can take another request
        self.waiting: list[Connection] = []  # connections waiting for DNS
        self.max_conns = settings.connections_per_origin
        self.pipeline = settings.pipeline
        self.ssl_context: ssl.SSLContext | None = (
            ssl_context(settings.verify, settings.ca_bundle) if self.scheme == "https" else None
        )
        self.addresses: list[tuple[Any, ...]] | None = _numeric_addresses(self.host, self.port)
        self.dns_expires = float("inf") if self.addresses else 0.0
        self.dns_error: BaseException | None = None
        self.resolving = False
        self.delivered = self.failed = self.retried = self.dropped = 0

    def __repr__(self) -> str:
        return f"<Pool {self.label} queued={len(self.pending)} conns={len(self.conns)}>"

    # -- handing out requests (engine thread) ----------------------------------------------
    def dispatch(self) -> None:
        """Give queued requests to connections with room, opening connections as allowed."""
        pending, room = self.pending, self.room
        while True:
            self.accepting = bool(room) or len(self.conns) < self.max_conns
            if not pending or not self.accepting:
                return
            if room:
                conn = room.pop()
                self._fill(conn)
                if conn.state == OPEN and self._has_room(conn):
                    room.append(conn)
            else:
                self.sender.active += 1
                self.open([pending.popleft()])

    def open(self, first: list[Receipt], *, resent: bool = False) -> None:
        """Open a connection for ``first`` (taken from the queue, or to be sent again)."""
        if resent:
            self.retried += len(first)
        conn = Connection(self, first)
        self.conns.append(conn)
        self.engine.conns.add(conn)
        self._start(conn)

    def refill(self, conn: Connection) -> None:
        """``conn`` finished a response and has room: give it the next requests."""
        pending = self.pending
        if self.pipeline == 1:  # the hot path: one request per connection at a time
            if pending:
                self.sender.active += 1
                conn.send([pending.popleft()])
                return
            self.room.append(conn)
            self.accepting = True
            if pending:  # a caller appended before it saw accepting: serve it now
                self.engine.ready.append(self)
            return
        if pending:
            if conn in self.room:  # pipelining: it is already offered
                return
            self._fill(conn)
            if conn.state == OPEN and self._has_room(conn):
                self.room.append(conn)
        elif conn not in self.room:
            self.room.append(conn)
            self.accepting = True
            if self.pending:  # a caller appended before it saw accepting: serve it now
                self.engine.ready.append(self)

    def _fill(self, conn: Connection) -> None:
        pending, sender = self.pending, self.sender
        space = self.pipeline - len(conn.inflight)
        if space == 1 and pending:
            sender.active += 1
            conn.send([pending.popleft()])
            return
        batch: list[Receipt] = []
        while pending and space > 0:
            head = pending[0].wire.startswith(b"HEAD ")
            if head and (batch or conn.inflight):
                break  # a HEAD goes alone: nothing may be pipelined behind its bodiless answer
            sender.active += 1
            batch.append(pending.popleft())
            space = 0 if head else space - 1
        if batch:
            conn.send(batch)

    def _has_room(self, conn: Connection) -> bool:
        inflight = conn.inflight
        if len(inflight) >= self.pipeline:
            return False
        return not inflight or not inflight[-1].wire.startswith(b"HEAD ")

    # -- connection lifecycle (engine thread) ----------------------------------------------
    def _start(self, conn: Connection) -> None:
        now = self.engine.now
        if self.addresses is not None and now < self.dns_expires:
            conn.connect(self.addresses)
        elif self.dns_error is not None and now < self.dns_expires:
            conn.fail_connect(errors.ConnectError, self.dns_error)
        else:
            self.waiting.append(conn)
            if not self.resolving:
                self.resolving = True
                self.engine.resolve(self)

    def resolved(
        self, addresses: list[tuple[Any, ...]] | None, error: BaseException | None
    ) -> None:
        """The resolver's answer: connect the connections that waited for it."""
        self.resolving = False
        self.addresses, self.dns_error = addresses, error
        self.dns_expires = self.engine.now + (DNS_TTL if addresses else DNS_FAILURE_TTL)
        waiting, self.waiting = self.waiting, []
        for conn in waiting:
            if conn.state != RESOLVING:
                continue  # it timed out meanwhile
            if addresses:
                conn.connect(addresses)
            else:
                conn.fail_connect(errors.ConnectError, f"cannot resolve {self.host!r}: {error}")

    def opened(self, conn: Connection, first: list[Receipt]) -> None:
        if first:
            conn.send(first)
        if conn.state == OPEN and self._has_room(conn):
            self.refill(conn)

    def closed(self, conn: Connection) -> None:
        if conn in self.room:
            self.room.remove(conn)
        try:
            self.conns.remove(conn)
        except ValueError:
            pass
        self.engine.conns.discard(conn)
        if self.pending:
            self.engine.ready.append(self)
        else:
            self.accepting = True

    def close_all(self) -> None:
        for conn in list(self.conns):
            conn.close()

    def reset_after_fork(self) -> list[Receipt]:
        """In a forked child: close the inherited sockets (the parent keeps using its
        own), empty the queue and zero the counters; return the parent's receipts."""
        inherited = list(self.pending)
        self.pending.clear()
        for conn in self.conns:
            inherited.extend(conn.first)
            inherited.extend(conn.inflight)
            if conn.sock is not None:
                try:
                    conn.sock.close()  # no shutdown(): that would cut the parent's connection
                except OSError:
                    pass
            conn.sock, conn.state, conn.wants = None, CLOSED, 0
        self.conns, self.room, self.waiting = [], [], []
        self.accepting, self.resolving = True, False
        self.delivered = self.failed = self.retried = self.dropped = 0
        return inherited

    # -- reporting ---------------------------------------------------------------------------
    def in_flight(self) -> int:
        return sum(len(c.inflight) + len(c.first) for c in self.conns)

    def counters(self) -> dict[str, int]:
        return {
            "queued": len(self.pending),
            "in_flight": self.in_flight(),
            "delivered": self.delivered,
            "failed": self.failed,
            "dropped": self.dropped,
            "retried": self.retried,
        }


def _numeric_addresses(host: str, port: int) -> list[tuple[Any, ...]] | None:
    """getaddrinfo for an IP literal (no DNS involved), else None."""
    try:
        return socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST
        )
    except socket.gaierror:
        return None
