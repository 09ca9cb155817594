"""ASGI: run a request's background tasks once the last body message has been sent.

The tasks start after ``http.response.body`` with ``more_body=False`` (or a final
``zerocopysend`` / ``pathsend``) has been sent and the application has returned. Servers
such as uvicorn consider the response complete at that message, so neither the client nor
the next request on the same keep-alive connection waits for the tasks. ``lifespan`` and
``websocket`` scopes are passed through untouched.

A response that did not reach the client drops its tasks (logged by name). What ASGI can
tell:

- ``send`` raised (ASGI 2.4 asks servers to raise ``OSError`` on a closed connection;
  hypercorn does);
- ``http.disconnect`` arrived before the last body message was sent: the application
  saw it through ``receive``, or, when tasks are waiting, the middleware looks without
  waiting just before that message goes out (messages it reads on the way are handed to
  the application later, in order). This is uvicorn's only signal: it drops sends to a
  closed connection silently, and answers ``receive`` with ``http.disconnect`` once the
  client is gone.

What no ASGI server can tell: a client that goes while the last message is being written,
or after (its bytes are in the kernel's send buffer; TCP says nothing more).
"""

from __future__ import annotations

import asyncio
from collections import deque
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
    watch = _Watch(receive)

    async def send_watching(message: Message) -> None:
        last = _is_last(message)
        if last:
            if not watch.gone and tasks.pending():
                watch.gone = await watch.client_gone()
            watch.final_sent = True
        try:
            await send(message)
        except Exception as exc:
            watch.send_error = exc
            raise
        if last:
            watch.complete = True

    try:
        with tasks.active():
            await app(scope, watch.receive, send_watching)
    except Exception:
        reason = watch.undelivered()
        if reason:
            tasks.discard(reason)
        elif watch.complete:  # the client has its response: the tasks are still owed
            await tasks.after_response_async(executor)
        else:
            tasks.discard("the application raised before finishing the response")
        raise
    except BaseException:
        tasks.discard("the request was cancelled")
        raise
    reason = watch.undelivered()
    if reason:
        tasks.discard(reason)
    elif watch.complete:
        await tasks.after_response_async(executor)
    else:
        tasks.discard("the application returned without finishing the response")


#: Loop turns the look before the last message may take: the server reads the socket's
#: error in one, reports the lost connection in the next, and ``receive`` answers after.
_TURNS = 4


class _Watch:
    """What the middleware learns about one response's way to the client."""

    __slots__ = ("_receive", "complete", "final_sent", "gone", "send_error", "stash")

    def __init__(self, receive: Receive) -> None:
        self._receive = receive
        self.stash: deque[Message] = deque()  # read while looking, owed to the app
        self.complete = False  # the last message was sent
        self.final_sent = False  # the last message is being (or has been) sent
        self.gone = False  # http.disconnect arrived before the last message went out
        self.send_error: BaseException | None = None

    async def receive(self) -> Message:
        """The application's ``receive``: what was read while looking first."""
        message = self.stash.popleft() if self.stash else await self._receive()
        if message.get("type") == "http.disconnect" and not self.final_sent:
            self.gone = True
        return message

    async def client_gone(self) -> bool:
        """True when ``http.disconnect`` is waiting already; never waits for it: what
        ``receive`` has within a few turns of the loop (time for the server to read a
        reset the kernel already has), then the look is cancelled."""

        async def look() -> bool:
            # after the last request body message, the next one is http.disconnect: read
            # at most up to it (a body still streaming in is left where it is)
            for _ in range(2):
                message = await self._receive()
                self.stash.append(message)
                if message.get("type") == "http.disconnect":
                    return True
                if message.get("type") != "http.request" or message.get("more_body"):
                    return False
            return False

        looking = asyncio.ensure_future(look())
        for _ in range(_TURNS):  # a reset the kernel has takes the server a few turns
            await asyncio.sleep(0)
            if looking.done():
                break
        if not looking.done():
            looking.cancel()
            try:
                await looking
            except asyncio.CancelledError:
                pass
            return False
        return not looking.cancelled() and looking.exception() is None and looking.result()

    def undelivered(self) -> str:
        """Why the response did not reach the client, or ``""`` when nothing says so."""
        if self.send_error is not None:
            error = self.send_error
            return f"the response did not reach the client: send raised {type(error).__name__}"
        if self.gone:
            return "the client disconnected before the response was complete"
        return ""


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
