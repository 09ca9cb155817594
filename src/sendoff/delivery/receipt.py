"""The Receipt: what a fire-and-forget request returns at once, settled later by the engine.

A receipt is also the queued item itself: it holds the request's wire bytes and the pool
that sends them, so that a queued request costs one small slotted object plus its bytes.
The :class:`~sendoff.Response` and :class:`~sendoff.Request` objects are built only when
somebody asks for them.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from ..core.log import redact_url
from ..http.headers import Headers
from ..http.models import Response

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest, Request

#: ``Receipt.tries`` bit: the request was already sent again after a reused keep-alive
#: connection closed under it; it is never sent a third time.
RESENT = 0x100
#: ``Receipt.tries`` mask: how many automatic connect retries it has had.
RETRIES = 0xFF

_event_lock = threading.Lock()

#: (status, reason, raw header pairs, body, http version) as read off the wire.
RawResponse = tuple[int, bytes, list[tuple[bytes, bytes]], bytes, str]


class Receipt:
    """The promise of a fire-and-forget request.

    ``done()`` tells whether it has ended; ``wait(timeout)`` blocks until it has and
    returns the :class:`~sendoff.Response` (None if it failed or was dropped, or if the
    mode reads no response: ``inline`` and ``process``). ``error`` says why it failed.
    """

    __slots__ = (
        "__weakref__",
        "_done",
        "_error",
        "_event",
        "_result",
        "pool",
        "prepared",
        "timeout",
        "tries",
        "txn",
        "wire",
    )

    def __init__(self, wire: bytes, pool: Any, timeout: float) -> None:
        self.wire = wire
        # the Pool that sends it, or (modes without an engine) anything with a .scheme
        self.pool = pool
        self.timeout = timeout
        self.tries = 0
        self._done = False
        self._result: RawResponse | Response | None = None
        self._error: BaseException | None = None
        self._event: threading.Event | None = None
        self.txn: Transaction | None = None
        self.prepared: PreparedRequest | None = None

    def __repr__(self) -> str:
        if not self._done:
            state = "pending"
        elif self._error is not None:
            state = f"failed: {self._error}"
        elif self._result is not None:
            state = f"{self.response.status}"  # type: ignore[union-attr]
        else:
            state = "sent"
        return f"<Receipt {self.method} {self.url} {state}>"

    # -- outcome ---------------------------------------------------------------------------
    def done(self) -> bool:
        """True once the request has ended: delivered, failed or dropped."""
        return self._done

    def wait(self, timeout: float | None = None) -> Response | None:
        """Wait until the request has ended (at most ``timeout`` seconds) and return its
        response, or None when it failed, was dropped, is still going, or its mode reads
        no response. Waiting never raises the request's error: see :attr:`error`."""
        if not self._done:
            event = self._event
            if event is None:
                with _event_lock:
                    if self._event is None:
                        self._event = threading.Event()
                    event = self._event
            if not self._done:  # the engine checks _event after setting _done
                event.wait(timeout)
        return self.response

    @property
    def response(self) -> Response | None:
        """The response, once it has arrived (None before, or if there is none)."""
        result = self._result
        if result is None or isinstance(result, Response):
            return result
        status, reason, pairs, body, version = result
        headers = Headers.from_wire([(k.decode("latin-1"), v.decode("latin-1")) for k, v in pairs])
        response = Response(
            status, headers, body, reason=reason.decode("latin-1"), http_version=version
        )
        response.request = self.request
        self._result = response
        return response

    @property
    def error(self) -> BaseException | None:
        """Why the request failed or was dropped; None if it did not (or has not yet)."""
        return self._error

    @property
    def request(self) -> Request[Any]:
        """The request as it was sent (rebuilt from its wire bytes when nobody listened)."""
        if self.txn is not None:
            return self.txn.request
        from .wire import request_from_wire

        return request_from_wire(self.wire, self._scheme())

    @property
    def method(self) -> str:
        """The request method, read from the request line."""
        return self.wire[: self.wire.find(b" ")].decode("latin-1")

    @property
    def url(self) -> str:
        """The request URL as logs and error messages show it: credentials travel in a
        header, and the values of credential-like query parameters (``api_key``,
        ``token``...) are redacted; ``receipt.request.url()`` has them whole."""
        from .wire import url_from_wire

        return redact_url(url_from_wire(self.wire, self._scheme()))

    def _scheme(self) -> str:
        scheme: str = self.pool.scheme
        return scheme

    # -- what the engine calls -------------------------------------------------------------
    def settle(self, result: RawResponse | Response | None, error: BaseException | None) -> None:
        """End the request with ``result`` or ``error``; for the engine and the modes."""
        self._result = result
        self._error = error
        self._done = True
        event = self._event
        if event is not None:
            event.set()

    def attach(self, txn: Transaction, prepared: PreparedRequest | None) -> None:
        """Tie the request's lifecycle to this receipt (the engine resumes it)."""
        self.txn = txn
        self.prepared = prepared


def settled(
    wire: bytes,
    pool: Any,
    response: Response | None = None,
    error: BaseException | None = None,
) -> Receipt:
    """A receipt that is already done (intercepted, dropped, or sent by another mode)."""
    receipt = Receipt(wire, pool, 0.0)
    receipt.settle(response, error)
    return receipt
