"""Background tasks that a stopping process may kill are logged by name when it is told to
stop, since nothing can log once the kill comes.

A server stops a worker with a signal: gunicorn sends SIGTERM (graceful: the worker ends
its current request, inline tasks included, then exits) or SIGQUIT/SIGINT (quick: the
worker exits at once), and SIGKILLs any worker still alive ``--graceful-timeout`` seconds
later; uvicorn, on SIGTERM or SIGINT, waits for running requests (inline tasks included)
at most ``--timeout-graceful-shutdown`` seconds, then cancels them. A SIGKILL runs no code,
so the tasks it kills can only be named before it comes. While request task lists run
(:func:`started` .. :func:`finished`), this module chains a handler in front of the
process's own for SIGTERM, SIGINT and SIGQUIT that logs, at WARNING, each running list
with its running and waiting tasks, then calls the previous handler (the server's, or the
default action) as before. A list that then ends logs an INFO line saying so; a list
named at the signal without that line was killed.

Handlers can only be set from the main thread, and this module sets them only where a
server has set its own for SIGTERM (elsewhere the process stops as it always did): when a
task list starts there (a gunicorn sync worker, an ASGI event loop), and when a middleware
or App is built there (a gunicorn gthread worker loading its app). A gthread worker
started with ``--preload`` builds its app before it has handlers and runs tasks in its
thread pool only: there, the tasks a shutdown kills are not named.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any, Protocol

log = logging.getLogger("sendoff.background")

#: The signals a server stops its workers with.
STOP_SIGNALS = tuple(
    getattr(signal, name) for name in ("SIGTERM", "SIGINT", "SIGQUIT") if hasattr(signal, name)
)


class Running(Protocol):
    """A task list being run (a ``RequestScope``)."""

    label: str

    def left(self) -> str:
        """Its running task and the tasks still waiting, by name."""


_lock = threading.RLock()  # the handler may run while the main thread holds it
_running: dict[int, Running] = {}
#: Functions that list task lists waiting to start (a ThreadExecutor's queue).
waiting_sources: list[Callable[[], Sequence[Running]]] = []
#: Per signal, the handlers this module was put in front of, oldest first: a handler put
#: in front of ours later that chains to its predecessor calls ours again, which then
#: goes one step further back instead of round in a circle.
_previous: dict[int, list[Any]] = {}
_depth: dict[int, int] = {}
_stopping: list[str] = []  # the name of the first stop signal received


def started(scope: Running) -> None:
    """``scope``'s tasks start running; watch for stop signals (from the main thread)."""
    with _lock:
        _running[id(scope)] = scope
    watch()


def finished(scope: Running) -> None:
    """``scope``'s tasks have ended (ran, failed or were abandoned)."""
    with _lock:
        _running.pop(id(scope), None)
        stopping = _stopping[0] if _stopping else ""
    if stopping:
        log.info("background tasks of %s ended after %s", scope.label, stopping)


def watch() -> None:
    """Put :func:`on_stop_signal` in front of the stop signals' handlers, from the main
    thread (elsewhere Python cannot set them), where a server has set its own handler for
    SIGTERM (gunicorn's workers, uvicorn), not in a plain script or a test process; again
    if the server has replaced it since."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, signal.SIG_IGN, None):
        return
    for signum in STOP_SIGNALS:
        current = signal.getsignal(signum)
        if current is on_stop_signal:
            continue
        try:
            signal.signal(signum, on_stop_signal)
        except (ValueError, OSError):  # not settable here (an embedded interpreter)
            continue
        with _lock:
            _previous.setdefault(signum, []).append(current)


def on_stop_signal(signum: int, frame: FrameType | None) -> None:
    """Log the task lists running now, by name, then act as the previous handler."""
    depth = _depth.get(signum, 0)
    with _lock:
        chain = _previous.get(signum) or [signal.SIG_DFL]
    if depth >= len(chain):
        return  # called back more often than handlers were chained: nothing left to call
    previous = chain[-1 - depth]
    _depth[signum] = depth + 1
    try:
        if depth == 0:
            _report(signal.Signals(signum).name)
        _chain(previous, signum, frame)
    finally:
        _depth[signum] = depth


def _report(name: str) -> None:
    waiting = [scope for source in waiting_sources for scope in source()]
    with _lock:
        running = list(_running.values())
        if (running or waiting) and not _stopping:
            _stopping.append(name)
    if running or waiting:
        lists = [f"{scope.label}: {scope.left()}" for scope in running]
        lists += [f"{scope.label}: {scope.left()} (waiting for a thread)" for scope in waiting]
        log.warning(
            "%s: this process is stopping while background tasks run; a task still running"
            " when the server kills the process (gunicorn: after --graceful-timeout) is"
            " lost: %s",
            name,
            "; ".join(lists),
        )


def _chain(previous: Any, signum: int, frame: FrameType | None) -> None:
    if callable(previous):
        previous(signum, frame)
    elif previous == signal.SIG_IGN:
        return
    else:  # SIG_DFL, or a handler not set from Python: the default action, as before
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)


def _after_fork_in_child() -> None:
    # The parent's running lists are not running here; a server sets its own handlers
    # in the child, in front of which watch() goes again.
    global _lock
    _lock = threading.RLock()
    _running.clear()
    _stopping.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)
