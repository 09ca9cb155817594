"""Many messages through real Celery workers, on Redis and on RabbitMQ, while a worker is
``kill -9``-ed or the broker is killed and restarted: nothing is lost, and the only
duplicates are the killed batch's, each with the message's own ``Idempotency-Key``."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from sendoff import Outbox
from tests.celery.helpers import (
    body_number,
    fire_numbers,
    flushed,
    key_of,
    status_reader,
)
from tests.celery.worker_app import TAG_ENV, TAG_HEADER
from tests.support.brokers import CeleryWorker, RabbitMQServer, RedisServer, wait_until
from tests.support.recording_server import Recorded, RecordingServer, Reply

pytest_plugins = ["tests.support.broker_fixtures"]

#: Messages through two workers in the kill test (about 8 s of delivery on a 2-core machine)
MANY = 20_000


def _by_number(received: list[Recorded]) -> dict[int, list[Recorded]]:
    out: dict[int, list[Recorded]] = defaultdict(list)
    for req in received:
        out[body_number(req)].append(req)
    return out


def _unfinished_tasks(worker: CeleryWorker) -> set[str]:
    """Tasks the worker received and never finished (what a kill -9 interrupted)."""
    log = worker.output()
    received = set(re.findall(r"Task sendoff\.deliver\[([^\]]+)\] received", log))
    finished = set(re.findall(r"Task sendoff\.deliver\[([^\]]+)\] succeeded", log))
    return received - finished


class _Watch:
    """Reads the server's requests as they come, counting each task's (batch's) requests."""

    def __init__(self, server: RecordingServer) -> None:
        self.server = server
        self.seen = 0
        self.per_task: dict[str, int] = defaultdict(int)
        self.last_task: dict[str, str] = {}  # nodename -> the task it sent from last

    def update(self) -> None:
        new = self.server.received[self.seen :]
        self.seen += len(new)
        for req in new:
            node, _pid, task = (req.header(TAG_HEADER) or "? ? ?").split()
            self.per_task[task] += 1
            self.last_task[node] = task

    def mid_batch(self, worker: CeleryWorker, after: int) -> str | None:
        """The task ``worker`` is sending from, if it is partway through (after ``after``
        requests in all): some of its requests arrived and the worker has not logged it
        finished."""
        self.update()
        task = self.last_task.get(worker.nodename)
        if self.seen < after or task is None or self.per_task[task] < 10:
            return None
        return task if task in _unfinished_tasks(worker) else None


@pytest.mark.timeout(170)
def test_20000_messages_two_workers_one_killed_mid_batch(
    broker_url: str,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    make_server: Callable[..., RecordingServer],
    tmp_path: Path,
) -> None:
    workers = sendoff_workers(broker_url, env={TAG_ENV: "1"})
    victim, survivor = workers
    mark = f"{victim.nodename} "

    def answer(req: Recorded) -> Reply:
        # the victim's requests take 50 ms (16 in flight: a batch of 200 lasts 0.6 s),
        # so that the test, however loaded the machine, sees it partway through a batch
        # and kills it there
        slow = (req.header(TAG_HEADER) or "").startswith(mark)
        return Reply(200, b"ok", delay=0.05 if slow else 0.0)

    server = make_server(answer)
    # a backlog of 20,000 stored first, so that every batch is a full one (200)
    path = tmp_path / "backlog.sqlite3"
    filler = Outbox(path, relay=None)
    ids = fire_numbers(filler, server.url("/hook"), MANY)
    filler.close()
    began = time.monotonic()
    outbox = celery_outbox(broker_url, path=path)
    assert outbox.relay is not None
    outbox.relay.wake()
    watch = _Watch(server)
    interrupted = wait_until(lambda: watch.mid_batch(victim, MANY // 5), timeout=90,
                             interval=0.005, what="the victim partway through a batch")
    os.killpg(victim.pid, signal.SIGKILL)  # at once: victim.kill() first lists its children
    sent_before_kill = watch.per_task[interrupted]
    assert victim.kill() == -9
    took = flushed(outbox, 120, workers)
    elapsed = time.monotonic() - began

    stats = outbox.stats()
    assert (stats["delivered"], stats["dead"], stats["pending"], stats["delivering"]) == (
        MANY, 0, 0, 0,
    )
    by_number = _by_number(server.received)
    assert sorted(by_number) == list(range(MANY))  # every message arrived: 0 lost
    for n, copies in by_number.items():  # every copy carries the message's key
        assert {key_of(req) for req in copies} == {ids[n]}, n
    duplicates = {n: copies for n, copies in by_number.items() if len(copies) > 1}
    killed = _unfinished_tasks(victim)
    assert interrupted in killed, (
        interrupted, sent_before_kill, {t: watch.per_task[t] for t in killed},
        "\n".join(line[:200] for line in victim.output().splitlines()
                  if "sendoff.deliver" in line)[-1500:])
    for n, copies in duplicates.items():
        tags = [(req.header(TAG_HEADER) or "").split() for req in copies]
        # one copy came from the batch the kill interrupted, the others from the survivor
        # (RabbitMQ hands it the same task again; on Redis the relay publishes a new one)
        assert [node for node, _, task in tags if node == victim.nodename] == [
            victim.nodename
        ], (n, tags)
        assert any(node == victim.nodename and task in killed for node, _, task in tags)
    assert 0 < len(duplicates) <= 200 * len(killed)
    # the survivor delivered the rest
    assert {(req.header(TAG_HEADER) or "").split()[0] for req in server.received[-100:]} == {
        survivor.nodename
    }
    print(f"\n{broker_url.split(':')[0]}: {MANY} messages in {elapsed:.1f}s"
          f" (flush {took:.1f}s); kill interrupted {len(killed)} batch(es) after"
          f" {sent_before_kill} of its requests; {len(duplicates)} duplicate(s);"
          f" relay {stats['relay']}")


def _restartable(broker: str, request: pytest.FixtureRequest) -> RedisServer | RabbitMQServer:
    if broker == "redis":
        server: RedisServer | RabbitMQServer = request.getfixturevalue("redis_server")
    else:
        server = request.getfixturevalue("rabbitmq_server_factory")()
    return server


@pytest.mark.timeout(170)
@pytest.mark.parametrize("broker", ["redis", "rabbitmq"])
def test_the_broker_killed_and_restarted_mid_run_loses_nothing(
    broker: str,
    request: pytest.FixtureRequest,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    server: RecordingServer,
) -> None:
    """Redis runs without persistence here: the kill loses every task and report it held,
    and the relay publishes those messages again once their lease expires. RabbitMQ keeps
    its confirmed persistent messages across the kill."""
    broker_server = _restartable(broker, request)
    workers = sendoff_workers(broker_server.url)
    outbox = celery_outbox(broker_server.url, batch=50)
    count = 3000
    ids: dict[int, str] = {}
    firing = threading.Thread(target=lambda: ids.update(
        fire_numbers(outbox, server.url("/hook"), count)))
    firing.start()
    wait_until(lambda: server.count >= count // 4, timeout=60, what="a quarter delivered")
    broker_server.kill()
    at_kill = server.count
    time.sleep(0.5)  # the relay and the workers notice
    broker_server.restart()
    firing.join()
    flushed(outbox, 120, workers)

    stats = outbox.stats()
    assert (stats["delivered"], stats["dead"], stats["pending"]) == (count, 0, 0)
    by_number = _by_number(server.received)
    assert sorted(by_number) == list(range(count))
    for n, copies in by_number.items():
        assert {key_of(req) for req in copies} == {ids[n]}
    assert at_kill < count  # the kill came mid-run
    print(f"\n{broker}: killed at {at_kill}/{count} received; relay {stats['relay']}")


@pytest.mark.timeout(60)
def test_a_status_is_read_by_id_from_another_process(
    broker_url: str,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    server: RecordingServer,
    tmp_path: Path,
) -> None:
    workers = sendoff_workers(broker_url, count=1)
    path = tmp_path / "shared.sqlite3"
    outbox = celery_outbox(broker_url, path=path)
    receipt = outbox.fire("POST", server.url("/hook"), json={"n": 1}, key="order-7:paid")
    flushed(outbox, 30, workers)
    run = subprocess.run([sys.executable, "-c", status_reader(str(path), receipt.id)],
                         capture_output=True, text=True, timeout=30, check=False)
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["delivered", "1", "200", "order-7:paid"]
    assert key_of(server.received[0]) == "order-7:paid"


@pytest.mark.timeout(90)
def test_a_killed_producers_outcomes_are_applied_by_the_next_relay(
    broker_url: str,
    celery_queue: str,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    make_server: Callable[..., RecordingServer],
    tmp_path: Path,
) -> None:
    """``kill -9`` of the producer while its batches are out with the workers: they go on
    delivering and report to the file's reply queue, and the next relay on the file
    applies those reports (their leases still hold). Nothing is lost; a message is sent
    twice only if the killed producer had taken its report off the queue and not written
    it (on Redis, kombu loses a message taken off the list by a consumer killed before it
    recorded it as unacknowledged): its lease expires and it goes out again."""
    server = make_server(lambda req: Reply(200, b"ok", delay=0.02))  # 4 at once: 200/s
    workers = sendoff_workers(broker_url)
    path = tmp_path / "producer.sqlite3"
    count = 300
    producer = subprocess.Popen(
        [sys.executable, "-m", "tests.celery.producer", broker_url, celery_queue, str(path),
         server.url("/hook"), str(count)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        wait_until(lambda: server.count >= 40, timeout=30, what="deliveries under way")
        producer.kill()
        killed_at = time.monotonic()
        assert producer.wait(10) == -signal.SIGKILL
        at_kill = server.count
        outbox = celery_outbox(broker_url, path=path, connections_per_origin=4)
        assert outbox.store.stats()["total"] == count  # every fire had been committed
        flushed(outbox, 60, workers)
    finally:
        if producer.poll() is None:
            producer.kill()
        stderr = producer.communicate()[1]
    stats = outbox.stats()
    assert (stats["delivered"], stats["dead"]) == (count, 0), stderr
    by_number = _by_number(server.received)
    assert sorted(by_number) == list(range(count))
    for copies in by_number.values():
        assert len({key_of(req) for req in copies}) == 1
    resent = [n for n, copies in by_number.items() if len(copies) > 1]
    # only messages delivered before the kill, whose reports the producer may have held
    assert all(by_number[n][0].received_at <= killed_at for n in resent), resent
    assert len(resent) <= at_kill < count
    assert stats["relay"]["delivered"] > 0  # reports made for the dead producer, applied
    print(f"\n{broker_url.split(':')[0]}: producer killed at {at_kill}/{count} delivered;"
          f" {len(resent)} sent again; relay {stats['relay']}")


@pytest.mark.timeout(90)
def test_two_relays_on_one_file_share_its_reply_queue(
    redis_server: RedisServer,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    server: RecordingServer,
    tmp_path: Path,
) -> None:
    """Two producer processes on one file (gunicorn workers, say), each with its relay:
    both read the file's reply queue, each applies whatever report it gets, and each
    learns from the file which of its messages are no longer out, long before a lease
    would expire."""
    workers = sendoff_workers(redis_server.url)
    path = tmp_path / "shared.sqlite3"
    first = celery_outbox(redis_server.url, path=path, lease=60.0)
    second = celery_outbox(redis_server.url, path=path, lease=60.0)
    ids = fire_numbers(first, server.url("/hook"), 1500)
    ids.update(fire_numbers(second, server.url("/hook"), 1500, start=1500))
    flushed(first, 60, workers)
    for outbox in (first, second):
        relay: Any = outbox.relay
        wait_until(lambda relay=relay: relay.in_flight() == 0, timeout=5,
                   what="the relay's count of messages out to come down")
    stats = first.stats()
    assert (stats["delivered"], stats["dead"]) == (3000, 0)
    by_number = _by_number(server.received)
    assert sorted(by_number) == list(range(3000))
    assert all(len(copies) == 1 for copies in by_number.values())
    counters = [outbox.stats()["relay"] for outbox in (first, second)]
    assert all(c["published"] > 0 and c["delivered"] > 0 for c in counters), counters
    assert sum(c["delivered"] for c in counters) == 3000
    assert sum(c["expired"] for c in counters) == 0


@pytest.mark.timeout(170)
def test_large_messages_go_in_tasks_a_broker_takes(
    broker_url: str,
    sendoff_workers: Callable[..., list[CeleryWorker]],
    celery_outbox: Callable[..., Outbox],
    server: RecordingServer,
) -> None:
    """12 messages of 3 MB (36 MB: more than one claim may take): each task holds at most
    ``batch_bytes`` (4 MiB), so every message goes in a task of its own, not one 36 MB
    task of 200 messages (RabbitMQ 4 refuses a message over 16 MiB). All arrive, once,
    whole."""
    workers = sendoff_workers(broker_url, count=1)
    outbox = celery_outbox(broker_url)
    body = "y" * 3_000_000
    for n in range(12):
        outbox.fire("POST", server.url("/big"), json={"n": n, "body": body})
    flushed(outbox, 120, workers)
    assert sorted(body_number(req) for req in server.received) == list(range(12))
    assert all(len(req.body) > 3_000_000 for req in server.received)
    tasks = re.findall(r"Task sendoff\.deliver\[([^\]]+)\] received", workers[0].output())
    assert len(set(tasks)) == 12
