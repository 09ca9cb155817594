"""The broker test infrastructure works: real redis-server, rabbitmq-server and Celery workers.

Nothing here is skipped: a broker that cannot be installed or started fails the test with
the reason (apt's output, the server's log).
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

import amqp
import kombu
import kombu.exceptions
import pytest

from tests.support.brokers import (
    CeleryWorker,
    RabbitMQServer,
    RedisServer,
    launch_together,
    pid_alive,
    wait_until,
)
from tests.support.celery_app import APPEND, SLOW_APPEND, make_app

pytest_plugins = ["tests.support.broker_fixtures"]

AT_LEAST_ONCE = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,
}


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _wait_for_lines(
    path: Path, count: int, workers: list[CeleryWorker], timeout: float
) -> list[str]:
    def enough() -> list[str]:
        lines = _lines(path)
        return lines if len(lines) >= count else []

    try:
        return wait_until(enough, timeout=timeout, what=f"{count} lines in {path}")
    except TimeoutError as exc:
        logs = "\n".join(w.describe() for w in workers)
        raise AssertionError(f"{exc}; got {len(_lines(path))}\n{logs}") from None


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except ConnectionRefusedError:
        return True
    return False


# --- Redis ------------------------------------------------------------------------------------


def test_redis_lpush_brpop_round_trip(redis_server: RedisServer) -> None:
    assert redis_server.url == f"redis://127.0.0.1:{redis_server.port}/0"
    client = redis_server.client()
    client.lpush("jobs", b"first", b"second")
    assert client.brpop(["jobs"], timeout=5) == (b"jobs", b"first")
    assert client.brpop(["jobs"], timeout=5) == (b"jobs", b"second")
    assert client.brpop(["jobs"], timeout=0.1) is None
    assert client.config_get("appendonly") == {"appendonly": "no"}
    assert client.config_get("save") == {"save": ""}


@pytest.mark.parametrize(("appendonly", "kept"), [(True, 100), (False, 0)], ids=["aof", "no-aof"])
def test_redis_restart_after_kill(
    redis_server_factory: Callable[..., RedisServer], appendonly: bool, kept: int
) -> None:
    server = redis_server_factory(appendonly=appendonly)
    port = server.port
    client = server.client(retry_on_timeout=False)
    client.lpush("jobs", *[str(n) for n in range(100)])

    assert server.kill() == -9
    assert _refused(port)
    server.restart()

    assert server.port == port
    assert client.llen("jobs") == kept
    if appendonly:  # and a clean stop/start keeps it too
        client.lpush("jobs", "one more")
        server.restart()
        assert client.lrange("jobs", 0, 0) == [b"one more"]
        assert client.llen("jobs") == 101


# --- RabbitMQ ---------------------------------------------------------------------------------


def test_rabbitmq_publish_and_consume(rabbitmq_server: RabbitMQServer, celery_queue: str) -> None:
    assert rabbitmq_server.url == f"amqp://guest:guest@127.0.0.1:{rabbitmq_server.port}//"
    assert rabbitmq_server.node_name.startswith("sendoff-")
    assert rabbitmq_server.node_name.endswith("@localhost")
    with kombu.Connection(rabbitmq_server.url, transport_options={"confirm_publish": True}) as conn:
        queue = conn.SimpleQueue(celery_queue)
        queue.put({"n": 1})
        listed = rabbitmq_server.ctl("list_queues", "name", "messages", "--no-table-headers")
        assert f"{celery_queue}\t1" in listed.splitlines()
        message = queue.get(timeout=5)
        assert message.payload == {"n": 1}
        message.ack()
        with pytest.raises(queue.Empty):
            queue.get(timeout=0.2)
        queue.close()
        assert queue.queue(conn.default_channel).delete() == 0  # messages left in it


def test_rabbitmq_confirm_publish_raises_when_the_broker_refuses(
    rabbitmq_server: RabbitMQServer, celery_queue: str
) -> None:
    """A queue that is full with ``x-overflow: reject-publish`` nacks a publish: silently
    lost without publisher confirms; ``MessageNacked`` (kombu), ``OperationalError``
    (Celery ``.delay()``) with ``confirm_publish``."""
    def full_queue(name: str) -> kombu.Queue:
        return kombu.Queue(name, routing_key=name,
                           queue_arguments={"x-max-length": 1, "x-overflow": "reject-publish"})

    for confirm in (False, True):
        queue = full_queue(f"{celery_queue}-{confirm}")
        options = {"confirm_publish": confirm}
        with kombu.Connection(rabbitmq_server.url, transport_options=options) as conn:
            producer = conn.Producer()
            producer.publish("one", routing_key=queue.name, declare=[queue])
            if confirm:
                with pytest.raises(amqp.exceptions.MessageNacked):
                    producer.publish("two", routing_key=queue.name)
            else:
                producer.publish("two", routing_key=queue.name)  # returns: lost, unnoticed
            assert queue(conn.channel()).queue_declare(passive=True).message_count == 1

        app = make_app(rabbitmq_server.url, task_default_queue=queue.name, task_queues=[queue],
                       broker_transport_options=options)
        try:
            if confirm:
                with pytest.raises(kombu.exceptions.OperationalError):
                    app.tasks[APPEND].delay("/dev/null", "three")
            else:
                app.tasks[APPEND].delay("/dev/null", "three")
        finally:
            app.close()


def _drain(url: str, name: str) -> list[str]:
    got: list[str] = []
    with kombu.Connection(url) as conn:
        queue = conn.SimpleQueue(name)
        while True:
            try:
                message = queue.get(timeout=0.5)
            except queue.Empty:
                break
            got.append(message.payload)
            message.ack()
        queue.close()
    return got


def test_rabbitmq_kill_and_restart_keep_persistent_messages(
    rabbitmq_server_factory: Callable[..., RabbitMQServer],
) -> None:
    server = rabbitmq_server_factory()
    port, node = server.port, server.node_name
    queue = kombu.Queue("restart-test", durable=True, routing_key="restart-test")
    with kombu.Connection(server.url) as conn:
        queue(conn.channel()).declare()
    # A clean stop and start: the durable queue's record is on disk now. The node writes it
    # to its metadata store lazily, and a kill -9 soon after a declare, under load, once lost
    # the queue itself (and so the confirmed message in it); long-lived queues, as Celery's
    # are, do not have that window.
    server.restart()
    with kombu.Connection(server.url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        # confirmed + persistent + durable queue: on disk before publish() returns
        producer.publish("persistent-1", routing_key="restart-test", delivery_mode=2)
        producer.publish("transient-1", routing_key="restart-test", delivery_mode=1)

    assert server.kill() == -9
    assert _refused(port)
    server.restart()
    assert (server.port, server.node_name) == (port, node)
    with kombu.Connection(server.url) as conn:
        conn.Producer().publish("persistent-2", routing_key="restart-test", delivery_mode=2)

    server.restart()  # a clean stop and start
    assert _drain(server.url, "restart-test") == ["persistent-1", "persistent-2"]
    assert len(server.start_seconds) == 4


# --- Celery -----------------------------------------------------------------------------------


def test_two_workers_run_100_tasks(
    broker_url: str,
    celery_queue: str,
    celery_worker_factory: Callable[..., CeleryWorker],
    tmp_path: Path,
) -> None:
    workers = launch_together(
        celery_worker_factory(broker_url, queue=celery_queue, concurrency=2, conf=AT_LEAST_ONCE,
                              start=False)
        for _ in range(2)
    )
    for worker in workers:
        assert len(worker.wait_for_children()) == 2

    out = tmp_path / "lines.txt"
    app = make_app(broker_url, task_default_queue=celery_queue, **AT_LEAST_ONCE)
    try:
        for n in range(100):
            app.tasks[APPEND].delay(str(out), str(n))
    finally:
        app.close()

    lines = _wait_for_lines(out, 100, workers, timeout=60)
    assert sorted(int(line.split()[0]) for line in lines) == list(range(100))
    # both workers took part (prefetch 1 and acks_late: neither can hoard the queue)
    assert {line.split()[1] for line in lines} == {w.nodename for w in workers}


def test_worker_kill_child_stop_and_kill(
    redis_server: RedisServer,
    celery_queue: str,
    celery_worker_factory: Callable[..., CeleryWorker],
    tmp_path: Path,
) -> None:
    stopped, killed = launch_together(
        celery_worker_factory(redis_server.url, queue=celery_queue, concurrency=2, start=False)
        for _ in range(2)
    )

    # one pool process SIGKILLed: the pool replaces it and the worker keeps working
    before = stopped.wait_for_children()
    victim = stopped.kill_child()
    assert victim in before
    def replaced() -> list[int]:
        pids = stopped.child_pids()
        return pids if len(pids) == 2 and victim not in pids else []

    after = wait_until(replaced, timeout=30, what="a replacement pool process")
    assert set(after) - set(before)

    # kill(): the main process and every child are gone at once
    family = [killed.pid, *killed.wait_for_children()]
    assert killed.kill() == -9
    assert not killed.running
    assert not any(pid_alive(pid) for pid in family)

    # the surviving worker still runs tasks, then stops warmly with exit code 0
    out = tmp_path / "lines.txt"
    app = make_app(redis_server.url, task_default_queue=celery_queue)
    try:
        app.tasks[APPEND].delay(str(out), "after")
    finally:
        app.close()
    assert _wait_for_lines(out, 1, [stopped], timeout=30)[0].split()[:2] == [
        "after", stopped.nodename,
    ]
    children = stopped.child_pids()
    assert stopped.stop() == 0
    assert not any(pid_alive(pid) for pid in [stopped.pid, *children])


def test_acks_late_task_survives_killed_pool_process(
    broker_url: str,
    celery_queue: str,
    celery_worker_factory: Callable[..., CeleryWorker],
    tmp_path: Path,
) -> None:
    worker = celery_worker_factory(broker_url, queue=celery_queue, concurrency=1,
                                   conf=AT_LEAST_ONCE)
    out = tmp_path / "lines.txt"
    app = make_app(broker_url, task_default_queue=celery_queue, **AT_LEAST_ONCE)
    try:
        app.tasks[SLOW_APPEND].delay(str(out), "job", 1.0)
    finally:
        app.close()

    started = _wait_for_lines(out, 1, [worker], timeout=30)[0].split()
    assert started[:3] == ["started", "job", worker.nodename]
    worker.kill_child(int(started[3]))  # mid-task

    lines = _wait_for_lines(out, 3, [worker], timeout=30)
    assert [line.split()[:2] for line in lines] == [["started", "job"]] * 2 + [
        ["job", worker.nodename]
    ]
    assert "WorkerLostError" in worker.output()


def test_task_of_killed_worker_runs_on_the_other(
    broker_url: str,
    celery_queue: str,
    celery_worker_factory: Callable[..., CeleryWorker],
    tmp_path: Path,
) -> None:
    """kill -9 of a whole worker mid-task: RabbitMQ redelivers when the connection drops;
    Redis only once the message's ``visibility_timeout`` (default 1 h; 2 s here) expired."""
    conf = {
        **AT_LEAST_ONCE,
        "broker_transport_options": {
            "visibility_timeout": 2, "unacked_restore_interval": 1, "unacked_restore_throttle": 1,
        },
    }
    workers = launch_together(
        celery_worker_factory(broker_url, queue=celery_queue, concurrency=1, conf=conf,
                              start=False)
        for _ in range(2)
    )
    out = tmp_path / "lines.txt"
    app = make_app(broker_url, task_default_queue=celery_queue, **conf)
    try:
        app.tasks[SLOW_APPEND].delay(str(out), "job", 0.5)
    finally:
        app.close()

    started = _wait_for_lines(out, 1, workers, timeout=30)[0].split()
    victim, other = sorted(workers, key=lambda w: w.nodename != started[2])
    assert victim.kill() == -9

    lines = _wait_for_lines(out, 3, workers, timeout=30)
    assert [line.split()[:3] for line in lines[:2]] == [
        ["started", "job", victim.nodename],
        ["started", "job", other.nodename],
    ]
    assert lines[2].split()[:2] == ["job", other.nodename]
