"""A job: one request in the engine's hands, from the caller's queue to its outcome.

The caller keeps the :class:`~sendoff.Receipt`; the engine keeps the job, which refers
to the receipt weakly. A receipt nobody holds any more is gone by the time the response
arrives, and the engine then reads that response only for its status and discards the
body as it streams.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Protocol

from ..core.errors import TransportError
from ..core.log import redact_url
from ..http.models import Response

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest
    from ..http.url import URL

#: ``job.tries`` bit: the job was already sent again after a reused keep-alive
#: connection closed under it; it is never sent a third time.
RESENT = 0x100
#: ``job.tries`` mask: how many automatic connect retries it has had.
RETRIES = 0xFF

#: (status, reason, raw header pairs, body, http version) as read off the wire.
RawResponse = tuple[int, bytes, list[tuple[bytes, bytes]], bytes, str]
#: How a job is answered: the raw answer, or the Response its listeners saw.
Answer = RawResponse | Response


class Settles(Protocol):
    """What a job tells its outcome to (a :class:`~sendoff.Receipt`)."""

    def settle(self, result: Answer | None, error: BaseException | None) -> None: ...


class Job:
    """The engine's side of one request (its own bookkeeping; users see the receipt)."""

    __slots__ = (
        "expires",
        "head",
        "limit",
        "prepared",
        "receipt",
        "timeout",
        "tries",
        "txn",
        "url",
        "wire",
    )

    def __init__(
        self,
        wire: bytes,
        url: URL,
        receipt: Settles | None,
        timeout: float,
        limit: float,
        txn: Transaction | None = None,
        prepared: PreparedRequest | None = None,
    ) -> None:
        self.wire = wire
        #: where it goes (its origin picks the pool; the Host header may say otherwise)
        self.url = url
        self.receipt: weakref.ref[Settles] | None = (
            weakref.ref(receipt) if receipt is not None else None
        )
        #: seconds to wait for the connection and for each byte of the response
        self.timeout = timeout
        #: seconds the whole exchange may take once a connection takes it
        self.limit = limit
        #: when it must have ended (monotonic; set when a connection takes it)
        self.expires = float("inf")
        self.tries = 0
        self.txn = txn
        self.prepared = prepared
        #: a HEAD request: its answer has no body whatever its headers say
        self.head = wire.startswith(b"HEAD ")

    def __repr__(self) -> str:
        return f"<Job {self.method} {self.where()}>"

    @property
    def method(self) -> str:
        return self.wire[: self.wire.find(b" ")].decode("latin-1")

    @property
    def target(self) -> str:
        """The request target of the request line (path and query)."""
        wire = self.wire
        start = wire.find(b" ") + 1
        return wire[start : wire.find(b" ", start)].decode("latin-1")

    @property
    def idempotent(self) -> bool:
        """GET, HEAD, PUT, DELETE, OPTIONS, TRACE: sending it twice does no more harm."""
        return not self.wire.startswith((b"POST ", b"PATCH ", b"CONNECT "))

    def where(self) -> str:
        """The URL it goes to, as logs and errors show it: the real target (whatever a
        Host header says), credential-like query values redacted."""
        return redact_url(self.url.origin_text + self.target)

    def error(self, cls: type[TransportError], reason: object) -> TransportError:
        """A ``cls`` error naming the method and :meth:`where`."""
        return cls(f"{self.method} {self.where()}: {reason}")

    def wanted(self) -> bool:
        """True if somebody will read the response: a listener, or a live receipt."""
        if self.txn is not None:
            return True
        ref = self.receipt
        return ref is not None and ref() is not None

    def closes(self) -> bool:
        """True if the request ends its connection: HTTP/1.0, or ``Connection: close``
        (nothing may be pipelined behind it)."""
        wire = self.wire
        line_end = wire.find(b"\r\n")
        if wire[line_end - 8 : line_end] == b"HTTP/1.0":
            return True
        head_end = wire.find(b"\r\n\r\n")
        head = wire[line_end:head_end].lower()
        at = head.find(b"\r\nconnection:")
        while at >= 0:
            end = head.find(b"\r\n", at + 2)
            if b"close" in head[at + 13 : end if end >= 0 else len(head)]:
                return True
            at = end if end < 0 else head.find(b"\r\nconnection:", end)
        return False
