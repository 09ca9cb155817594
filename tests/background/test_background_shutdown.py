"""In-process: the stop-signal hook names the running tasks, then acts as the handler it
replaced (the real servers are in test_background_lost.py)."""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from sendoff import background
from sendoff.background import RequestScope, shutdown


@pytest.fixture
def server_handlers() -> Iterator[list[tuple[int, Any]]]:
    """SIGTERM and SIGINT handlers of our own, as a server sets them; restored after."""
    seen: list[tuple[int, Any]] = []
    saved = {s: signal.getsignal(s) for s in shutdown.STOP_SIGNALS}

    def server(signum: int, frame: Any) -> None:
        seen.append((signum, frame))

    signal.signal(signal.SIGTERM, server)
    signal.signal(signal.SIGINT, server)
    try:
        yield seen
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)
        shutdown._stopping.clear()


def test_a_stop_signal_names_the_running_tasks_then_reaches_the_server(
    server_handlers: list[tuple[int, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="sendoff.background")
    ran: list[str] = []

    def stopped_while_running() -> None:
        os.kill(os.getpid(), signal.SIGTERM)  # the handler runs before the next line
        ran.append("after the signal")

    scope = RequestScope(label="GET /x")
    with scope.active():
        background.add(stopped_while_running)
        background.add(ran.append, "the next task")
    scope.after_response("inline")

    assert ran == ["after the signal", "the next task"]  # the server decides, not us
    assert [signum for signum, _ in server_handlers] == [signal.SIGTERM]
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "SIGTERM: this process is stopping while background tasks run; a task still running"
        " when the server kills the process (gunicorn: after --graceful-timeout) is lost:"
        f" GET /x: {__name__}.test_a_stop_signal_names_the_running_tasks_then_reaches_the_server"
        ".<locals>.stopped_while_running (running), builtins.list.append",
        "background tasks of GET /x ended after SIGTERM",
    ]


def test_no_task_running_means_no_line(
    server_handlers: list[tuple[int, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    shutdown.watch()
    assert signal.getsignal(signal.SIGINT) is shutdown.on_stop_signal
    os.kill(os.getpid(), signal.SIGINT)
    assert [signum for signum, _ in server_handlers] == [signal.SIGINT]
    assert caplog.records == []


def test_nothing_is_set_where_no_server_set_a_handler() -> None:
    saved = signal.getsignal(signal.SIGTERM)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    try:
        shutdown.watch()
        assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    finally:
        signal.signal(signal.SIGTERM, saved)


def test_outside_the_main_thread_nothing_is_set(server_handlers: list[Any]) -> None:
    before = signal.getsignal(signal.SIGTERM)
    thread = threading.Thread(target=shutdown.watch)
    thread.start()
    thread.join()
    assert signal.getsignal(signal.SIGTERM) is before


def test_a_task_list_interrupted_names_the_running_task_apart(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def quits() -> None:
        raise SystemExit(0)  # gunicorn's quick shutdown: sys.exit() in the worker

    scope = RequestScope(label="GET /q")
    with scope.active():
        background.add(quits)
        background.add(print, "never")
    with pytest.raises(SystemExit):
        scope.after_response("inline")
    assert caplog.messages == [
        f"background tasks of GET /q interrupted by SystemExit in {__name__}."
        "test_a_task_list_interrupted_names_the_running_task_apart.<locals>.quits;"
        " not run: builtins.print"
    ]


def test_task_lists_waiting_for_a_thread_are_named_too(
    server_handlers: list[tuple[int, Any]], caplog: pytest.LogCaptureFixture
) -> None:
    pool = background.ThreadExecutor(max_workers=1, grace=0)
    gate, started = threading.Event(), threading.Event()

    def hold() -> None:
        started.set()
        assert gate.wait(30)

    try:
        first = RequestScope(label="GET /running")
        with first.active():
            background.add(hold)
        first.after_response(pool)
        assert started.wait(30)
        second = RequestScope(label="GET /queued")
        with second.active():
            background.add(print, "later")
        second.after_response(pool)
        shutdown.watch()
        os.kill(os.getpid(), signal.SIGTERM)
    finally:
        gate.set()
        pool.shutdown(grace=30)
    [line] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert line.endswith(
        f"GET /running: {__name__}.test_task_lists_waiting_for_a_thread_are_named_too.<locals>"
        ".hold (running); GET /queued: builtins.print (waiting for a thread)"
    )
    assert [signum for signum, _ in server_handlers] == [signal.SIGTERM]


def test_a_handler_put_in_front_of_ours_that_chains_back_does_not_loop(
    server_handlers: list[tuple[int, Any]],
) -> None:
    calls: list[str] = []
    shutdown.watch()  # ours in front of the server's
    ours = signal.getsignal(signal.SIGTERM)
    assert ours is shutdown.on_stop_signal

    def newcomer(signum: int, frame: Any) -> None:  # e.g. another library's drain
        calls.append("newcomer")
        ours(signum, frame)  # chains to the handler it replaced: ours

    signal.signal(signal.SIGTERM, newcomer)
    shutdown.watch()  # a later task list puts ours in front again
    os.kill(os.getpid(), signal.SIGTERM)
    assert calls == ["newcomer"]
    assert [signum for signum, _ in server_handlers] == [signal.SIGTERM]  # once, at the end
