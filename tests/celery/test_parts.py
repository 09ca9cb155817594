"""The parts of sendoff on Celery, without a broker: the relay interface of ``Outbox``,
the batch format, how the relay writes a report into the file, and a worker dropping a
batch whose lease expired. (Everything with brokers and workers: the other modules.)"""

from __future__ import annotations

import random
import time
from pathlib import Path

import pytest
from celery import Celery

from sendoff import Outbox
from sendoff.celery import (
    TASK_NAME,
    Batch,
    CeleryRelay,
    Message,
    Worker,
    default_reply_queue,
    register,
)
from sendoff.celery.payload import VERSION, outcome, report
from sendoff.celery.relay import split_batches
from sendoff.delivery.sender import Settings
from sendoff.events import Emitter
from sendoff.outbox import Claimed, NewMessage, Store
from sendoff.outbox.relay import Relay, RelayBackend, RelayConfig
from tests.support.recording_server import RecordingServer


def _message(n: int, url: str = "http://127.0.0.1:9/hook") -> NewMessage:
    wire = f"POST /hook HTTP/1.1\r\nHost: 127.0.0.1:9\r\nContent-Length: {len(str(n))}\r\n\r\n{n}"
    return NewMessage("POST", url, "http://127.0.0.1:9", wire.encode(), 5.0,
                      schedule=(0, 10, 20))


def test_outbox_takes_a_relay_object_and_binds_it(
    tmp_path: Path, server: RecordingServer
) -> None:
    relay = Relay(batch=8)
    assert isinstance(relay, RelayBackend)
    assert isinstance(CeleryRelay(object()), RelayBackend)
    outbox = Outbox(tmp_path / "o.sqlite3", relay=relay, connections_per_origin=3, lease=42)
    try:
        assert outbox.relay is relay
        assert relay.store is outbox.store
        assert (relay.config.per_origin, relay.config.lease, relay.config.emitter) == (
            3, 42, outbox.emitter)
        receipt = outbox.fire("POST", server.url("/hook"), json={"n": 1})
        assert outbox.flush(10)
        state = receipt.status()
        assert state is not None
        assert state.status == "delivered"
        assert server.received[0].header("Idempotency-Key") == receipt.id
        assert outbox.stats()["relay"]["delivered"] == 1
        assert "relay=Relay" in repr(outbox)
        # a relay serves one outbox
        with pytest.raises(ValueError, match="another outbox"):
            Outbox(tmp_path / "other.sqlite3", relay=relay)
    finally:
        outbox.close()


def test_outbox_refuses_what_is_not_a_relay(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="relay must be 'thread', None or a relay object"):
        Outbox(tmp_path / "o.sqlite3", relay="celery")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not object"):
        Outbox(tmp_path / "o.sqlite3", relay=object())  # type: ignore[arg-type]
    outbox = Outbox(tmp_path / "o.sqlite3", relay=None)
    assert outbox.relay is None
    assert outbox.stats()["relay"] is None
    outbox.close()


def test_a_relay_without_an_outbox_says_so() -> None:
    with pytest.raises(RuntimeError, match="serves no outbox"):
        Relay().start()
    with pytest.raises(RuntimeError, match="serves no outbox"):
        CeleryRelay(object()).wake()


def test_batch_round_trip_and_version() -> None:
    message = Message("msg_1", "k-1", "POST", "https://u:p@h.example/x?a=1",
                      "https://h.example:443", b"POST /x HTTP/1.1\r\n\r\n\x00\xff", 2.5, 3,
                      (0.0, 0.2))
    batch = Batch("owner/1", 123.5, "reply-q", "Idempotency-Key", 60.0, 16, (5, 5.0, 300.0),
                  (message,))
    data = batch.encode()
    assert data["v"] == VERSION
    assert data["messages"][0]["wire"] == "UE9TVCAveCBIVFRQLzEuMQ0KDQoA/w=="  # base64
    assert Batch.decode(data) == batch
    with pytest.raises(ValueError, match="format version 99"):
        Batch.decode({**data, "v": 99})
    assert outcome(message, "retry", status=503, error="answered 503", retry_after=2.0) == {
        "id": "msg_1", "v": "retry", "status": 503, "error": "answered 503",
        "retry_after": 2.0, "attempt": 3, "schedule": [0.0, 0.2],
    }
    assert outcome(message, "deferred", wait=1.5) == {"id": "msg_1", "v": "deferred",
                                                      "wait": 1.5}


def test_the_relay_writes_a_report_into_the_file(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    store = Store(path)
    relay = CeleryRelay(object(), rng=random.Random(7))
    relay.bind(store, RelayConfig(
        settings=Settings(), timeout=5.0, per_origin=4, keep_delivered=None, lease=30.0,
    ))
    assert relay.reply_queue == default_reply_queue(str(path))
    ids = [store.add(_message(n)).id for n in range(5)]
    token = "producer:1/1"
    claimed = {c.id: c for c in store.claim(token, 10, 30.0)}
    assert set(claimed) == set(ids)
    msgs = {i: Message(c.id, c.key, c.method, c.url, c.origin, c.wire, c.timeout, c.attempt,
                       c.schedule) for i, c in claimed.items()}
    before = time.time()
    body = report(token, "celery@w1", [
        outcome(msgs[ids[0]], "delivered", status=200),
        outcome(msgs[ids[1]], "retry", status=503, error="answered 503"),
        outcome(msgs[ids[2]], "retry", status=429, error="answered 429", retry_after=60.0),
        outcome(msgs[ids[3]], "dead", status=400, error="answered 400"),
        outcome(msgs[ids[4]], "deferred", wait=7.0),
    ])
    assert relay.apply(body) == 5
    states = {i: store.status(i) for i in ids}
    assert states[ids[0]].status == "delivered"
    assert states[ids[0]].last_status == 200
    retried = states[ids[1]]
    assert (retried.status, retried.attempts, retried.last_status) == ("pending", 1, 503)
    assert before + 10 * 0.8 <= retried.next_attempt_at <= time.time() + 10 * 1.2  # schedule[1]
    assert states[ids[2]].next_attempt_at >= before + 60  # Retry-After lengthens it
    assert (states[ids[3]].status, states[ids[3]].last_error) == ("dead", "answered 400")
    deferred = states[ids[4]]
    assert (deferred.status, deferred.attempts) == ("pending", 0)  # no attempt counted
    assert deferred.next_attempt_at >= before + 7.0
    assert relay.counters()["delivered"] == 1
    assert relay.counters()["deferred"] == 1
    # the same report again (a redelivered report) changes nothing
    assert relay.apply(body) == 0
    # a report under a lease that expired and was claimed again is ignored
    store.retry([ids[3]])
    (again,) = store.claim("producer:2/1", 10, 30.0)
    stale = report(token, "celery@w1", [outcome(msgs[ids[3]], "delivered", status=200)])
    assert relay.apply(stale) == 0
    assert store.status(again.id).status == "delivering"
    # the last step of the schedule used: the retry verdict becomes dead
    last = report("producer:2/1", "celery@w1", [outcome(
        Message(again.id, again.key, "POST", again.url, again.origin, again.wire, 5.0, 3,
                again.schedule), "retry", status=503, error="answered 503")])
    assert relay.apply(last) == 1
    assert store.status(again.id).status == "dead"
    store.close()


def test_a_worker_drops_a_batch_whose_lease_expired(server: RecordingServer) -> None:
    worker = Worker(None, emitter=Emitter())
    message = Message("msg_1", "k", "POST", server.url("/x"), "x", b"POST /x HTTP/1.1\r\n\r\n",
                      1.0, 1, (0.0,))
    batch = Batch("o/1", time.time() - 1, "reply", "Idempotency-Key", 5.0, 4, (5, 5.0, 300.0),
                  (message,))
    assert worker.run(batch.encode(), "celery@w") == {"stale": 1}
    assert worker.stale == 1
    assert worker.batches == 0
    time.sleep(0.2)
    assert server.count == 0


def test_register_configures_the_task_for_at_least_once() -> None:
    app = Celery("t", broker="redis://127.0.0.1:1/0", set_as_current=False)
    task = register(app, sign="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    assert task.name == TASK_NAME == "sendoff.deliver"
    assert task.acks_late is True
    assert task.reject_on_worker_lost is True
    assert task.ignore_result is True
    assert app.conf.worker_prefetch_multiplier == 1
    app.close()


def _claimed(ident: str, origin: str, size: int) -> Claimed:
    return Claimed(
        id=ident, key=ident, method="POST", url=f"{origin}/hook", origin=origin,
        wire=b"x" * size, timeout=5.0, ordering_key=None, attempt=1, attempts=1,
        schedule=(0.0,), created_at=0.0, lease_owner="o", lease_expires=10.0,
    )


def test_a_claim_is_split_into_tasks_by_origin_count_and_bytes() -> None:
    """A task holds one origin's messages, at most ``batch`` of them and ``batch_bytes`` of
    request bytes; a message larger than that goes alone. Order is kept."""
    a, b = "http://a.example:80", "http://b.example:80"
    claimed = [
        _claimed("a1", a, 400), _claimed("b1", b, 10), _claimed("a2", a, 400),
        _claimed("a3", a, 400), _claimed("a4", a, 5000), _claimed("a5", a, 1),
        _claimed("b2", b, 10), _claimed("b3", b, 10), _claimed("b4", b, 10),
    ]
    tasks = split_batches(claimed, batch=3, batch_bytes=1000)
    assert [[m.id for m in task] for task in tasks] == [
        ["a1", "a2"], ["a3"], ["a4"], ["a5"], ["b1", "b2", "b3"], ["b4"],
    ]
