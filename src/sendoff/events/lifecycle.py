"""The request lifecycle events: before, headers, progress, complete, error, end."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .event import Event

if TYPE_CHECKING:
    from ..clients.base import Client
    from ..http.request import Request
    from ..http.response import Response
    from .transaction import Transaction


class RequestEvent(Event):
    """An event about one request's transfer; its fields come from the transaction."""

    __slots__ = ("transaction",)

    def __init__(self, transaction: Transaction) -> None:
        self._stopped = False
        self.name = ""
        self.transaction = transaction

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.request!r} try={self.retry_count}>"

    @property
    def request(self) -> Request:
        return self.transaction.request

    @property
    def client(self) -> Client:
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
