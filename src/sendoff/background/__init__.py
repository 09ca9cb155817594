"""After-response background work: tasks that run once the client has its response.

Use it from a request handler::

    from sendoff import background

    background.add(send_receipt, order_id)          # a function and its arguments
    background.add(notify_webhook, url, data=data)  # coroutine functions work too

and wrap the application once (Flask, Django, FastAPI, Starlette, any WSGI/ASGI app)::

    app = sendoff.wsgi.BackgroundMiddleware(wsgi_app)    # or executor="thread"
    app = sendoff.asgi.BackgroundMiddleware(asgi_app)

Tasks belong to the current request (a :mod:`contextvars` variable), run in the order
added, and may add more tasks. With ``on_error="stop"`` (default) the first failure is
logged and the rest are skipped; with ``"continue"`` every failure is logged and the rest
still run. Either way a :class:`BackgroundTasksFailed` summary is logged at the end.
Outside a request (a script), :func:`run` runs the queued tasks there and then; in a
process that serves requests, :func:`add` outside any request raises ``RuntimeError``.
Tasks of a response that did not reach its client are dropped and logged by name (see
the ``wsgi`` and ``asgi`` modules for what each server lets us see), and a stop signal
names the task lists still running (the ``shutdown`` module).

Internal API for apps that are servers' entry points themselves (the HMVC ``App``)
----------------------------------------------------------------------------------
An app that wants background tasks without asking its users for a middleware opens a
:class:`RequestScope` per request and hands it to an executor after the response. For a
WSGI or ASGI entry point, call the same function the middlewares call::

    from sendoff.background import asgi as background_asgi, wsgi as background_wsgi

    def __call__(self, environ, start_response):                 # WSGI
        return background_wsgi.serve(self.handle_wsgi, environ, start_response,
                                     executor=self.executor, on_error="stop")

    async def __call__(self, scope, receive, send):             # ASGI
        await background_asgi.serve(self.handle_asgi, scope, receive, send,
                                    executor=self.executor, on_error="stop")

``serve`` joins a scope that is already open (so wrapping the App in a middleware as well,
or calling it for an internal sub-request, does not run anything twice or early). Anywhere
else, use the scope directly::

    scope = RequestScope(on_error="stop", label="GET /x")
    with scope.active():
        response = handle(request)              # background.add() lands in ``scope``
    send(response)
    scope.after_response(executor)              # sync; or: await scope.after_response_async(...)
    # if the response could not be sent: scope.discard("why")  (logs the tasks by name)

``executor`` is ``"inline"``, ``"thread"`` or an :class:`Executor` such as
``ThreadExecutor(max_workers=4, max_pending=1000, on_full="inline", grace=10.0)``.
"""

from __future__ import annotations

from . import asgi, wsgi
from .executors import Executor, ExecutorChoice, InlineExecutor, ThreadExecutor
from .scope import RequestScope, add, current_scope, run, run_async, tasks
from .tasks import BackgroundTasksFailed, OnError, Task

__all__ = [
    "BackgroundTasksFailed",
    "Executor",
    "ExecutorChoice",
    "InlineExecutor",
    "OnError",
    "RequestScope",
    "Task",
    "ThreadExecutor",
    "add",
    "asgi",
    "current_scope",
    "run",
    "run_async",
    "tasks",
    "wsgi",
]
