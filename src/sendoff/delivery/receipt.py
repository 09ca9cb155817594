"""The Receipt: what a fire-and-forget request returns at once, settled later.

The caller holds the receipt; the engine holds a job that refers to it weakly (see
:mod:`.job`). A receipt is small: the request's wire bytes, where they went, and the
outcome once it is known. The :class:`~sendoff.Response` and :class:`~sendoff.Request`
objects are built only when somebody asks for them.
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from ..core.log import logger, redact_url
from ..http.headers import Headers
from ..http.models import Response

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest, Request
    from ..http.url import URL
    from .job import Answer

_lock = threading.Lock()


def _new_lock_in_child() -> None:
    global _lock
    _lock = threading.Lock()  # a thread of the parent may have held the old one


os.register_at_fork(after_in_child=_new_lock_in_child)


class Receipt:
    """The promise of a fire-and-forget request.

    ``done()`` tells whether it has ended; ``wait(timeout)`` blocks until it has and
    returns the :class:`~sendoff.Response` (None if it failed or was dropped, or if the
    mode reads no response: ``inline`` and ``process``); ``error`` says why it failed.
    In a coroutine, ``await receipt`` (or ``await receipt.wait_async(timeout)``) waits
    without blocking the event loop. Waiting never raises the request's error.
    """

    __slots__ = (
        "__weakref__",
        "_async_waiters",
        "_callbacks",
        "_done",
        "_error",
        "_event",
        "_result",
        "prepared",
        "target",
        "txn",
        "wire",
    )

    def __init__(self, wire: bytes, target: URL) -> None:
        #: the request bytes as they were sent
        self.wire = wire
        #: where they went (its scheme, host and port; the Host header may differ)
        self.target = target
        self._done = False
        self._result: Answer | None = None
        self._error: BaseException | None = None
        self._event: threading.Event | None = None
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future[None]]] | None
        self._async_waiters = None
        self._callbacks: list[Callable[[Receipt], object]] | None = None
        #: the request's lifecycle when listeners ran around it
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
                with _lock:
                    if self._event is None:
                        self._event = threading.Event()
                    event = self._event
            if timeout is not None and timeout >= threading.TIMEOUT_MAX:
                timeout = None  # longer than the platform can wait: that is, for ever
            if not self._done:  # settle() looks for the event after setting _done
                event.wait(timeout)
        return self.response

    async def wait_async(self, timeout: float | None = None) -> Response | None:
        """:meth:`wait` for a coroutine: the event loop goes on while it waits."""
        if not self._done:
            loop = asyncio.get_running_loop()
            future: asyncio.Future[None] = loop.create_future()
            with _lock:
                waiting = not self._done
                if waiting:
                    if self._async_waiters is None:
                        self._async_waiters = []
                    self._async_waiters.append((loop, future))
            if waiting and self._done:  # settled meanwhile; it may not have seen us
                _wake(future)
            if waiting:
                try:
                    await asyncio.wait_for(asyncio.shield(future), timeout)
                except TimeoutError:
                    pass
        return self.response

    def __await__(self) -> Generator[Any, None, Response | None]:
        return self.wait_async().__await__()

    def add_done_callback(self, callback: Callable[[Receipt], object]) -> None:
        """Call ``callback(receipt)`` once the request has ended (at once if it has).

        It runs on the thread that settles the receipt (the engine's): keep it short and
        never block in it; an exception it raises is logged and swallowed.
        """
        with _lock:
            if self._done:
                registered = False
            else:
                if self._callbacks is None:
                    self._callbacks = []
                self._callbacks.append(callback)
                registered = True
        if registered:
            if not self._done:
                return  # settle() will call it
            with _lock:  # settled meanwhile; settle() may not have seen ours
                mine = self._callbacks is not None and callback in self._callbacks
                if mine:
                    self._callbacks.remove(callback)  # type: ignore[union-attr]
            if not mine:
                return
        _call(callback, self)

    @property
    def status(self) -> int | None:
        """The response's status code once it has arrived (None before, or without one);
        cheaper than ``receipt.response.status``."""
        result = self._result
        if result is None:
            return None
        return result.status if isinstance(result, Response) else result[0]

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

        return request_from_wire(self.wire, self.target)

    @property
    def method(self) -> str:
        """The request method, read from the request line."""
        return self.wire[: self.wire.find(b" ")].decode("latin-1")

    @property
    def url(self) -> str:
        """Where the request went, as logs and error messages show it: the real target
        (whatever a Host header said), credentials kept out (they travel in a header)
        and the values of credential-like query parameters (``api_key``, ``token``...)
        redacted; ``receipt.request.url()`` has them whole."""
        wire = self.wire
        start = wire.find(b" ") + 1
        target = wire[start : wire.find(b" ", start)].decode("latin-1")
        return redact_url(self.target.origin_text + target)

    # -- what the engine and the modes call ------------------------------------------------
    def settle(self, result: Answer | None, error: BaseException | None) -> None:
        """End the request with ``result`` or ``error`` (for the engine and the modes)."""
        self._result = result
        self._error = error
        self._done = True
        event = self._event
        if event is not None:
            event.set()
        if self._callbacks:
            with _lock:
                callbacks, self._callbacks = self._callbacks, None
            for callback in callbacks or ():
                _call(callback, self)
        if self._async_waiters:
            with _lock:
                waiters, self._async_waiters = self._async_waiters, None
            for loop, future in waiters or ():
                try:
                    loop.call_soon_threadsafe(_wake, future)
                except RuntimeError:  # that loop is closed: nobody waits there any more
                    pass

    def attach(self, txn: Transaction, prepared: PreparedRequest | None) -> None:
        """Tie the request's lifecycle to this receipt."""
        self.txn = txn
        self.prepared = prepared


def _call(callback: Callable[[Receipt], object], receipt: Receipt) -> None:
    try:
        callback(receipt)
    except Exception:
        logger.error("a receipt's done callback %r raised", callback, exc_info=True)


def _wake(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def settled(
    wire: bytes,
    target: URL,
    response: Response | None = None,
    error: BaseException | None = None,
) -> Receipt:
    """A receipt that is already done (intercepted, dropped, or sent by another mode)."""
    receipt = Receipt(wire, target)
    receipt.settle(response, error)
    return receipt
