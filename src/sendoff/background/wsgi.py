"""WSGI: run a request's background tasks when the server closes the response.

PEP 3333 servers call ``close()`` on the response iterable once they have written its last
byte (or given up on the client); that is the moment the tasks are handed to the executor.
Every shape of response works: lists, generators (whose code still sees the request's task
list while the server iterates them), and the server's ``wsgi.file_wrapper``, which is
returned as is so that the server can still use ``sendfile()``.

A response that did not reach the client drops its tasks (logged by name). WSGI has no
"the client is gone" event; what ``close()`` can tell, in order:

- the application's own iteration raised (the response is broken);
- the server calls ``close()`` while an exception raised after the response was made
  propagates through it: the write that failed (gunicorn sync and gthread:
  ``BrokenPipeError``/``ConnectionResetError`` from ``sendall``, then ``close()`` in a
  ``finally``; wsgiref, waitress and Werkzeug do the same);
- the server stopped iterating before the end without an exception (a server written in
  C, such as uWSGI, logs its write error and closes): it took fewer parts than the
  iterable has, or, for a generator, never asked for the part after the last.

What no WSGI server can tell: a reset arriving after the last byte went into the
kernel's send buffer (the write succeeded; TCP says nothing more), and, for a server that
stops quietly, the failed write of the very last part of a list.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from ..core.types import Environ, StartResponse, WSGIApp
from .scope import RequestScope, current_scope
from .tasks import OnError

if TYPE_CHECKING:
    from .executors import ExecutorChoice


def serve(
    app: WSGIApp,
    environ: Environ,
    start_response: StartResponse,
    *,
    executor: ExecutorChoice = "inline",
    on_error: OnError = "stop",
) -> Iterable[bytes]:
    """Call ``app`` in a fresh task scope; its tasks run once the server closes the response.

    If a scope is already open for this request (an outer middleware, or an app inside an
    app), ``app`` joins it instead. If ``app`` or the iteration of its response raises,
    the tasks are not run (and are logged by name).
    """
    outer = current_scope()
    if outer is not None and outer.managed and outer.accepting:
        return app(environ, start_response)
    scope = RequestScope(on_error=on_error, label=_label(environ))
    try:
        with scope.active():
            result = app(environ, start_response)
    except BaseException:
        scope.discard("the application raised")
        raise
    return _run_on_close(result, scope, executor, environ)


class BackgroundMiddleware:
    """Run the tasks added during a request after the server has sent its response.

    ``executor`` is ``"inline"`` (in this worker, after the response), ``"thread"`` (a
    shared bounded pool; the worker is free at once) or an executor instance; ``on_error``
    is ``"stop"`` (skip the rest after a failure) or ``"continue"``::

        application = BackgroundMiddleware(get_wsgi_application())     # Django
        app.wsgi_app = BackgroundMiddleware(app.wsgi_app)              # Flask
    """

    def __init__(
        self, app: WSGIApp, executor: ExecutorChoice = "inline", on_error: OnError = "stop"
    ) -> None:
        from .executors import options

        self.app = app
        self.executor, self.on_error = options(executor, on_error)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        return serve(
            self.app, environ, start_response, executor=self.executor, on_error=self.on_error
        )


def _run_on_close(
    result: Iterable[bytes], scope: RequestScope, executor: ExecutorChoice, environ: Environ
) -> Iterable[bytes]:
    file_wrapper = environ.get("wsgi.file_wrapper")
    if isinstance(file_wrapper, type) and isinstance(result, file_wrapper):
        # Keep the server's own wrapper so it can sendfile(); hook its close() instead.
        try:
            inner_close = getattr(result, "close", None)
            closer = _Closer(scope, executor, inner_close)
            result.close = closer.close  # type: ignore[attr-defined]
            return result
        except AttributeError:  # a wrapper class with __slots__: wrap it like any iterable
            pass
    return _ClosingIterable(result, scope, executor)


class _Closer:
    """Close the app's iterable, then run the tasks, or drop them (logged by name) when the
    response failed or did not reach the client."""

    def __init__(
        self, scope: RequestScope, executor: ExecutorChoice, inner_close: Callable[[], Any] | None
    ) -> None:
        self.scope = scope
        self.executor = executor
        self.inner_close = inner_close
        self.failed = False  # the application's iteration raised
        self.taken = 0  # parts the server took
        self.size: int | None = None  # how many parts there are, when the iterable says
        self.exhausted = False  # the server asked for the part after the last
        self.done = False
        # an exception already being handled when the response was made (the app was
        # called from an ``except`` block): not the server's write failing later
        self.handling = sys.exc_info()[1]

    def close(self) -> None:
        if self.done:
            return
        self.done = True
        in_flight = sys.exc_info()[1]  # the server closes us while handling this error
        if in_flight is self.handling:
            in_flight = None
        try:
            if self.inner_close is not None:
                with self.scope.active():  # e.g. Django's request_finished handlers may add
                    self.inner_close()
        finally:
            reason = self.undelivered(in_flight)
            if reason:
                self.scope.discard(reason)
            else:
                self.scope.after_response(self.executor)

    def undelivered(self, in_flight: BaseException | None) -> str:
        """Why the response did not reach the client, or ``""`` when nothing says so."""
        if self.failed:
            return "the response failed while it was sent"
        if in_flight is not None:
            return (
                "the response did not reach the client: the server was handling "
                f"{type(in_flight).__name__}: {in_flight}"
            )
        stopped_early = self.taken < self.size if self.size is not None else not self.exhausted
        if self.taken and stopped_early:
            return f"the server stopped sending the response after {self.taken} part(s)"
        return ""


class _ClosingIterable:
    """The app's response iterable, iterated inside the request's scope, closed by us."""

    def __init__(
        self, result: Iterable[bytes], scope: RequestScope, executor: ExecutorChoice
    ) -> None:
        self._result = result
        self._iterator: Iterator[bytes] | None = None
        self._closer = _Closer(scope, executor, getattr(result, "close", None))
        if isinstance(result, list | tuple):
            self._closer.size = len(result)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._result)
        closer = self._closer
        with closer.scope.active():
            try:
                part = next(self._iterator)
            except StopIteration:
                closer.exhausted = True
                raise
            except BaseException:
                closer.failed = True
                raise
        closer.taken += 1
        return part

    def __len__(self) -> int:
        # Servers may set Content-Length for a one-item list; TypeError when unsized.
        return len(self._result)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return True

    def close(self) -> None:
        self._closer.close()


def _label(environ: Environ) -> str:
    return f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '') or '/'}"
