"""WSGI specifics on gunicorn: the thread executor, response shapes, fork, shutdown."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.background.servers import Served, new_id, start


@pytest.fixture(params=[(), ("--preload",)], ids=["fork-per-worker", "preload"])
def one_sync_worker(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A single sync worker whose app hands its tasks to a ThreadExecutor."""
    server = start("gunicorn-sync-1", "plain_wsgi:threaded", tmp_path, *request.param)
    try:
        yield Served(server, tmp_path)
    finally:
        server.stop()


def test_thread_executor_frees_the_only_sync_worker(one_sync_worker: Served) -> None:
    served = one_sync_worker
    rid = new_id()
    assert served.request(f"/block?id={rid}")[0] == 200

    # The only worker serves another request while the first one's task still waits.
    assert served.request("/plain") == (200, b"plain")
    assert not served.path(f"done-{rid}").exists()
    served.release(rid)
    assert served.wait_file(f"done-{rid}") == rid


def test_shutdown_gives_a_grace_period_then_logs_abandoned_tasks(one_sync_worker: Served) -> None:
    served = one_sync_worker
    rid = new_id()
    assert served.request(f"/block?id={rid}")[0] == 200
    served.request("/plain")  # the worker is free; the task waits for a release never sent

    served.server.stop()  # SIGTERM: the worker exits, the executor waits its 1 s grace

    output = served.output()
    assert "abandoned background tasks of GET /block: common.wait_then_write" in output
    assert not served.path(f"done-{rid}").exists()


@pytest.fixture(scope="module")
def plain_sync(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    files = tmp_path_factory.mktemp("plain-sync")
    server = start("gunicorn-sync", "plain_wsgi:application", files)
    try:
        yield Served(server, files)
    finally:
        server.stop()


def test_tasks_added_while_a_generator_body_is_sent_run_after_it(plain_sync: Served) -> None:
    rid = new_id()
    assert plain_sync.request(f"/generator?id={rid}") == (200, b"part one\npart two\n")
    plain_sync.wait_file(f"from-generator-{rid}")


def test_file_wrapper_responses_run_their_tasks(plain_sync: Served) -> None:
    rid = new_id()
    status, body = plain_sync.request(f"/file?id={rid}")
    assert (status, body) == (200, b"from a file\n" * 1000)
    plain_sync.wait_file(f"sent-{rid}")
