"""pytest fixtures for real brokers and Celery workers; a plugin module.

Use it from a test module (or, later, from the root conftest) with::

    pytest_plugins = ["tests.support.broker_fixtures"]

Fixtures:

``redis_server``
    a fresh ``RedisServer`` per test (function scope: a start costs ~25-80 ms, less than
    the FLUSHALL bookkeeping a shared one would need, and tests may kill or restart it).
``redis_server_factory``
    ``make(appendonly=True, ...)`` -> a started ``RedisServer``; all closed at teardown.
``rabbitmq_server``
    one ``RabbitMQServer`` for the whole session (a start costs ~2-3 s). Do not kill or
    stop it; tests isolate themselves with their own queue names (``celery_queue``). If a
    test did stop it anyway, ``broker_url`` restarts it.
``rabbitmq_server_factory``
    ``make(**kwargs)`` -> a private started node, for tests that kill or restart the broker.
``broker_url``
    parametrised ``[redis]`` / ``[rabbitmq]``: the URL of the matching server above. Only
    the broker a selected test needs is started.
``celery_queue``
    a queue name unique to the test.
``celery_worker_factory``
    ``make(broker_url, queue=..., concurrency=2, conf={...}, start=True)`` -> a
    ``CeleryWorker`` (logs under the test's ``tmp_path``). At teardown every worker still
    running is killed (SIGKILL of its process group): a warm shutdown costs ~1.8 s per
    worker; a test that wants one calls ``worker.stop()`` and checks its exit code.

On a failing test the logs of every broker and worker still running are attached to the
report.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.brokers import CeleryWorker, RabbitMQServer, RedisServer

BROKERS = ["redis", "rabbitmq"]

_live: list[RedisServer | RabbitMQServer | CeleryWorker] = []


def _track(obj: Any) -> Any:
    _live.append(obj)
    return obj


def _untrack(obj: Any) -> None:
    if obj in _live:
        _live.remove(obj)


@pytest.fixture
def redis_server_factory() -> Iterator[Callable[..., RedisServer]]:
    made: list[RedisServer] = []

    def make(**kwargs: Any) -> RedisServer:
        server = _track(RedisServer(**kwargs))
        made.append(server)
        return server.start()

    yield make
    for server in made:
        server.close()
        _untrack(server)


@pytest.fixture
def redis_server(redis_server_factory: Callable[..., RedisServer]) -> RedisServer:
    return redis_server_factory()


@pytest.fixture(scope="session")
def rabbitmq_server() -> Iterator[RabbitMQServer]:
    with RabbitMQServer() as server:
        _track(server)
        yield server
        _untrack(server)


@pytest.fixture
def rabbitmq_server_factory() -> Iterator[Callable[..., RabbitMQServer]]:
    made: list[RabbitMQServer] = []

    def make(**kwargs: Any) -> RabbitMQServer:
        server = _track(RabbitMQServer(**kwargs))
        made.append(server)
        try:
            return server.start()
        except BaseException:
            server.close()
            raise

    yield make
    for server in made:
        server.close()
        _untrack(server)


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest) -> str:
    if request.param == "redis":
        server: RedisServer | RabbitMQServer = request.getfixturevalue("redis_server")
    else:
        server = request.getfixturevalue("rabbitmq_server")
        if not server.running:  # an earlier test stopped the shared node
            server.restart()
    return server.url


@pytest.fixture
def celery_queue() -> str:
    return f"sendoff-test-{secrets.token_hex(4)}"


@pytest.fixture
def celery_worker_factory(tmp_path: Path) -> Iterator[Callable[..., CeleryWorker]]:
    workers: list[CeleryWorker] = []

    def make(broker_url: str, *, start: bool = True, **kwargs: Any) -> CeleryWorker:
        kwargs.setdefault("data_dir", tmp_path / f"worker-{len(workers)}")
        worker = _track(CeleryWorker(broker_url, **kwargs))
        workers.append(worker)
        return worker.start() if start else worker

    yield make
    for worker in workers:  # SIGKILL: a warm shutdown costs ~1.8 s a worker
        worker.kill()
        _untrack(worker)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[Any]
) -> Generator[None, Any, None]:
    """Attach the log of every broker and worker still running to a failing test's report."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for obj in _live:
            report.sections.append((f"log of {obj.name} pid {obj.proc and obj.proc.pid}",
                                    obj.describe()))
