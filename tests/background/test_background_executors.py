"""Executors in-process: the bounded thread pool, its full policies, shutdown and fork."""

from __future__ import annotations

import asyncio
import os
import select
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from sendoff import background
from sendoff.background import RequestScope, ThreadExecutor

WAIT = 10.0  # a bound on every wait below; none of them is a pace


Call = tuple[Callable[..., Any], tuple[Any, ...]]


def scope_with(*calls: Call, label: str = "GET /t") -> RequestScope:
    """A request scope holding ``calls``, as a handler would have left it."""
    scope = RequestScope(label=label)
    with scope.active():
        for func, args in calls:
            background.add(func, *args)
    return scope


@pytest.fixture
def executor() -> Iterator[ThreadExecutor]:
    pool = ThreadExecutor(max_workers=1, max_pending=1, grace=0)
    yield pool
    pool.shutdown(grace=0)


def blocked(executor: ThreadExecutor, gate: threading.Event, label: str = "GET /a") -> None:
    """Occupy the executor's only thread with a task that waits for ``gate``."""
    started = threading.Event()

    def hold() -> None:
        started.set()
        assert gate.wait(WAIT)

    scope_with((hold, ()), label=label).after_response(executor)
    assert started.wait(WAIT)


def test_tasks_run_on_a_pool_thread_and_submit_returns_at_once(executor: ThreadExecutor) -> None:
    gate, done = threading.Event(), threading.Event()
    where: list[str] = []

    def task() -> None:
        assert gate.wait(WAIT)  # submit must not wait for this
        where.append(threading.current_thread().name)
        done.set()

    scope_with((task, ())).after_response(executor)
    gate.set()
    assert done.wait(WAIT)
    assert where == ["sendoff-background-0"]


def test_full_pool_runs_tasks_in_the_caller_by_default(
    executor: ThreadExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    blocked(executor, gate)
    scope_with((print, ("queued",))).after_response(executor)  # fills max_pending=1
    ran_in: list[int] = []
    scope_with((lambda: ran_in.append(threading.get_ident()), ())).after_response(executor)
    assert ran_in == [threading.get_ident()]  # ran in this (the request's) thread
    assert "sendoff-background full (1 pending)" in caplog.text
    gate.set()
    assert executor.stats()["ran_inline_when_full"] == 1


def test_full_pool_with_drop_logs_each_dropped_task(caplog: pytest.LogCaptureFixture) -> None:
    pool = ThreadExecutor(max_workers=1, max_pending=1, on_full="drop", grace=0)
    gate = threading.Event()
    try:
        blocked(pool, gate)
        scope_with((print, ("queued",))).after_response(pool)
        ran: list[str] = []
        scope_with((ran.append, ("dropped",)), label="POST /x").after_response(pool)
        assert ran == []
        assert "dropped the background tasks of POST /x: builtins.list.append" in caplog.text
        assert pool.stats()["dropped"] == 1
    finally:
        gate.set()
        pool.shutdown(grace=0)


def test_shutdown_waits_for_work_that_finishes_within_the_grace(executor: ThreadExecutor) -> None:
    gate = threading.Event()
    ran: list[str] = []
    blocked(executor, gate)
    scope_with((ran.append, ("queued",))).after_response(executor)
    result: list[list[background.Task]] = []
    stopper = threading.Thread(target=lambda: result.append(executor.shutdown(grace=WAIT)))
    stopper.start()
    gate.set()
    stopper.join(WAIT)
    assert result == [[]]
    assert ran == ["queued"]


def test_shutdown_after_the_grace_logs_abandoned_tasks_by_name(
    executor: ThreadExecutor, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    blocked(executor, gate, label="GET /slow")
    scope_with((print, ("never",)), label="GET /queued").after_response(executor)

    abandoned = executor.shutdown(grace=0)

    assert [t.name for t in abandoned] == [
        f"{__name__}.blocked.<locals>.hold", "builtins.print"
    ]
    assert f"abandoned background tasks of GET /slow: {__name__}.blocked" in caplog.text
    assert "abandoned background tasks of GET /queued: builtins.print" in caplog.text
    gate.set()
    ran: list[str] = []
    scope_with((ran.append, ("after",))).after_response(executor)  # shut down: runs here
    assert ran == ["after"]


def test_coroutine_tasks_from_asgi_run_back_on_the_request_loop(executor: ThreadExecutor) -> None:
    async def request() -> tuple[list[object], asyncio.AbstractEventLoop]:
        done = threading.Event()
        seen: list[object] = []

        async def coro() -> None:
            seen.append(asyncio.get_running_loop())
            seen.append(background.current_scope())

        scope = RequestScope(label="GET /async")
        with scope.active():
            background.add(coro)
            background.add(done.set)
        await scope.after_response_async(executor)
        assert await asyncio.to_thread(done.wait, WAIT)
        return [*seen, scope], asyncio.get_running_loop()

    (loop_seen, scope_seen, scope), loop = asyncio.run(request())
    assert loop_seen is loop
    assert scope_seen is scope


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_gets_a_fresh_pool(executor: ThreadExecutor) -> None:
    parent_ran = threading.Event()
    scope_with((parent_ran.set, ())).after_response(executor)  # the parent's thread exists
    assert parent_ran.wait(WAIT)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: its copy of the pool has no thread until it starts one
        try:
            scope_with((os.write, (write_end, b"ran in child"))).after_response(executor)
            executor.shutdown(grace=WAIT)
        finally:
            os._exit(0)
    os.close(write_end)
    try:
        ready, _, _ = select.select([read_end], [], [], WAIT)
        assert ready, "the child's task never ran"
        assert os.read(read_end, 100) == b"ran in child"
    finally:
        os.close(read_end)
        os.waitpid(pid, 0)


def test_invalid_settings_raise() -> None:
    with pytest.raises(ValueError, match="on_full"):
        ThreadExecutor(on_full="block")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="max_pending"):
        ThreadExecutor(max_pending=0)
    with pytest.raises(ValueError, match="executor must be"):
        RequestScope().after_response("process")

