"""The Client base class: runs every request through the event lifecycle."""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Self, TypeVar, cast

from ..core.emitter import Emitter
from ..core.seconds import is_seconds
from ..events.lifecycle import SEND, Transaction
from ..http.models import Response

if TYPE_CHECKING:
    from ..http.models import Request

ResultT = TypeVar("ResultT")


class Client(Generic[ResultT]):
    """Something that can execute a :class:`~sendoff.Request` (Kohana's Request_Client).

    Subclasses implement :meth:`transfer`; the base class runs the lifecycle around it
    (``before``, ``headers``, ``complete``, ``error``, ``end``, with intercept and retry).
    Listeners on :attr:`emitter` apply to every request this client executes.
    ``ResultT`` is what :meth:`execute` returns: a :class:`~sendoff.Response` for
    blocking clients (``class Mine(Client[Response])``), a receipt for the others.
    """

    def __init__(self, *, timeout: float = 30.0) -> None:
        if not is_seconds(timeout):
            raise ValueError(f"timeout must be a positive number of seconds, not {timeout!r}")
        self.timeout = float(timeout)
        self.emitter = Emitter()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} timeout={self.timeout}>"

    def execute(self, request: Request[Any], /) -> ResultT:
        """Execute ``request`` and return its :class:`~sendoff.Response` (blocking);
        clients that do not block override this."""
        return cast(ResultT, self.send(request))

    def send(self, request: Request[Any]) -> Response:
        """Run the lifecycle around :meth:`transfer` in the calling thread."""
        if not self.listened(request):
            return self.transfer(request, None)  # nobody listens: no events to build
        txn = Transaction(self, request)
        step = txn.start()
        while step is SEND:
            if txn.retry_delay:
                time.sleep(txn.retry_delay)
            try:
                response = self.transfer(txn.request, txn)
            except Exception as exc:
                step = txn.failed(exc)
            else:
                step = txn.succeeded(response)
        return txn.result()

    def listened(self, request: Request[Any]) -> bool:
        """True if this client or ``request`` itself has any listener."""
        if self.emitter.has_listeners():
            return True
        own = request.emitter_or_none()
        return own is not None and own.has_listeners()

    def close(self) -> None:
        """Release what the client holds (pooled connections, threads, loops)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def transfer(self, request: Request[Any], transaction: Transaction | None) -> Response:
        """Exchange ``request`` once and return the response; raise on failure.

        ``transaction`` (None when nobody listens) gives the hooks for the ``headers`` and
        ``progress`` events.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot transfer requests")
