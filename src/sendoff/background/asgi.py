"""ASGI: run a request's background tasks once the last body message has been sent.

The tasks start after ``http.response.body`` with ``more_body=False`` (or a final
``zerocopysend`` / ``pathsend``) has been sent and the application has returned. Servers
such as uvicorn consider the response complete at that message, so neither the client nor
the next request on the same keep-alive connection waits for the tasks. ``lifespan`` and
``websocket`` scopes are passed through untouched.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..core.types import ASGIApp, Message, Receive, Scope, Send
from .scope import RequestScope, current_scope
from .tasks import OnError

if TYPE_CHECKING:
    from .executors import ExecutorChoice


async def serve(
    app: ASGIApp,
    scope: Scope,
    receive: Receive,
    send: Send,
    *,
    executor: ExecutorChoice = "inline",
    on_error: OnError = "stop",
) -> None:
    """Call ``app`` for one HTTP request in a fresh task scope, then run its tasks.

    Non-HTTP scopes go straight to ``app``; so does a request for which a scope is already
    open (an outer middleware). If the app fails before the response is complete, or is
    cancelled, the tasks are not run (and are logged by name).
    """
    if scope["type"] != "http":
        await app(scope, receive, send)
        return
    outer = current_scope()
    if outer is not None and outer.managed and outer.accepting:
        await app(scope, receive, send)
        return
    tasks = RequestScope(on_error=on_error, label=f"{scope.get('method')} {scope.get('path')}")
    complete = False

    async def send_watching(message: Message) -> None:
        nonlocal complete
        await send(message)
        if _is_last(message):
            complete = True

    try:
        with tasks.active():
            await app(scope, receive, send_watching)
    except Exception:
        if complete:  # the client has its response: the tasks are still owed
            await tasks.after_response_async(executor)
        else:
            tasks.discard("the application raised before finishing the response")
        raise
    except BaseException:
        tasks.discard("the request was cancelled")
        raise
    if complete:
        await tasks.after_response_async(executor)
    else:
        tasks.discard("the application returned without finishing the response")


class BackgroundMiddleware:
    """Run the tasks added during a request after its response has been sent.

    ``executor`` is ``"inline"`` (in the request's task, after the response), ``"thread"``
    (a shared bounded pool) or an executor instance; ``on_error`` is ``"stop"`` or
    ``"continue"``::

        app.add_middleware(BackgroundMiddleware)                       # FastAPI, Starlette
        application = BackgroundMiddleware(get_asgi_application())     # Django
    """

    def __init__(
        self, app: ASGIApp, executor: ExecutorChoice = "inline", on_error: OnError = "stop"
    ) -> None:
        from .executors import options

        self.app = app
        self.executor, self.on_error = options(executor, on_error)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await serve(
            self.app, scope, receive, send, executor=self.executor, on_error=self.on_error
        )


def _is_last(message: Message) -> bool:
    kind = message.get("type")
    if kind in ("http.response.body", "http.response.zerocopysend"):
        return not message.get("more_body", False)
    return bool(kind == "http.response.pathsend")
