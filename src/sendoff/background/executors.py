"""Where a request's background tasks run once its response has been sent.

``"inline"`` (:class:`InlineExecutor`) runs them in the worker that served the request,
like PHP-FPM after ``fastcgi_finish_request()``: a sync WSGI worker takes its next request
only when they are done. Under ASGI they run in the request's own asyncio task, after the
response, so neither that response nor the next request on the connection waits; plain
functions go to the loop's default thread pool (``asyncio.to_thread``) so that they never
block the event loop.

``"thread"`` (:class:`ThreadExecutor`) hands them to a bounded pool of daemon threads, so a
sync WSGI worker is free for its next request at once. Under ASGI the pool bounds how many
requests' tasks run at a time; their coroutine tasks still run on the request's event loop
(so loop-bound clients and pools keep working), scheduled from the pool thread. At most
``max_pending`` requests' task lists wait for a thread; when the pool is full, ``on_full``
decides:

* ``"inline"`` (default): run them in the request's worker, as :class:`InlineExecutor`
  would. Nothing is lost; the worker slows down, which is the back-pressure you want.
* ``"drop"``: do not run them; each dropped list is logged (error) naming its tasks.

At interpreter exit (or :meth:`ThreadExecutor.shutdown`) queued and running tasks get
``grace`` seconds to finish; what is abandoned is logged by name.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
import weakref
from collections import deque
from typing import Literal, Protocol

from . import shutdown
from .tasks import OnError, Task, check_on_error, task_names

log = logging.getLogger("sendoff.background")

OnFull = Literal["inline", "drop"]


class TaskList(Protocol):
    """What an executor runs: the tasks of one request (a ``RequestScope``)."""

    label: str

    def execute(self) -> None:
        """Run the tasks in this thread."""

    async def execute_async(self) -> None:
        """Run the tasks from a coroutine on the request's event loop."""

    def abandon(self) -> list[Task]:
        """Stop after the running task; return it and the tasks that will not start."""

    def left(self) -> str:
        """Its running task and the tasks still waiting, by name."""


class Executor(Protocol):
    """Runs the tasks of a request whose response has been sent."""

    def submit(self, scope: TaskList) -> None:
        """Take ``scope`` from a sync caller (a WSGI ``close()``)."""

    async def submit_async(self, scope: TaskList) -> None:
        """Take ``scope`` from a coroutine on the request's event loop (ASGI)."""


class InlineExecutor:
    """Run the tasks in the worker that served the request, right after the response."""

    def submit(self, scope: TaskList) -> None:
        """Run the tasks now, in this thread."""
        scope.execute()

    async def submit_async(self, scope: TaskList) -> None:
        """Await the tasks now, in the request's task."""
        await scope.execute_async()

    def __repr__(self) -> str:
        return "InlineExecutor()"


class ThreadExecutor:
    """A bounded pool of daemon threads that runs request task lists one at a time each.

    Threads start on first use (so a pre-fork server's master never owns any) and the pool
    resets itself in a forked child.
    """

    def __init__(
        self,
        max_workers: int = 4,
        *,
        max_pending: int = 1000,
        on_full: OnFull = "inline",
        grace: float = 10.0,
        name: str = "sendoff-background",
    ) -> None:
        if max_workers < 1:
            raise ValueError(f"max_workers must be at least 1, not {max_workers}")
        if max_pending < 1:
            raise ValueError(f"max_pending must be at least 1, not {max_pending}")
        if on_full not in ("inline", "drop"):
            raise ValueError(f"on_full must be 'inline' or 'drop', not {on_full!r}")
        if grace < 0:
            raise ValueError(f"grace must be >= 0 seconds, not {grace}")
        self.max_workers = max_workers
        self.max_pending = max_pending
        self.on_full: OnFull = on_full
        self.grace = grace
        self.name = name
        self._reset()
        _executors.add(self)

    def _reset(self) -> None:
        self._cond = threading.Condition()
        self._queue: deque[TaskList] = deque()
        self._running: set[TaskList] = set()
        self._threads: list[threading.Thread] = []
        self._idle = 0
        self._closed = False
        self._full = False
        self._counts = {"submitted": 0, "ran_inline_when_full": 0, "dropped": 0, "abandoned": 0}

    def __repr__(self) -> str:
        return (
            f"ThreadExecutor(max_workers={self.max_workers}, max_pending={self.max_pending},"
            f" on_full={self.on_full!r}, grace={self.grace})"
        )

    def stats(self) -> dict[str, int]:
        """Counters: submitted, ran_inline_when_full, dropped, abandoned; and pending now."""
        with self._cond:
            return {**self._counts, "pending": len(self._queue), "running": len(self._running)}

    def submit(self, scope: TaskList) -> None:
        """Queue ``scope`` for a pool thread, or apply the ``on_full`` policy."""
        if not self._offer(scope) and self._take_inline(scope):
            scope.execute()

    async def submit_async(self, scope: TaskList) -> None:
        """Queue ``scope``; coroutine tasks will run back on the request's event loop."""
        if not self._offer(scope) and self._take_inline(scope):
            await scope.execute_async()

    def _offer(self, scope: TaskList) -> bool:
        with self._cond:
            if self._closed or len(self._queue) >= self.max_pending:
                return False
            self._queue.append(scope)
            self._counts["submitted"] += 1
            self._full = False
            if self._idle == 0 and len(self._threads) < self.max_workers:
                self._start_thread()
            self._cond.notify()
            return True

    def _take_inline(self, scope: TaskList) -> bool:
        """Apply the policy for a scope the pool refused; True when the caller runs it."""
        with self._cond:
            closed, was_full = self._closed, self._full
            self._full = not closed
            policy: OnFull = "inline" if closed else self.on_full
            self._counts["ran_inline_when_full" if policy == "inline" else "dropped"] += 1
        if closed:
            log.warning(
                "%s is shut down; running the tasks of %s in the caller", self.name, scope.label
            )
        elif policy == "drop":
            dropped = scope.abandon()
            log.error(
                "%s full (%d pending): dropped the background tasks of %s: %s",
                self.name,
                self.max_pending,
                scope.label,
                task_names(dropped),
            )
        elif not was_full:
            log.warning(
                "%s full (%d pending): running background tasks in the request's worker"
                " until it drains",
                self.name,
                self.max_pending,
            )
        return policy == "inline"

    def _start_thread(self) -> None:
        thread = threading.Thread(
            target=self._work, name=f"{self.name}-{len(self._threads)}", daemon=True
        )
        self._threads.append(thread)
        thread.start()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._idle += 1
                while not self._queue and not self._closed:
                    self._cond.wait()
                self._idle -= 1
                if not self._queue:
                    return
                scope = self._queue.popleft()
                self._running.add(scope)
            try:
                scope.execute()
            except BaseException:
                log.exception("%s: unexpected error running tasks of %s", self.name, scope.label)
            finally:
                with self._cond:
                    self._running.discard(scope)
                    self._cond.notify_all()

    def shutdown(self, grace: float | None = None) -> list[Task]:
        """Stop taking work, give what is queued or running ``grace`` seconds, log the rest.

        Returns the abandoned tasks (the ones still running, then those never started).
        Later submissions run in the caller.
        """
        grace = self.grace if grace is None else grace
        deadline = time.monotonic() + grace
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            while self._queue or self._running:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
            scopes = [*self._running, *self._queue]
            self._queue.clear()
        abandoned: list[Task] = []
        for scope in scopes:
            left_tasks = scope.abandon()
            if left_tasks:
                log.error(
                    "%s shut down after %.1fs grace: abandoned background tasks of %s: %s",
                    self.name,
                    grace,
                    scope.label,
                    task_names(left_tasks),
                )
                abandoned.extend(left_tasks)
        with self._cond:
            self._counts["abandoned"] += len(abandoned)
        return abandoned


#: Where tasks run: ``"inline"``, ``"thread"`` (one shared :class:`ThreadExecutor`) or an
#: executor instance.
ExecutorChoice = Executor | Literal["inline", "thread"]

_executors: weakref.WeakSet[ThreadExecutor] = weakref.WeakSet()
_inline = InlineExecutor()
_default_thread: ThreadExecutor | None = None
_default_lock = threading.Lock()


def resolve(executor: ExecutorChoice) -> Executor:
    """``"inline"``, ``"thread"`` (one shared :class:`ThreadExecutor`) or an executor."""
    global _default_thread
    if executor == "inline":
        return _inline
    if executor == "thread":
        with _default_lock:
            if _default_thread is None:
                _default_thread = ThreadExecutor()
            return _default_thread
    if isinstance(executor, str):
        raise ValueError(f"executor must be 'inline', 'thread' or an Executor, not {executor!r}")
    return executor


def options(executor: ExecutorChoice, on_error: str) -> tuple[Executor, OnError]:
    """The executor and error policy of a middleware or app, checked once when it is made
    (not per request). Built in a server's main thread after the server set its signal
    handlers (a gunicorn worker loading its app), it also starts watching for the stop
    signals, for the task lists that will run in other threads (see ``shutdown``)."""
    shutdown.watch()
    return resolve(executor), check_on_error(on_error)


@atexit.register
def _shutdown_all() -> None:
    for executor in list(_executors):
        if executor._threads:
            executor.shutdown()


def _waiting_everywhere() -> list[TaskList]:
    """The task lists queued in every ThreadExecutor, not started yet (for the stop-signal
    line; the handler may interrupt a thread holding a pool's lock: it does not wait)."""
    waiting: list[TaskList] = []
    for executor in list(_executors):
        if executor._cond.acquire(blocking=False):
            try:
                waiting.extend(executor._queue)
            finally:
                executor._cond.release()
    return waiting


shutdown.waiting_sources.append(_waiting_everywhere)


def _after_fork_in_child() -> None:
    # The parent's threads do not exist here and its queued tasks are the parent's to run.
    for executor in list(_executors):
        executor._reset()


os.register_at_fork(after_in_child=_after_fork_in_child)
