"""The Retry subscriber: exponential backoff with jitter, honouring ``Retry-After``."""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Iterable
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

from ..core import errors
from ..core.log import logger
from ..events.lifecycle import CompleteEvent, ErrorEvent
from ..events.priorities import RequestEvents
from ..http.models import HttpError

if TYPE_CHECKING:
    from ..http.models import Response

#: Statuses that say "try again later": Too Many Requests and the gateway/overload ones.
RETRY_STATUSES = frozenset({429, 502, 503, 504})
#: ``txn.meta`` key holding how many retries this subscriber made for the request.
META_KEY = "retries"


class Retry:
    """Re-send a request that failed to connect or was answered 429, 502, 503 or 504.

    At most ``max`` retries per request (counted in ``transaction.meta["retries"]``,
    so redirects do not use them up). The n-th retry (from 0) waits
    ``min(cap, base * 2**n)`` seconds scaled by a random factor in [0.5, 1] (jitter, so
    that many clients do not retry in step), unless the response carries
    ``Retry-After`` (seconds or an HTTP-date), which is honoured exactly. A
    ``Retry-After`` longer than ``max_wait`` seconds is not waited for: the response
    stands. TLS failures are not retried (a certificate does not fix itself).

    ``complete`` is handled just above ``VERIFY_RESPONSE`` (before the HttpError
    subscriber raises), ``error`` at ``EARLY``; an ``error`` carrying an
    :class:`~sendoff.HttpError` with a retryable status is retried as well.
    """

    def __init__(
        self,
        max: int = 5,
        *,
        base: float = 0.5,
        cap: float = 30.0,
        max_wait: float = 60.0,
        statuses: Iterable[int] = RETRY_STATUSES,
        exceptions: tuple[type[BaseException], ...] = (errors.ConnectError,),
        random_factor: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if max < 0:
            raise ValueError(f"max must be 0 or more, not {max!r}")
        self.max = max
        self.base = base
        self.cap = cap
        self.max_wait = max_wait
        self.statuses = frozenset(statuses)
        self.exceptions = exceptions
        self._random = random_factor
        self._clock = clock

    def __repr__(self) -> str:
        return f"<Retry max={self.max} statuses={sorted(self.statuses)}>"

    def get_events(self) -> dict[str, Any]:
        return {
            "complete": ("on_complete", RequestEvents.VERIFY_RESPONSE + 1),
            "error": ("on_error", RequestEvents.EARLY),
        }

    def on_complete(self, event: CompleteEvent) -> None:
        response = event.response
        if response is not None and response.status in self.statuses:
            self._retry(event, response)

    def on_error(self, event: ErrorEvent) -> None:
        exc = event.exception
        if isinstance(exc, errors.TLSError):
            return
        if isinstance(exc, self.exceptions):
            self._retry(event, None)
        elif isinstance(exc, HttpError) and exc.response.status in self.statuses:
            self._retry(event, exc.response)

    def delay(self, retries: int, response: Response | None = None) -> float | None:
        """Seconds to wait before retry number ``retries`` (0 for the first); None if the
        server asks for a longer wait than ``max_wait``."""
        if response is not None:
            wanted = retry_after(response.headers.get("retry-after", ""), self._clock())
            if wanted is not None:
                return wanted if wanted <= self.max_wait else None
        return float(min(self.cap, self.base * 2**retries) * (0.5 + self._random() / 2))

    def _retry(self, event: CompleteEvent | ErrorEvent, response: Response | None) -> None:
        meta = event.transaction.meta
        done: int = meta.get(META_KEY, 0)
        if done >= self.max:
            return
        delay = self.delay(done, response)
        if delay is None:
            return
        meta[META_KEY] = done + 1
        why = response.status if response is not None else type(event.exception).__name__
        logger.debug(
            "retrying %s %s in %.3fs (%s, retry %d of %d)",
            event.request.method(),
            event.request.url(redacted=True),
            delay,
            why,
            done + 1,
            self.max,
        )
        event.retry(delay)


def retry_after(value: str, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (delta-seconds or an HTTP-date) at
    time ``now``; None when the value is missing or unreadable."""
    value = value.strip()
    if not value:
        return None
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - now)
