"""Per-origin limits of the workers: a concurrency cap and a circuit, shared through Redis
by every worker process (RedisLimits), or per worker process (LocalLimits, what a
RabbitMQ broker gets)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import pytest

from sendoff import Outbox
from sendoff.celery import CircuitRule, LocalLimits, RedisLimits
from sendoff.outbox.relay import Circuit
from tests.celery.helpers import fire_numbers, flushed
from tests.support.brokers import CeleryWorker, RedisServer, wait_until
from tests.support.recording_server import Recorded, RecordingServer, Reply

pytest_plugins = ["tests.support.broker_fixtures"]

ORIGIN = "http://127.0.0.1:8080"
RULE = CircuitRule(failures=3, cooldown=0.3, longest=1.0)


def test_redis_slots_are_shared_and_freed_when_a_holder_dies(
    redis_server: RedisServer,
) -> None:
    one = RedisLimits(redis_server.url, slot_ttl=0.5)  # two worker processes
    two = RedisLimits(redis_server.url, slot_ttl=0.5)
    held = one.acquire(ORIGIN, 3, cap=4)
    assert len(held) == 3
    mine = two.acquire(ORIGIN, 3, cap=4)
    assert len(mine) == 1  # the cap holds across processes
    assert two.acquire(ORIGIN, 1, cap=4) == []
    assert len(one.acquire("http://other:80", 2, cap=4)) == 2  # per origin
    one.release(ORIGIN, held[:2])
    mine += two.acquire(ORIGIN, 5, cap=4)
    assert len(mine) == 3
    # ``one`` stops refreshing (it was killed): its last slot expires on its own
    for _ in range(3):
        time.sleep(0.2)
        two.refresh(ORIGIN, mine)
    assert len(two.acquire(ORIGIN, 5, cap=4)) == 1
    keys = redis_server.client().keys("sendoff:*")
    assert all(redis_server.client().pttl(k) > 0 for k in keys)  # nothing stays for ever


def test_redis_refresh_keeps_slots(redis_server: RedisServer) -> None:
    one = RedisLimits(redis_server.url, slot_ttl=0.4)
    two = RedisLimits(redis_server.url, slot_ttl=0.4)
    held = one.acquire(ORIGIN, 2, cap=2)
    for _ in range(4):
        time.sleep(0.2)
        one.refresh(ORIGIN, held)
    assert two.acquire(ORIGIN, 1, cap=2) == []


def test_redis_circuit_is_shared(redis_server: RedisServer) -> None:
    one = RedisLimits(redis_server.url)
    two = RedisLimits(redis_server.url)
    assert one.gate(ORIGIN, RULE) == ("closed", 0.0)
    assert one.record(ORIGIN, RULE, False, 2) == 0.0
    assert two.gate(ORIGIN, RULE) == ("closed", 0.0)  # 2 of 3
    wait = two.record(ORIGIN, RULE, False, 1)  # another process's failure opens it
    assert 0.2 < wait <= 0.3
    state, left = one.gate(ORIGIN, RULE)
    assert state == "open"
    assert 0 < left <= 0.3
    time.sleep(0.35)
    assert one.gate(ORIGIN, RULE) == ("probe", 0.0)  # half-open: one probe, one process
    assert two.gate(ORIGIN, RULE)[0] == "open"
    assert 0.5 < one.record(ORIGIN, RULE, False, 1) <= 0.6  # probe failed: cooldown doubles
    time.sleep(0.65)
    assert two.gate(ORIGIN, RULE) == ("probe", 0.0)
    assert two.record(ORIGIN, RULE, True, 0) == 0.0  # the probe worked: closed for all
    assert one.gate(ORIGIN, RULE) == ("closed", 0.0)
    # a success of a process that saw the failures resets the shared count
    one.record(ORIGIN, RULE, False, 2)
    assert two.gate(ORIGIN, RULE) == ("closed", 0.0)
    two.record(ORIGIN, RULE, True, 0)
    assert one.record(ORIGIN, RULE, False, 1) == 0.0  # 1 of 3 again, not 3


def test_redis_limits_fall_back_to_the_process_when_redis_is_away(
    redis_server: RedisServer,
) -> None:
    limits = RedisLimits(redis_server.url)
    assert len(limits.acquire(ORIGIN, 2, cap=2)) == 2
    redis_server.kill()
    fallback = limits.acquire(ORIGIN, 3, cap=2)  # no exception: per-process limits now
    assert len(fallback) == 2
    assert limits.acquire(ORIGIN, 1, cap=2) == []
    limits.release(ORIGIN, fallback)
    assert limits.gate(ORIGIN, RULE) == ("closed", 0.0)


def test_local_limits() -> None:
    limits = LocalLimits()
    held = limits.acquire(ORIGIN, 5, cap=3)
    assert len(held) == 3
    assert limits.acquire(ORIGIN, 1, cap=3) == []
    limits.release(ORIGIN, held[:1])
    assert len(limits.acquire(ORIGIN, 2, cap=3)) == 1
    assert limits.record(ORIGIN, RULE, False, 3) == pytest.approx(0.3, abs=0.05)
    assert limits.gate(ORIGIN, RULE)[0] == "open"


class _Concurrency:
    """Answers after ``delay`` and records the most requests open at once."""

    def __init__(self, delay: float, status: int = 200) -> None:
        self.delay = delay
        self.status = status
        self.arrivals: list[float] = []
        self.lock = threading.Lock()

    def __call__(self, req: Recorded) -> Reply:
        with self.lock:
            self.arrivals.append(time.monotonic())
        return Reply(self.status, b"ok", delay=self.delay)

    def most_at_once(self) -> int:
        """The most arrivals within ``delay``: a request slot sends again only after its
        answer, so that is how many requests were open at once."""
        times = sorted(self.arrivals)
        window = self.delay * 0.95
        best = start = 0
        for end, t in enumerate(times):
            while times[start] < t - window:
                start += 1
            best = max(best, end - start + 1)
        return best


@pytest.mark.timeout(60)
def test_the_per_origin_cap_holds_across_workers(
    broker_url: str,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    make_server: Callable[..., RecordingServer],
) -> None:
    """Cap 4 per origin, two workers: on Redis at most 4 requests open in all; on RabbitMQ
    (no shared Redis) the cap holds per worker process: at most 8."""
    recorder = _Concurrency(0.2)
    server = make_server(recorder)
    workers = sendoff_workers(broker_url)
    outbox = celery_outbox(broker_url, batch=8, connections_per_origin=4)
    fire_numbers(outbox, server.url("/hook"), 64)
    flushed(outbox, 40, workers)
    assert outbox.stats()["delivered"] == 64
    nodes = set()
    for worker in workers:
        if "succeeded" in worker.output():
            nodes.add(worker.nodename)
    assert len(nodes) == 2  # both took part
    most = recorder.most_at_once()
    if broker_url.startswith("redis"):
        assert 3 <= most <= 4, most
    else:
        assert 5 <= most <= 8, most


@pytest.mark.timeout(60)
def test_a_failing_origin_opens_one_circuit_for_every_worker(
    redis_server: RedisServer,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    make_server: Callable[..., RecordingServer],
) -> None:
    """An origin answering 503: after 3 failures (of any worker) the circuit opens for
    30 s; the workers give the rest back to the outbox untried (no attempt counted) and
    the relay holds the origin's messages in the file meanwhile."""
    server = make_server(_Concurrency(0.05, status=503))
    sendoff_workers(redis_server.url)
    outbox = celery_outbox(
        redis_server.url, batch=5, connections_per_origin=2, schedule=(0, 60),
        circuit=Circuit(failures=3, cooldown=30.0),
    )
    fire_numbers(outbox, server.url("/hook"), 40)
    wait_until(lambda: outbox.stats()["relay"]["deferred"] > 0, timeout=30,
               what="messages deferred")
    time.sleep(1.0)  # what was out with the workers comes back
    tried = server.count
    assert 3 <= tried <= 3 + 2 * 2 + 2, tried  # threshold + in flight, not 40
    stats = outbox.stats()
    assert (stats["pending"], stats["dead"], stats["delivered"]) == (40, 0, 0)
    assert stats["relay"]["paused_origins"] == [f"http://127.0.0.1:{server.port}"]
    untried = [m for m in outbox.store.list(status="pending", limit=100) if m.attempts == 0]
    assert len(untried) == 40 - tried
    # the ones the workers gave back wait out the cooldown; the relay did not publish the
    # others (the origin is paused in the file)
    waiting = [m for m in untried if m.next_attempt_at > time.time() + 20]
    assert len(waiting) == stats["relay"]["deferred"]
    assert redis_server.client().hget(f"sendoff:circuit:http://127.0.0.1:{server.port}",
                                      "failures") is not None
    time.sleep(0.5)
    assert server.count == tried  # nobody tries while it is open
