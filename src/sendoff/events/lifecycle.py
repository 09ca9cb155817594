"""The request lifecycle: its events (before, headers, progress, complete, error, end)
and the Transaction, one request's way through them as a bounded state machine.

States are ``before`` -> (transport) -> ``complete`` or ``error`` -> ``end``; listeners
may intercept (skip or replace the transfer) or retry (back to ``before``). A client
drives the machine: :meth:`Transaction.start` runs ``before`` and answers ``SEND`` (do
the transfer, then call :meth:`~Transaction.succeeded` or :meth:`~Transaction.failed`)
or ``DONE``. Blocking clients loop on it; the fire-and-forget engine resumes it from its
own thread.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, Protocol

from ..core.emitter import Emitter, Event, emit_merged
from ..core.errors import TooManyTransitions
from ..core.log import logger

if TYPE_CHECKING:
    from ..http.models import Request, Response

SEND: Final = "send"
DONE: Final = "done"

#: Transitions one request may take before it is declared an endless loop.
MAX_TRANSITIONS = 200


class LifecycleClient(Protocol):
    """What the lifecycle needs of the client executing a request: its listeners and
    its default timeout (every sendoff client has both)."""

    emitter: Emitter
    timeout: float


class RequestEvent(Event):
    """An event about one request's transfer; its fields come from the transaction."""

    __slots__ = ("transaction",)

    def __init__(self, transaction: Transaction) -> None:
        Event.__init__(self)
        self.transaction = transaction

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request!r} try={self.retry_count}>"

    @property
    def request(self) -> Request[Any]:
        return self.transaction.request

    @property
    def client(self) -> LifecycleClient:
        return self.transaction.client

    @property
    def response(self) -> Response | None:
        return self.transaction.response

    @property
    def exception(self) -> BaseException | None:
        return self.transaction.exception

    @property
    def retry_count(self) -> int:
        return self.transaction.retry_count

    @property
    def transfer_info(self) -> dict[str, Any]:
        """Timings, byte counts and the remote address of the last transfer attempt."""
        return self.transaction.transfer_info


class _Interceptable(RequestEvent):
    __slots__ = ()

    def intercept(self, response: Response) -> None:
        """Use ``response`` as the request's response and stop propagation."""
        self.transaction.intercept(response)
        self._stopped = True


class _Retryable(_Interceptable):
    __slots__ = ()

    def retry(self, delay: float = 0.0) -> None:
        """Send the request again (from ``before``) after ``delay`` seconds."""
        self.transaction.request_retry(delay)
        self._stopped = True


class BeforeEvent(_Interceptable):
    """Emitted before the request is sent; ``intercept(response)`` skips the transport."""

    __slots__ = ()


class HeadersEvent(RequestEvent):
    """Emitted when the status and headers are in, before the body is read.

    Set :attr:`sink` to any object with ``write(bytes)`` to receive the body instead of
    ``response.body`` (which then stays empty). It cannot be intercepted.
    """

    __slots__ = ()

    @property
    def sink(self) -> Any:
        return self.transaction.sink

    @sink.setter
    def sink(self, writable: Any) -> None:
        if not callable(getattr(writable, "write", None)):
            raise TypeError("a body sink needs a write(bytes) method")
        self.transaction.sink = writable


class ProgressEvent(RequestEvent):
    """Emitted while bytes move, only when somebody listens for ``progress``."""

    __slots__ = ("download_total", "downloaded", "upload_total", "uploaded")

    def __init__(
        self,
        transaction: Transaction,
        upload_total: int,
        uploaded: int,
        download_total: int | None,
        downloaded: int,
    ) -> None:
        super().__init__(transaction)
        self.upload_total = upload_total
        self.uploaded = uploaded
        self.download_total = download_total
        self.downloaded = downloaded


class CompleteEvent(_Retryable):
    """Emitted with the full response; ``intercept`` replaces it, ``retry`` re-sends."""

    __slots__ = ()


class ErrorEvent(_Retryable):
    """Emitted when the transfer or a listener failed; :attr:`exception` says why.

    ``intercept(response)`` clears the error and goes on to ``complete``.
    """

    __slots__ = ()


class EndEvent(RequestEvent):
    """Emitted exactly once per request, last, with the final response or exception."""

    __slots__ = ()


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
        self,
        client: LifecycleClient,
        request: Request[Any],
        max_transitions: int = MAX_TRANSITIONS,
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
        if self.client.emitter.has_listeners(name):
            return True
        own = self.request.emitter_or_none()
        return own is not None and own.has_listeners(name)

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
        emit_merged(
            name, event, self.client.emitter, self.request.emitter_or_none(), self._once_seen
        )
