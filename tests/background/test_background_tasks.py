"""The task list itself, in-process: order, nesting, isolation, errors, run() outside a request."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import threading
from collections.abc import Iterator

import pytest

from sendoff import background
from sendoff.background import BackgroundTasksFailed, RequestScope
from sendoff.background.scope import UNMANAGED_WARN_AT, _current


@pytest.fixture(autouse=True)
def no_scope(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each test starts with no scope, as a fresh script would (one that serves no
    requests, whatever the other tests of this process did)."""
    monkeypatch.setattr(RequestScope, "served_requests", False)
    token = _current.set(None)
    yield
    _current.reset(token)


def test_tasks_run_in_order_and_a_task_may_add_more() -> None:
    ran: list[object] = []

    def note(x: object) -> None:
        ran.append(x)

    def adds_more() -> None:
        ran.append("adds")
        background.add(note, "added by a task")

    background.add(note, 1)
    background.add(adds_more)
    background.add(note, 2)
    assert [t.name for t in background.tasks()] == [
        f"{__name__}.test_tasks_run_in_order_and_a_task_may_add_more.<locals>.note",
        f"{__name__}.test_tasks_run_in_order_and_a_task_may_add_more.<locals>.adds_more",
        f"{__name__}.test_tasks_run_in_order_and_a_task_may_add_more.<locals>.note",
    ]
    background.run()
    assert ran == [1, "adds", 2, "added by a task"]
    assert background.tasks() == ()


def test_coroutine_functions_and_keyword_arguments() -> None:
    ran: list[object] = []

    async def later(x: int, *, y: int) -> None:
        await asyncio.sleep(0)
        ran.append(x + y)

    background.add(later, 1, y=2)
    background.run()
    assert ran == [3]


def test_run_async_awaits_coroutines_and_threads_functions() -> None:
    asyncio.run(run_async_awaits_coroutines_and_threads_functions())


async def run_async_awaits_coroutines_and_threads_functions() -> None:
    ran: list[tuple[str, bool]] = []
    loop_thread = threading.get_ident()

    async def coro() -> None:
        ran.append(("coro", threading.get_ident() == loop_thread))

    def func() -> None:
        ran.append(("func", threading.get_ident() == loop_thread))

    background.add(coro)
    background.add(func)
    with pytest.raises(RuntimeError, match="run_async"):
        background.run()  # would need a second event loop
    await background.run_async()
    assert ran == [("coro", True), ("func", False)]


def test_stop_skips_the_rest_and_run_raises_the_summary(caplog: pytest.LogCaptureFixture) -> None:
    ran: list[str] = []

    def boom() -> None:
        raise ValueError("boom")

    background.add(ran.append, "first")
    background.add(boom)
    background.add(ran.append, "skipped")
    with pytest.raises(BackgroundTasksFailed) as failed:
        background.run()
    assert ran == ["first"]
    [(task, error)] = failed.value.failures
    assert (task.name, str(error)) == (f"{__name__}.{boom.__qualname__}", "boom")
    assert [t.name for t in failed.value.skipped] == ["builtins.list.append"]
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.name == "sendoff.background"
    assert record.exc_info is not None
    assert record.exc_info[1] is error


def test_continue_runs_the_rest_and_lists_every_failure() -> None:
    ran: list[str] = []

    def fails(n: int) -> None:
        raise RuntimeError(f"failure {n}")

    background.add(fails, 1)
    background.add(ran.append, "still runs")
    background.add(fails, 2)
    with pytest.raises(BackgroundTasksFailed, match=r"2 background task\(s\) failed") as failed:
        background.run(on_error="continue")
    assert ran == ["still runs"]
    assert [str(e) for _, e in failed.value.failures] == ["failure 1", "failure 2"]
    assert failed.value.skipped == []


def test_each_context_has_its_own_list() -> None:
    background.add(print, "main")

    def in_other_context() -> tuple[background.Task, ...]:
        background.add(print, "other")
        return background.tasks()

    other = contextvars.Context().run(in_other_context)
    assert [t.args for t in other] == [("other",)]
    assert [t.args for t in background.tasks()] == [("main",)]


def test_run_inside_a_managed_scope_does_nothing_and_after_response_runs_once() -> None:
    ran: list[str] = []
    scope = RequestScope(label="GET /x")
    with scope.active():
        background.add(ran.append, "task")
        background.run()  # harmless: the scope's owner runs the tasks
        assert ran == []
        assert background.current_scope() is scope
    assert background.current_scope() is None
    scope.after_response("inline")
    assert ran == ["task"]
    with pytest.raises(RuntimeError, match="already run"), scope.active():
        background.add(ran.append, "too late")


def test_after_response_logs_failures_and_summary(caplog: pytest.LogCaptureFixture) -> None:
    scope = RequestScope(label="POST /orders", on_error="continue")
    with scope.active():
        background.add(int, "not a number")
        background.add(int, "7")
    scope.after_response("inline")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "background task builtins.int (POST /orders) failed"
    assert messages[1].startswith("BackgroundTasksFailed (POST /orders): 1 background task(s)")
    assert "builtins.int (ValueError: invalid literal" in messages[1]


def test_discard_logs_the_tasks_it_drops(caplog: pytest.LogCaptureFixture) -> None:
    scope = RequestScope(label="GET /broken")
    with scope.active():
        background.add(print, "never")
    scope.discard("the application raised")
    assert caplog.messages == [
        "background tasks of GET /broken not run (the application raised): builtins.print"
    ]


def test_add_wants_a_function_not_its_result() -> None:
    async def coro() -> None:
        pass

    with pytest.raises(TypeError, match=r"not add\(f\(x\)\)"):
        background.add(coro())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="on_error"):
        RequestScope(on_error="ignore")  # type: ignore[arg-type]


def test_add_outside_any_request_in_a_serving_process_raises_with_the_fix() -> None:
    RequestScope(label="GET /served")  # this process serves requests
    assert RequestScope.served_requests

    def in_a_thread_the_request_started() -> None:
        background.add(print, "lost?")

    for _ in range(3):  # every time: nothing accumulates anywhere
        with pytest.raises(RuntimeError) as info:
            contextvars.Context().run(in_a_thread_the_request_started)
        message = str(info.value)
        assert message.startswith("background.add(builtins.print) outside any request, in a"
                                  " process that serves requests")
        assert "sendoff.wsgi.BackgroundMiddleware" in message
        assert "background.run()" in message
    assert background.current_scope() is None
    assert background.tasks() == ()


def test_the_fix_in_the_message_works_in_a_serving_process() -> None:
    RequestScope(label="GET /served")
    ran: list[int] = []
    with RequestScope(managed=False).active():
        background.add(ran.append, 1)
        background.add(ran.append, 2)
        background.run()
    assert ran == [1, 2]


def test_many_tasks_nobody_runs_outside_a_request_are_warned_about(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def queue_many() -> None:
        for _ in range(UNMANAGED_WARN_AT + 5):
            background.add(print, "never")

    contextvars.Context().run(queue_many)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [
        f"{UNMANAGED_WARN_AT} background tasks added outside a request wait for"
        " background.run(); if this process serves requests, wrap the application with"
        " BackgroundMiddleware"
    ]
