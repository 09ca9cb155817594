"""Retries on the outbox's schedule, dead letters and their replay, and signatures made on
the workers, with real workers on Redis and RabbitMQ."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable

import pytest
import standardwebhooks

from sendoff import Outbox
from sendoff.outbox.relay import Circuit
from tests.celery.helpers import fire_numbers, flushed, key_of, settled
from tests.celery.worker_app import SIGN_ENV
from tests.support.brokers import CeleryWorker
from tests.support.recording_server import Recorded, RecordingServer, Reply

pytest_plugins = ["tests.support.broker_fixtures"]

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"


class _FailFirst:
    """Answers ``first`` to the first request of each key, then 200."""

    def __init__(self, first: Reply) -> None:
        self.first = first
        self.seen: dict[str | None, int] = defaultdict(int)
        self.lock = threading.Lock()

    def __call__(self, req: Recorded) -> Reply:
        with self.lock:
            n = self.seen[key_of(req)]
            self.seen[key_of(req)] = n + 1
        return self.first if n == 0 else Reply(200)


def _copies(server: RecordingServer, key: str) -> list[Recorded]:
    return [req for req in server.received if key_of(req) == key]


@pytest.mark.timeout(60)
def test_503_then_200_is_retried_on_schedule_with_the_same_key(
    broker_url: str,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    make_server: Callable[..., RecordingServer],
) -> None:
    workers = sendoff_workers(broker_url)
    plain = make_server(_FailFirst(Reply(503)))
    later = make_server(_FailFirst(Reply(503, headers=[("Retry-After", "1")])))
    # 24 failures at once would open the origin's circuit (see test_limits.py)
    outbox = celery_outbox(broker_url, schedule=(0, 0.2, 0.2), circuit=Circuit(failures=100))
    ids = fire_numbers(outbox, plain.url("/hook"), 20)
    slow_ids = fire_numbers(outbox, later.url("/hook"), 4, start=100)
    settled(outbox, 24, 40, workers)

    for ident in ids.values():
        first, second = _copies(plain, ident)  # exactly two attempts, same key
        gap = second.received_at - first.received_at
        assert 0.2 * 0.8 <= gap < 3.0, gap  # the 0.2 s step (±20%), not a lease expiry
        state = outbox.status(ident)
        assert state is not None
        assert (state.status, state.attempts, state.last_status) == ("delivered", 2, 200)
    for ident in slow_ids.values():
        first, second = _copies(later, ident)
        assert second.received_at - first.received_at >= 1.0  # Retry-After: 1 lengthens it
    relay = outbox.stats()["relay"]
    assert (relay["retried"], relay["delivered"], relay["dead"]) == (24, 24, 0)


@pytest.mark.timeout(60)
def test_400_is_dead_at_once_and_replayable(
    broker_url: str,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    make_server: Callable[..., RecordingServer],
) -> None:
    fixed = threading.Event()
    server = make_server(lambda req: Reply(200) if fixed.is_set() else Reply(400, b"no"))
    workers = sendoff_workers(broker_url, count=1)
    outbox = celery_outbox(broker_url, schedule=(0, 0.2, 0.2))
    ids = set(fire_numbers(outbox, server.url("/hook"), 10).values())
    flushed(outbox, 30, workers)

    assert server.count == 10  # a 400 is final: no retry
    # the file is the source of truth: another process lists the dead letters
    listing = subprocess.run(
        [sys.executable, "-c",
         "import sys; from sendoff.outbox import Store\n"
         f"for m in Store({outbox.path!r}).list(status='dead'):"
         " print(m.id, m.attempts, m.last_status, m.last_error)"],
        capture_output=True, text=True, timeout=30, check=False,
    )
    assert listing.returncode == 0, listing.stderr
    rows = [line.split(maxsplit=3) for line in listing.stdout.splitlines()]
    assert {row[0] for row in rows} == ids
    assert {tuple(row[1:]) for row in rows} == {("1", "400", "answered 400")}

    fixed.set()
    assert outbox.store.retry(sorted(ids)) == 10
    assert outbox.relay is not None
    outbox.relay.wake()
    flushed(outbox, 30, workers)
    for ident in ids:
        assert [req.header("Idempotency-Key") for req in _copies(server, ident)] == [ident] * 2
        state = outbox.status(ident)
        assert state is not None
        assert (state.status, state.attempts, state.last_status) == ("delivered", 2, 200)


@pytest.mark.timeout(60)
def test_workers_sign_every_attempt(
    redis_server: object,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    make_server: Callable[..., RecordingServer],
) -> None:
    """``register(app, sign=secret)`` on the workers: each attempt is signed there (the
    producer holds no secret), checked here with the Standard Webhooks reference library."""
    url = redis_server.url  # type: ignore[attr-defined]
    verifier = standardwebhooks.Webhook(SECRET)
    verified: list[tuple[str, str]] = []
    first = _FailFirst(Reply(503))

    def answer(req: Recorded) -> Reply:
        headers = {k.lower(): v for k, v in req.headers}
        try:
            verifier.verify(req.body, headers)
        except standardwebhooks.webhooks.WebhookVerificationError:
            return Reply(401, b"bad signature")
        verified.append((headers["webhook-id"], headers["webhook-timestamp"]))
        return first(req)

    server = make_server(answer)
    workers = sendoff_workers(url, count=1, env={SIGN_ENV: SECRET})
    outbox = celery_outbox(url, schedule=(0, 0.2), circuit=Circuit(failures=100))
    ids = fire_numbers(outbox, server.url("/hook"), 5)
    assert not outbox.emitter.has_listeners()  # nothing signs on the producer's side
    settled(outbox, 5, 30, workers)
    assert sorted(i for i, _ in verified) == sorted(list(ids.values()) * 2)  # id = the key
    assert {outbox.status(i).status for i in ids.values()} == {"delivered"}  # type: ignore[union-attr]
