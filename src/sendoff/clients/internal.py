"""The Internal client (Kohana's Request_Client_Internal): requests executed in-process,
by a sendoff App or by any WSGI or ASGI application (Flask, Django, FastAPI...)."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

from ..http.models import Response
from ..transports.asgi import ASGIRunner, scope_for
from ..transports.wsgi import call_wsgi, environ_for
from .base import Client
from .default import get_internal_client, reset_internal_client, set_internal_client

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import Request

AppKind = Literal["wsgi", "asgi"]


@runtime_checkable
class RequestHandler(Protocol):
    """An application that takes sendoff Requests directly, with no WSGI or ASGI in
    between (a :class:`sendoff.hmvc.App`)."""

    def execute(self, request: Request[Any], /) -> Response: ...


class Internal(Client[Response]):
    """Executes requests in-process, through the full event lifecycle.

    ``app`` is a :class:`RequestHandler` such as :class:`sendoff.hmvc.App` (given the
    Request itself), a WSGI application, or an ASGI application (run on an event loop of
    its own, its lifespan started with the first request and shut down by
    :meth:`close`). ``kind`` forces ``"wsgi"`` or ``"asgi"`` when the guess from the
    callable's signature is wrong::

        client = Internal(flask_app)
        resp = Request("users/42").client(client).execute()

    The request URI may be internal (``"users/42"``, served as ``http://localhost/...``)
    or a URL, whose host and scheme the application then sees.
    """

    def __init__(self, app: Any, *, kind: AppKind | None = None, timeout: float = 30.0) -> None:
        super().__init__(timeout=timeout)
        self.app = app
        self.kind: Literal["app", "wsgi", "asgi"]
        if kind is None and isinstance(app, RequestHandler):
            self.kind = "app"
        elif kind is None:
            is_async = inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
                getattr(app, "__call__", None)  # noqa: B004 - instances with async __call__
            )
            self.kind = "asgi" if is_async else "wsgi"
        elif kind in ("wsgi", "asgi"):
            self.kind = kind
        else:
            raise ValueError(f"kind must be 'wsgi' or 'asgi' (or None to guess), not {kind!r}")
        self._runner: ASGIRunner | None = None

    def __repr__(self) -> str:
        return f"<Internal {self.kind} {self.app!r}>"

    def transfer(self, request: Request[Any], transaction: Transaction | None) -> Response:
        if self.kind == "app":
            if get_internal_client() is self:
                response: Response = self.app.execute(request)
            else:  # sub-requests made meanwhile run through this client too
                token = set_internal_client(self)
                try:
                    response = self.app.execute(request)
                finally:
                    reset_internal_client(token)
        else:
            response = self._foreign(request)
        response.request = request
        return response

    def _foreign(self, request: Request[Any]) -> Response:
        prepared = request
        if not request.is_external():
            prepared = request.copy().retarget("http://localhost/" + request.url())
        wire = prepared.prepare()
        if self.kind == "wsgi":
            return call_wsgi(self.app, environ_for(wire, request.client_ip()))
        if self._runner is None:
            self._runner = ASGIRunner(self.app)
        timeout = request.timeout() or self.timeout
        return self._runner.call(scope_for(wire, request.client_ip()), wire.body, timeout)

    def close(self) -> None:
        """Shut an ASGI application's lifespan down and stop its loop."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None
