"""The retry schedule: jitter, exhaustion, Retry-After, classification, timing with a clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from email.utils import format_datetime

import pytest

from sendoff.outbox import schedule
from sendoff.outbox.schedule import (
    DEFAULT_SCHEDULE,
    MAX_RETRY_AFTER,
    classify,
    next_delay,
    plan_retry,
    retry_after,
)
from sendoff.outbox.store import Store

from .conftest import Clock, message


def test_default_schedule_is_the_webhook_schedule() -> None:
    assert DEFAULT_SCHEDULE == (0, 5, 300, 1800, 7200, 18000, 36000, 36000)


@pytest.mark.parametrize("attempts", range(len(DEFAULT_SCHEDULE)))
def test_jitter_stays_within_twenty_percent_and_varies(attempts: int) -> None:
    rng = random.Random(attempts)
    base = DEFAULT_SCHEDULE[attempts]
    delays = [next_delay(DEFAULT_SCHEDULE, attempts, rng) for _ in range(2000)]
    assert all(d is not None for d in delays)
    values = [d for d in delays if d is not None]
    if base == 0:
        assert set(values) == {0.0}
        return
    assert min(values) >= base * 0.8
    assert max(values) <= base * 1.2
    # the jitter really spreads: both ends of the band are reached
    assert min(values) < base * 0.82
    assert max(values) > base * 1.18


def test_schedule_runs_out_then_none() -> None:
    assert next_delay(DEFAULT_SCHEDULE, len(DEFAULT_SCHEDULE)) is None
    assert next_delay((1.0,), 1) is None
    assert plan_retry(DEFAULT_SCHEDULE, 8, now=100.0) is None
    with pytest.raises(ValueError, match="attempts"):
        next_delay(DEFAULT_SCHEDULE, -1)


def test_plan_retry_uses_the_schedule_step_after_the_failed_attempt() -> None:
    rng = random.Random(1)
    at = plan_retry(DEFAULT_SCHEDULE, 1, now=1000.0, rng=rng)  # attempt 1 failed: wait 5 s
    assert at is not None
    assert 1004.0 <= at <= 1006.0
    at = plan_retry(DEFAULT_SCHEDULE, 2, now=1000.0, rng=rng)  # attempt 2 failed: 5 min
    assert at is not None
    assert 1000 + 240 <= at <= 1000 + 360


def test_retry_after_only_lengthens_the_wait_and_is_capped() -> None:
    rng = random.Random(2)
    # shorter than the schedule step (5 s +-20%): the schedule wins
    at = plan_retry(DEFAULT_SCHEDULE, 1, now=0.0, rng=rng, retry_after_delay=0.0)
    assert at is not None
    assert 4.0 <= at <= 6.0
    # longer: honoured
    at = plan_retry(DEFAULT_SCHEDULE, 1, now=0.0, rng=rng, retry_after_delay=120.0)
    assert at == 120.0
    # absurd: capped at a day
    at = plan_retry(DEFAULT_SCHEDULE, 1, now=0.0, rng=rng, retry_after_delay=10 * 86400.0)
    assert at == MAX_RETRY_AFTER
    # never more attempts than the schedule has
    assert plan_retry(DEFAULT_SCHEDULE, 8, now=0.0, rng=rng, retry_after_delay=60.0) is None


def _http_date(ts: float) -> str:
    return format_datetime(datetime.fromtimestamp(ts, UTC), usegmt=True)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 7 ", 7.0),
        ("0", 0.0),
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
        ("1.5", None),
        ("٣", None),  # a non-ASCII digit is not delta-seconds
    ],
)
def test_retry_after_delta_seconds(value: str | None, expected: float | None) -> None:
    assert retry_after(value, now=1_700_000_000.0) == expected


def test_retry_after_http_dates_in_all_three_formats() -> None:
    now = 784_111_777.0 - 30  # 30 s before Sun, 06 Nov 1994 08:49:37 GMT
    assert retry_after("Sun, 06 Nov 1994 08:49:37 GMT", now) == pytest.approx(30.0)
    assert retry_after("Sunday, 06-Nov-94 08:49:37 GMT", now) == pytest.approx(30.0)
    assert retry_after("Sun Nov  6 08:49:37 1994", now) == pytest.approx(30.0)
    now = 1_700_000_000.0
    assert retry_after(_http_date(now + 90), now) == pytest.approx(90.0)


def test_retry_after_is_bounded() -> None:
    now = 1_700_000_000.0
    assert retry_after(_http_date(now - 3600), now) == 0.0  # a date in the past
    assert retry_after(_http_date(now - 3600), now, min_delay=5.0) == 5.0
    assert retry_after("999999999", now) == MAX_RETRY_AFTER
    assert retry_after(_http_date(now + 90 * 86400), now) == MAX_RETRY_AFTER
    assert retry_after("600", now, max_delay=60.0) == 60.0
    assert retry_after("1", now, min_delay=30.0) == 30.0


@pytest.mark.parametrize(
    ("status", "kind", "verdict"),
    [
        (200, None, "delivered"),
        (201, None, "delivered"),
        (204, None, "delivered"),
        (299, None, "delivered"),
        (100, None, "retry"),
        (101, None, "retry"),
        (301, None, "retry"),
        (302, None, "retry"),
        (304, None, "retry"),
        (308, None, "retry"),
        (400, None, "dead"),
        (401, None, "dead"),
        (403, None, "dead"),
        (404, None, "dead"),
        (409, None, "dead"),
        (410, None, "dead"),
        (422, None, "dead"),
        (408, None, "retry"),
        (429, None, "retry"),
        (500, None, "retry"),
        (502, None, "retry"),
        (503, None, "retry"),
        (504, None, "retry"),
        (599, None, "retry"),
        (None, "connect", "retry"),
        (None, "timeout", "retry"),
        (None, "tls", "retry"),
        (None, "protocol", "retry"),
        (None, "other", "retry"),
        (None, "invalid", "dead"),
    ],
)
def test_classification(status: int | None, kind: schedule.ErrorKind | None, verdict: str) -> None:
    assert classify(status, kind) == verdict


def test_classify_needs_a_status_or_a_kind() -> None:
    with pytest.raises(ValueError, match="classify"):
        classify(None, None)


@pytest.mark.parametrize(
    ("steps", "match"),
    [((), "at least one"), ((1, -1), r"schedule\[1\]"), ((1, float("inf")), r"schedule\[1\]"),
     ("abc", "sequence"), ((True,), r"schedule\[0\]"), (tuple(range(101)), "at most")],
)  # fmt: skip
def test_bad_schedules_are_refused(steps: object, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        schedule.validate(steps)  # type: ignore[arg-type]


def test_a_message_failing_with_503_follows_the_schedule_then_dies(
    store: Store, clock: Clock
) -> None:
    """The whole walk with the store and an injectable clock: no sleeping for hours."""
    rng = random.Random(5)
    t0 = clock.now
    added = store.add(message(1))
    attempt_times: list[float] = []
    while True:
        due = store.next_due()
        if due is None:
            break
        clock.now = max(clock.now, due)
        assert store.claim("relay", 10, 30.0, now=clock.now - 0.001) == []  # not before its time
        (c,) = store.claim("relay", 10, 30.0)
        attempt_times.append(clock.now)
        verdict = classify(503)
        assert verdict == "retry"
        at = plan_retry(c.schedule, c.attempt, clock.now, rng=rng)
        if at is None:
            assert store.dead(c.id, "relay", 503, "HTTP 503", now=clock.now)
        else:
            assert store.retry_later(c.id, "relay", 503, "HTTP 503", at, now=clock.now)
    assert len(attempt_times) == len(DEFAULT_SCHEDULE)
    waits = [b - a for a, b in zip([t0, *attempt_times], attempt_times, strict=False)]
    for wait, step in zip(waits, DEFAULT_SCHEDULE, strict=True):
        assert step * 0.8 <= wait <= step * 1.2
    final = store.status(added.id)
    assert final is not None
    assert final.status == "dead"
    assert final.attempts == 8
    assert final.last_status == 503
    assert final.last_error == "HTTP 503"
    # about 27.5 hours in total, +-20%
    assert 0.8 * sum(DEFAULT_SCHEDULE) <= attempt_times[-1] - t0 <= 1.2 * sum(DEFAULT_SCHEDULE)
