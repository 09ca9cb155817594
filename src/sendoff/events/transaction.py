"""The transaction: one request's way through its lifecycle, as a bounded state machine.

States are ``before`` -> (transport) -> ``complete`` or ``error`` -> ``end``; listeners
may intercept (skip or replace the transfer) or retry (back to ``before``). A client
drives the machine: :meth:`Transaction.start` runs ``before`` and answers ``SEND`` (do
the transfer, then call :meth:`succeeded` or :meth:`failed`) or ``DONE``. Blocking clients
loop on it; the fire-and-forget engine resumes it from its own thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

from .._logging import logger
from ..errors import TooManyTransitions
from .emitter import emit_merged
from .lifecycle import (
    BeforeEvent,
    CompleteEvent,
    EndEvent,
    ErrorEvent,
    HeadersEvent,
    ProgressEvent,
    RequestEvent,
)

if TYPE_CHECKING:
    from ..clients.base import Client
    from ..http.request import Request
    from ..http.response import Response

SEND: Final = "send"
DONE: Final = "done"

#: Transitions one request may take before it is declared an endless loop.
MAX_TRANSITIONS = 200


class Transaction:
    """One request's lifecycle. ``meta`` is scratch space for subscribers (counters)."""

    __slots__ = (
        "_intercepted",
        "_once_seen",
        "_retry",
        "client",
        "exception",
        "max_transitions",
        "meta",
        "original",
        "request",
        "response",
        "retry_count",
        "retry_delay",
        "sink",
        "transfer_info",
        "transitions",
    )

    def __init__(
        self, client: Client, request: Request, max_transitions: int = MAX_TRANSITIONS
    ) -> None:
        self.client = client
        self.request = request
        self.original = request
        self.response: Response | None = None
        self.exception: BaseException | None = None
        self.retry_count = 0
        self.retry_delay = 0.0
        self.transfer_info: dict[str, Any] = {}
        self.transitions = 0
        self.max_transitions = max_transitions
        self.meta: dict[str, Any] = {}
        self.sink: Any = None
        self._intercepted = False
        self._retry: float | None = None
        self._once_seen: set[Any] = set()  # the client's once listeners run once per request

    # -- what listeners call through their events ---------------------------------------
    def intercept(self, response: Response) -> None:
        if response.request is None:
            response.request = self.request
        self.response = response
        self._intercepted = True

    def request_retry(self, delay: float) -> None:
        self._retry = max(0.0, float(delay))

    # -- hooks for transports -----------------------------------------------------------
    def wants(self, name: str) -> bool:
        """True if any listener (client's or request's) waits for ``name``."""
        if name in self.client.emitter._entries:
            return True
        own = self.request._emitter
        return own is not None and name in own._entries

    def headers_received(self, response: Response) -> Any:
        """Emit ``headers``; return the body sink a listener chose, or None."""
        self.sink = None
        if self.wants("headers"):
            self.response = response
            self._emit("headers", HeadersEvent(self))
        return self.sink

    def progress(
        self, upload_total: int, uploaded: int, download_total: int | None, downloaded: int
    ) -> None:
        """Emit ``progress`` (transports call it only when :meth:`wants` says so)."""
        self._emit(
            "progress", ProgressEvent(self, upload_total, uploaded, download_total, downloaded)
        )

    # -- what drivers call ----------------------------------------------------------------
    def start(self) -> str:
        """Run ``before``; SEND if the request must now be transferred, else DONE."""
        return self._run("before")

    def succeeded(self, response: Response) -> str:
        """The transfer produced ``response``; run ``complete`` (and what follows)."""
        self.transfer_info = response.transfer_info
        self.response = response
        self.exception = None
        return self._run("complete")

    def failed(self, exception: BaseException) -> str:
        """The transfer raised ``exception``; run ``error`` (and what follows)."""
        self.transfer_info = getattr(exception, "transfer_info", None) or {}
        self.exception = exception
        return self._run("error")

    def result(self) -> Response:
        """The final response, or raise the final exception."""
        if self.exception is not None:
            raise self.exception
        assert self.response is not None
        return self.response

    # -- the machine ------------------------------------------------------------------------
    def _run(self, state: str) -> str:
        while True:
            if state != "end":
                self.transitions += 1
                if self.transitions > self.max_transitions:
                    self.exception = TooManyTransitions(
                        f"{self.request.method()} {self.request.url(redacted=True)}: more than "
                        f"{self.max_transitions} lifecycle transitions; is a listener "
                        "intercepting or retrying in a loop?"
                    )
                    state = "end"
                    continue
            if state == "before":
                state = self._before()
                if state == SEND:
                    return SEND
            elif state == "complete":
                state = self._after(CompleteEvent, "complete")
            elif state == "error":
                state = self._after(ErrorEvent, "error")
            else:
                self._end()
                return DONE

    def _before(self) -> str:
        self._intercepted = False
        if not self.wants("before"):
            return SEND
        try:
            self._emit("before", BeforeEvent(self))
        except Exception as exc:
            self.exception = exc
            self.response = None
            return "error"
        if self._intercepted:
            self.exception = None
            return "complete"
        return SEND

    def _after(self, kind: type[CompleteEvent] | type[ErrorEvent], name: str) -> str:
        self._intercepted = False
        self._retry = None
        if not self.wants(name):
            return "end"
        try:
            self._emit(name, kind(self))
        except Exception as exc:
            if exc is not self.exception:
                self.exception = exc
            # an exception raised while handling an error ends the request with it
            return "error" if name == "complete" else "end"
        if self._retry is not None:
            self.retry_delay = self._retry
            self.retry_count += 1
            self.response = None
            self.exception = None
            return "before"
        if self._intercepted:
            self.exception = None
            return "complete"
        return "end"

    def _end(self) -> None:
        self.retry_delay = 0.0
        if not self.wants("end"):
            return
        try:
            self._emit("end", EndEvent(self))
        except Exception as exc:
            logger.error(
                "an 'end' listener raised for %s %s",
                self.request.method(),
                self.request.url(redacted=True),
                exc_info=True,
            )
            self.exception = exc

    def _emit(self, name: str, event: RequestEvent) -> None:
        emit_merged(name, event, self.client.emitter, self.request._emitter, self._once_seen)
