"""The History subscriber: the requests a client sent and what came of each."""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, NamedTuple

from ..events.lifecycle import CompleteEvent, ErrorEvent
from ..events.priorities import RequestEvents

if TYPE_CHECKING:
    from ..http.models import Request, Response

#: ``txn.meta`` key: the response last recorded for the request.
META_KEY = "history.response"


class Entry(NamedTuple):
    """One exchange: the request as sent and its response, or the exception instead."""

    request: Request[Any]
    response: Response | None
    exception: BaseException | None


class History:
    """Remember the last ``limit`` exchanges (None: all of them), oldest first.

    Every hop counts: a redirect, a retry or an intercepted response is an entry of its
    own, so ``[e.request.url() for e in history]`` shows the way a request went. Errors
    are recorded unless their response already is (a 4xx that the HttpError subscriber
    turned into an error is one entry, with its response).
    """

    def __init__(self, limit: int | None = 10) -> None:
        if limit is not None and limit < 1:
            raise ValueError(f"limit must be 1 or more (or None), not {limit!r}")
        self.limit = limit
        self._entries: deque[Entry] = deque(maxlen=limit)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"<History {len(self)} of {self.limit} entries>"

    def get_events(self) -> dict[str, Any]:
        # above EARLY: listeners there (Retry, a cache) may stop propagation, and an
        # observer must see every hop whatever order the subscribers were attached in
        return {
            "complete": ("on_complete", RequestEvents.EARLY + 1),
            "error": ("on_error", RequestEvents.EARLY + 1),
        }

    def on_complete(self, event: CompleteEvent) -> None:
        event.transaction.meta[META_KEY] = event.response
        self._add(Entry(event.request, event.response, None))

    def on_error(self, event: ErrorEvent) -> None:
        response = event.response
        if response is None or response is not event.transaction.meta.get(META_KEY):
            self._add(Entry(event.request, response, event.exception))

    def _add(self, entry: Entry) -> None:
        with self._lock:
            self._entries.append(entry)

    @property
    def entries(self) -> list[Entry]:
        """A copy of the recorded exchanges, oldest first."""
        with self._lock:
            return list(self._entries)

    def __iter__(self) -> Iterator[Entry]:
        return iter(self.entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def last_request(self) -> Request[Any] | None:
        """The request of the newest entry."""
        entries = self.entries
        return entries[-1].request if entries else None

    @property
    def last_response(self) -> Response | None:
        """The response of the newest entry (None if it failed)."""
        entries = self.entries
        return entries[-1].response if entries else None

    def clear(self) -> None:
        """Forget every entry."""
        with self._lock:
            self._entries.clear()
