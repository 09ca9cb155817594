"""The per-request task scope: :class:`RequestScope`, :func:`add`, :func:`tasks`, :func:`run`.

A :class:`RequestScope` is the list of background tasks of one request. The current one is
kept in a :class:`contextvars.ContextVar`, so a task added while one request is handled
never lands in the list of another request served by the same thread, process or event
loop. Outside a request (a script, a CLI, a test) :func:`add` opens an *unmanaged* scope
in the current context and :func:`run` runs it there and then. In a process that serves
requests (one that has opened a managed scope), :func:`add` outside any request raises
``RuntimeError``: nothing would ever run the task.
"""

from __future__ import annotations

import atexit
import contextvars
import inspect
import logging
import threading
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ParamSpec

from . import shutdown
from .executors import ExecutorChoice, resolve
from .tasks import BackgroundTasksFailed, OnError, Task, check_on_error, task_names

if TYPE_CHECKING:
    import asyncio

log = logging.getLogger("sendoff.background")

P = ParamSpec("P")

_current: contextvars.ContextVar[RequestScope | None] = contextvars.ContextVar(
    "sendoff.background.scope", default=None
)
# Scopes opened outside a request; at exit, tasks nobody ran are reported.
_unmanaged: weakref.WeakSet[RequestScope] = weakref.WeakSet()
#: Tasks an unmanaged scope may hold before a warning says nobody seems to run them.
UNMANAGED_WARN_AT = 1000


class RequestScope:
    """The background tasks of one request, run after its response has been sent.

    Servers and apps open one per request, make it current while the request is handled,
    then hand it to an executor once the client has the response::

        scope = RequestScope(on_error="stop", label="GET /orders")
        with scope.active():              # background.add() lands in this scope
            body = handle(request)
        ...                               # the response is sent
        scope.after_response("inline")    # or: await scope.after_response_async(executor)

    If the request fails before its response is complete, call :meth:`discard` instead:
    the tasks are logged by name and not run.
    """

    #: True once this process has opened a managed scope (it serves requests).
    served_requests = False

    def __init__(self, *, on_error: OnError = "stop", label: str = "", managed: bool = True):
        self.on_error: OnError = check_on_error(on_error)
        self.label = label
        #: True for scopes run by a server/app after the response; ``run()`` leaves them be.
        self.managed = managed
        if managed:
            RequestScope.served_requests = True
        self._queue: deque[Task] = deque()
        # reentrant: a stop signal's handler may read the scope while the main thread,
        # which it interrupted, holds the lock
        self._lock = threading.RLock()
        self._closed = False  # no more tasks accepted: run, discarded or abandoned
        self._abandoned = False
        self._running: Task | None = None
        self._failures: list[tuple[Task, Exception]] = []
        self._context: contextvars.Context | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def __repr__(self) -> str:
        return f"<RequestScope {self.label or 'unnamed'} pending={len(self._queue)}>"

    # -- while the request is handled -------------------------------------------------------

    @contextmanager
    def active(self) -> Iterator[RequestScope]:
        """Make this the current scope in the current context for the ``with`` block."""
        token = _current.set(self)
        try:
            yield self
        finally:
            _current.reset(token)

    def append(self, task: Task) -> None:
        """Queue ``task``; raises ``RuntimeError`` once the scope has run or been discarded."""
        with self._lock:
            if self._closed:
                raise RuntimeError(
                    f"cannot add {task.name}: the background tasks of {self.label or 'this scope'}"
                    " have already run or been discarded"
                )
            self._queue.append(task)

    @property
    def accepting(self) -> bool:
        """True while tasks may still be added (not yet run to the end or discarded)."""
        return not self._closed

    def mark(self) -> int:
        """A bookmark of the tasks queued so far, for :meth:`drop_since`."""
        with self._lock:
            return len(self._queue)

    def drop_since(self, mark: int, reason: str) -> None:
        """Drop the tasks added after ``mark`` (a handler that failed added them) and log
        them by name; tasks added before stay queued."""
        with self._lock:
            if self._closed or len(self._queue) <= mark:
                return
            kept = list(self._queue)
            dropped = kept[mark:]
            self._queue = deque(kept[:mark])
        self._not_run(reason, dropped)

    def pending(self) -> tuple[Task, ...]:
        """The tasks queued and not started yet, in the order they will run."""
        with self._lock:
            return tuple(self._queue)

    def left(self) -> str:
        """The running task and those waiting, by name, as the logs show them."""
        with self._lock:
            running = [f"{self._running.name} (running)"] if self._running is not None else []
            return ", ".join(running + [t.name for t in self._queue]) or "none"

    # -- after the response -----------------------------------------------------------------

    def after_response(self, executor: ExecutorChoice = "inline") -> None:
        """Hand the tasks to ``executor`` (``"inline"``, ``"thread"`` or an instance)."""
        chosen = resolve(executor)
        if self._hand_over():
            chosen.submit(self)

    async def after_response_async(self, executor: ExecutorChoice = "inline") -> None:
        """Like :meth:`after_response`, from a coroutine on the request's event loop."""
        import asyncio

        chosen = resolve(executor)
        if self._hand_over():
            self._loop = asyncio.get_running_loop()
            await chosen.submit_async(self)

    def discard(self, reason: str) -> None:
        """Close the scope without running its tasks; what is dropped is logged by name."""
        with self._lock:
            self._closed = True
            dropped = list(self._queue)
            self._queue.clear()
        self._not_run(reason, dropped)

    def _not_run(self, reason: str, dropped: list[Task]) -> None:
        if dropped:
            log.warning(
                "background tasks of %s not run (%s): %s", self.label, reason, task_names(dropped)
            )

    def _hand_over(self) -> bool:
        """Capture the context the tasks will run in; False (and closed) when there are none."""
        with self._lock:
            if not self._queue:
                self._closed = True
                return False
        self._context = contextvars.copy_context()
        return True

    # -- for executors ----------------------------------------------------------------------

    def execute(self) -> None:
        """Run the tasks in this thread; coroutines run on the request's loop if it had one."""
        context = self._context if self._context is not None else contextvars.copy_context()
        shutdown.started(self)
        try:
            failed = context.run(self._run_sync)
        finally:
            shutdown.finished(self)
        if failed is not None:
            log.error("BackgroundTasksFailed (%s): %s", self.label, failed)

    async def execute_async(self) -> None:
        """Run the tasks from a coroutine: coroutines awaited, functions in a thread."""
        shutdown.started(self)
        try:
            failed = await self._run_async()
        finally:
            shutdown.finished(self)
        if failed is not None:
            log.error("BackgroundTasksFailed (%s): %s", self.label, failed)

    def abandon(self) -> list[Task]:
        """Stop after the running task; return it and the tasks that will not start."""
        with self._lock:
            self._abandoned = self._closed = True
            left = ([self._running] if self._running is not None else []) + list(self._queue)
            self._queue.clear()
        return left

    def reopen(self) -> None:
        """Accept tasks again after a run; used for the unmanaged scope outside requests."""
        with self._lock:
            self._closed = self._abandoned = False
            self._failures = []

    # -- running ----------------------------------------------------------------------------

    def _run_sync(self) -> BackgroundTasksFailed | None:
        token = _current.set(self)
        runner: asyncio.Runner | None = None
        try:
            for task in self._drain():
                try:
                    result = task.func(*task.args, **task.kwargs)
                    if inspect.isawaitable(result):
                        if self._loop is not None:
                            _await_on_loop(self._loop, result)
                        else:
                            runner = runner or _new_runner()
                            runner.run(_awaited(result), context=contextvars.copy_context())
                except Exception as exc:
                    if self._failed(task, exc):
                        break
        except BaseException as exc:
            self._interrupted(exc)
            raise
        finally:
            if runner is not None:
                runner.close()
            _current.reset(token)
        return self._finish()

    async def _run_async(self) -> BackgroundTasksFailed | None:
        import asyncio

        token = _current.set(self)
        try:
            for task in self._drain():
                try:
                    if task.is_async:
                        result = task.func(*task.args, **task.kwargs)
                    else:
                        result = await asyncio.to_thread(task.func, *task.args, **task.kwargs)
                    if inspect.isawaitable(result):
                        await result
                except Exception as exc:
                    if self._failed(task, exc):
                        break
        except BaseException as exc:  # cancelled by the server's shutdown, for one
            self._interrupted(exc)
            raise
        finally:
            _current.reset(token)
        return self._finish()

    def _drain(self) -> Iterator[Task]:
        """Pop tasks in order, including those added by running tasks, until none are left."""
        while True:
            with self._lock:
                if self._abandoned or not self._queue:
                    self._running = None
                    self._closed = True
                    return
                task = self._running = self._queue.popleft()
            yield task

    def _failed(self, task: Task, exc: Exception) -> bool:
        """Log one failure with its traceback; True when the rest must be skipped."""
        self._failures.append((task, exc))
        log.error("background task %s (%s) failed", task.name, self.label, exc_info=exc)
        return self.on_error == "stop"

    def _finish(self) -> BackgroundTasksFailed | None:
        with self._lock:
            self._closed = True
            self._running = None
            skipped = list(self._queue)
            self._queue.clear()
        if not self._failures:
            return None
        return BackgroundTasksFailed(self._failures, skipped)

    def _interrupted(self, exc: BaseException) -> None:
        with self._lock:
            running = self._running
        left = self.abandon()
        waiting = [t for t in left if t is not running]
        log.error(
            "background tasks of %s interrupted by %s%s; not run: %s",
            self.label,
            type(exc).__name__,
            f" in {running.name}" if running is not None else "",
            task_names(waiting) or "none",
        )


def add(func: Callable[P, Any], /, *args: P.args, **kwargs: P.kwargs) -> Task:
    """Queue ``func(*args, **kwargs)`` to run after the current request's response.

    ``func`` may be a plain function or a coroutine function. Tasks run in the order added;
    a task may add more tasks, which run after the ones already queued. Outside a request
    the task waits for :func:`run`.
    """
    if not callable(func):
        if inspect.iscoroutine(func):
            func.close()
        raise TypeError(
            f"background.add() takes a function and its arguments, not {type(func).__name__}"
            " (write add(f, x), not add(f(x)))"
        )
    task = Task(func, args, kwargs)
    scope = _current.get()
    if scope is None:
        if RequestScope.served_requests:
            raise RuntimeError(
                f"background.add({task.name}) outside any request, in a process that serves"
                " requests: nothing would ever run it. Wrap the application with"
                " sendoff.wsgi.BackgroundMiddleware or sendoff.asgi.BackgroundMiddleware (the"
                " HMVC App needs neither); from a thread the request started, run it in the"
                " request's context (contextvars.copy_context().run); for work outside"
                " requests, open a scope and run it yourself: `with"
                " background.RequestScope(managed=False).active(): background.add(...);"
                " background.run()`"
            )
        scope = RequestScope(managed=False, label="outside a request")
        _current.set(scope)
        _unmanaged.add(scope)
    scope.append(task)
    if not scope.managed and len(scope._queue) == UNMANAGED_WARN_AT:
        log.warning(
            "%d background tasks added outside a request wait for background.run(); if this"
            " process serves requests, wrap the application with BackgroundMiddleware",
            UNMANAGED_WARN_AT,
        )
    return task


def tasks() -> tuple[Task, ...]:
    """The current request's tasks that have not started yet, in order."""
    scope = _current.get()
    return scope.pending() if scope is not None else ()


def current_scope() -> RequestScope | None:
    """The scope :func:`add` would use now, or None when none is open."""
    return _current.get()


def run(*, on_error: OnError | None = None) -> None:
    """Run the queued tasks now, outside a request; inside one it does nothing.

    Inside a request handled by a ``BackgroundMiddleware`` (or the HMVC ``App``) the tasks
    run after the response anyway, so this returns at once. Outside a request the tasks run
    in order in this thread; coroutine functions run in a fresh event loop (from a running
    loop use ``await run_async()``). Raises :class:`BackgroundTasksFailed` if any task failed
    (each failure is also logged with its traceback).
    """
    scope = _unmanaged_scope(on_error)
    if scope is None:
        return
    if _running_loop() is not None and any(t.is_async for t in scope.pending()):
        raise RuntimeError(
            "background.run() would need a new event loop inside a running one;"
            " use `await background.run_async()`"
        )
    failed = scope._run_sync()
    scope.reopen()
    if failed is not None:
        raise failed


async def run_async(*, on_error: OnError | None = None) -> None:
    """:func:`run` for a coroutine: coroutines awaited here, plain functions in a thread."""
    scope = _unmanaged_scope(on_error)
    if scope is None:
        return
    failed = await scope._run_async()
    scope.reopen()
    if failed is not None:
        raise failed


def _unmanaged_scope(on_error: OnError | None) -> RequestScope | None:
    scope = _current.get()
    if scope is None:
        return None
    if scope.managed:
        log.debug("background.run() inside %s: its tasks run after the response", scope.label)
        return None
    if on_error is not None:
        scope.on_error = check_on_error(on_error)
    return scope


def _running_loop() -> asyncio.AbstractEventLoop | None:
    import asyncio

    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _new_runner() -> asyncio.Runner:
    import asyncio

    return asyncio.Runner()


async def _awaited(awaitable: Any) -> Any:
    return await awaitable


def _await_on_loop(loop: asyncio.AbstractEventLoop, awaitable: Any) -> Any:
    """Run ``awaitable`` on ``loop`` (owned by another thread) in a copy of this context."""
    import asyncio

    if loop is _running_loop():
        raise RuntimeError("cannot wait for a coroutine task on the loop of this very thread")
    context = contextvars.copy_context()

    async def in_context() -> Any:
        return await asyncio.get_running_loop().create_task(_awaited(awaitable), context=context)

    return asyncio.run_coroutine_threadsafe(in_context(), loop).result()


@atexit.register
def _report_never_run() -> None:
    for scope in list(_unmanaged):
        left = scope.pending()
        if left:
            log.warning(
                "background tasks added outside a request were never run"
                " (call sendoff.background.run()): %s",
                task_names(list(left)),
            )
