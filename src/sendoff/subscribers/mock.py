"""The Mock subscriber: queued responses and exceptions instead of the network."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable
from typing import Any

from ..events.lifecycle import BeforeEvent
from ..events.priorities import RequestEvents
from ..http.models import Response

MockItem = Response | Exception | int


class Mock:
    """Answer requests from a queue, for your own tests: nothing reaches the network.

    Each request takes the next item: a :class:`~sendoff.Response` (or a bare status
    code) is the response, an exception is raised as if the transfer had failed (so
    ``error`` listeners and the Retry subscriber see it). An empty queue raises
    :class:`IndexError`. It runs in ``before`` just below ``SIGN_REQUEST``, after every
    listener that prepares or signs the request, emits ``headers`` as a transport
    would (a body sink a listener chooses receives the body) and intercepts.
    """

    def __init__(self, items: Iterable[MockItem] = ()) -> None:
        self._queue: deque[MockItem] = deque()
        self._lock = threading.Lock()
        for item in items:
            self.add(item)

    def __repr__(self) -> str:
        return f"<Mock {len(self)} queued>"

    def __len__(self) -> int:
        return len(self._queue)

    def add(self, item: MockItem) -> Mock:
        """Queue a response, a status code or an exception; returns the Mock."""
        if not isinstance(item, Response | Exception | int) or isinstance(item, bool):
            raise TypeError(f"queue a Response, a status code or an exception, not {item!r}")
        with self._lock:
            self._queue.append(item)
        return self

    def clear(self) -> None:
        """Drop every queued item."""
        with self._lock:
            self._queue.clear()

    def get_events(self) -> dict[str, Any]:
        return {"before": ("on_before", RequestEvents.SIGN_REQUEST - 10)}

    def on_before(self, event: BeforeEvent) -> None:
        with self._lock:
            item = self._queue.popleft() if self._queue else None
        if item is None:
            raise IndexError(
                f"the Mock queue is empty: nothing to answer {event.request.method()} "
                f"{event.request.url(redacted=True)}"
            )
        if isinstance(item, Exception):
            raise item
        response = Response(item) if isinstance(item, int) else item
        sink = event.transaction.headers_received(response)
        if sink is not None and response.body:
            sink.write(response.body)
            response.body = b""
        event.intercept(response)
