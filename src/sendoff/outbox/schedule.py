"""When to try a message again, and whether to.

The schedule is a sequence of delays in seconds: attempt ``n + 1`` of a message waits
``schedule[n]`` after attempt ``n`` failed (``schedule[0]`` is the wait before the first
attempt, normally 0). When the schedule runs out the message is *dead*. Every delay gets
±20% jitter so that messages that failed together do not come back together.

Classification (:func:`classify`) follows Svix and the Standard Webhooks guidance:

* ``2xx`` is the only success;
* ``3xx`` is a failure that is **retried**: redirects are never followed (the payload must
  not go somewhere the sender did not choose) and, as at Svix, a receiver that redirects
  is treated as failing, which is often transient (maintenance pages, a move in progress);
* ``408``, ``429`` and ``5xx`` are retried; every other ``4xx`` is final (dead at once);
* connection failures, timeouts, TLS failures and truncated or malformed responses are
  retried; a request that cannot be sent at all (``"invalid"``) is final.

``Retry-After`` (:func:`retry_after`, :func:`plan_retry`) can only *lengthen* a wait, up to
one day: the jittered schedule delay is the floor (a server cannot make us hammer it with
``Retry-After: 0``) and :data:`MAX_RETRY_AFTER` the ceiling (a server cannot park a message
for a month). It never adds attempts: after the last step the message is dead.
"""

from __future__ import annotations

import math
import random
from collections.abc import Sequence
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Literal

#: Immediately, 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h: eight attempts over about 27.5 hours.
DEFAULT_SCHEDULE: tuple[float, ...] = (0, 5, 300, 1800, 7200, 18000, 36000, 36000)
#: Each delay is multiplied by a factor drawn uniformly from ``[1 - JITTER, 1 + JITTER]``.
JITTER = 0.2
#: The longest wait a ``Retry-After`` header can impose, in seconds (one day).
MAX_RETRY_AFTER = 86400.0
#: Schedules longer than this are refused (a typo such as ``range(10**6)`` would bloat rows).
MAX_STEPS = 100

Verdict = Literal["delivered", "retry", "dead"]
#: How an attempt failed when there is no HTTP status: ``connect`` (refused, unreachable,
#: DNS), ``timeout``, ``tls``, ``protocol`` (truncated or malformed response), ``invalid``
#: (the request cannot be sent at all) or ``other`` (an unexpected error, treated as
#: transient: the schedule bounds it).
ErrorKind = Literal["connect", "timeout", "tls", "protocol", "invalid", "other"]

_RETRY_KINDS = frozenset({"connect", "timeout", "tls", "protocol", "other"})

_rng = random.Random()


def validate(schedule: Sequence[float]) -> tuple[float, ...]:
    """Return ``schedule`` as a tuple of floats, or raise ``ValueError`` naming the problem."""
    if isinstance(schedule, str | bytes):
        raise ValueError("schedule: must be a sequence of delays in seconds")
    steps = tuple(schedule)
    if not steps:
        raise ValueError("schedule: needs at least one step (the wait before the first attempt)")
    if len(steps) > MAX_STEPS:
        raise ValueError(f"schedule: at most {MAX_STEPS} steps, got {len(steps)}")
    out: list[float] = []
    for i, step in enumerate(steps):
        if isinstance(step, bool) or not isinstance(step, int | float):
            raise ValueError(f"schedule[{i}]: must be a number of seconds, got {step!r}")
        value = float(step)
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"schedule[{i}]: must be a finite number >= 0, got {step!r}")
        out.append(value)
    return tuple(out)


def next_delay(
    schedule: Sequence[float], attempts: int, rng: random.Random | None = None
) -> float | None:
    """The jittered wait before the next attempt, after ``attempts`` attempts of this round
    failed; ``None`` when the schedule is exhausted (the message is dead).

    ``next_delay(s, 0)`` is the wait before the first attempt.
    """
    if attempts < 0:
        raise ValueError(f"attempts: must be >= 0, got {attempts}")
    if attempts >= len(schedule):
        return None
    base = float(schedule[attempts])
    if base == 0:
        return 0.0
    return base * (rng or _rng).uniform(1.0 - JITTER, 1.0 + JITTER)


def classify(status: int | None, error_kind: ErrorKind | None = None) -> Verdict:
    """What to do with a message after an attempt that got ``status`` (``None`` when there
    was no complete response, then ``error_kind`` says why)."""
    if status is None:
        if error_kind is None:
            raise ValueError("classify: needs a status or an error_kind")
        return "retry" if error_kind in _RETRY_KINDS else "dead"
    if 200 <= status <= 299:
        return "delivered"
    if status in (408, 429) or 500 <= status <= 599:
        return "retry"
    if 400 <= status <= 499:
        return "dead"
    # 1xx as a final status is a protocol error, 3xx a redirect we do not follow,
    # anything else is not HTTP: all retried, the schedule bounds them.
    return "retry"


def retry_after(
    value: str | None,
    now: float,
    *,
    min_delay: float = 0.0,
    max_delay: float = MAX_RETRY_AFTER,
) -> float | None:
    """Parse a ``Retry-After`` header (delta-seconds or an HTTP-date) into a delay in seconds
    from ``now``, clamped to ``[min_delay, max_delay]``; ``None`` if absent or unparseable."""
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if text.isdigit() and text.isascii():
        delay = float(int(text))
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:  # asctime form: HTTP-dates are always UTC
            when = when.replace(tzinfo=UTC)
        delay = when.timestamp() - now
    return min(max(delay, min_delay), max_delay)


def plan_retry(
    schedule: Sequence[float],
    attempts: int,
    now: float,
    *,
    rng: random.Random | None = None,
    retry_after_delay: float | None = None,
) -> float | None:
    """The ``next_attempt_at`` after the ``attempts``-th attempt of this round failed, or
    ``None`` when the message is dead. ``retry_after_delay`` (from :func:`retry_after`) can
    only lengthen the jittered schedule delay."""
    delay = next_delay(schedule, attempts, rng)
    if delay is None:
        return None
    if retry_after_delay is not None:
        delay = max(delay, min(retry_after_delay, MAX_RETRY_AFTER))
    return now + delay
