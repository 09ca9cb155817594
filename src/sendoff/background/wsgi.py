"""WSGI: run a request's background tasks when the server closes the response.

PEP 3333 servers call ``close()`` on the response iterable once they have written its last
byte (or given up on the client); that is the moment the tasks are handed to the executor.
Every shape of response works: lists, generators (whose code still sees the request's task
list while the server iterates them), and the server's ``wsgi.file_wrapper``, which is
returned as is so that the server can still use ``sendfile()``.
"""

from __future__ import annotations

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
    """Close the app's iterable, then run (or, after a failure, discard) the tasks."""

    def __init__(
        self, scope: RequestScope, executor: ExecutorChoice, inner_close: Callable[[], Any] | None
    ) -> None:
        self.scope = scope
        self.executor = executor
        self.inner_close = inner_close
        self.failed = False
        self.done = False

    def close(self) -> None:
        if self.done:
            return
        self.done = True
        try:
            if self.inner_close is not None:
                with self.scope.active():  # e.g. Django's request_finished handlers may add
                    self.inner_close()
        finally:
            if self.failed:
                self.scope.discard("the response failed while it was sent")
            else:
                self.scope.after_response(self.executor)


class _ClosingIterable:
    """The app's response iterable, iterated inside the request's scope, closed by us."""

    def __init__(
        self, result: Iterable[bytes], scope: RequestScope, executor: ExecutorChoice
    ) -> None:
        self._result = result
        self._iterator: Iterator[bytes] | None = None
        self._closer = _Closer(scope, executor, getattr(result, "close", None))

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._iterator is None:
            self._iterator = iter(self._result)
        with self._closer.scope.active():
            try:
                return next(self._iterator)
            except StopIteration:
                raise
            except BaseException:
                self._closer.failed = True
                raise

    def __len__(self) -> int:
        # Servers may set Content-Length for a one-item list; TypeError when unsized.
        return len(self._result)  # type: ignore[arg-type]

    def __bool__(self) -> bool:
        return True

    def close(self) -> None:
        self._closer.close()


def _label(environ: Environ) -> str:
    return f"{environ.get('REQUEST_METHOD', '?')} {environ.get('PATH_INFO', '') or '/'}"
