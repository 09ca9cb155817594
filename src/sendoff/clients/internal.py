"""The Internal client (Kohana's Request_Client_Internal): requests executed in-process,
by a sendoff App or by any WSGI or ASGI application (Flask, Django, FastAPI...)."""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING, Any

from .base import Client
from .default import _internal

if TYPE_CHECKING:
    from ..events.transaction import Transaction
    from ..hmvc.app import App
    from ..hmvc.asgi import ASGIRunner
    from ..http.request import Request
    from ..http.response import Response


class Internal(Client):
    """Executes requests in-process, through the full event lifecycle.

    ``app`` is a :class:`sendoff.hmvc.App` (routed straight to its controllers), a WSGI
    application, or an ASGI application (run on an event loop of its own, its lifespan
    started with the first request and shut down by :meth:`close`). ``kind`` forces
    ``"wsgi"`` or ``"asgi"`` when the guess from the callable's signature is wrong::

        client = Internal(flask_app)
        resp = Request("users/42").client(client).execute()

    The request URI may be internal (``"users/42"``, served as ``http://localhost/...``)
    or a URL, whose host and scheme the application then sees.
    """

    def __init__(self, app: Any, *, kind: str | None = None, timeout: float = 30.0) -> None:
        super().__init__(timeout=timeout)
        from ..hmvc.app import App

        self.app = app
        if kind is None:
            if isinstance(app, App):
                kind = "app"
            elif inspect.iscoroutinefunction(app) or inspect.iscoroutinefunction(
                getattr(app, "__call__", None)  # noqa: B004 - instances with async __call__
            ):
                kind = "asgi"
            else:
                kind = "wsgi"
        if kind not in ("app", "wsgi", "asgi") or (kind == "app") != isinstance(app, App):
            raise ValueError(f"kind must be 'wsgi' or 'asgi' (or None to guess), not {kind!r}")
        self.kind = kind
        self._runner: ASGIRunner | None = None

    def __repr__(self) -> str:
        return f"<Internal {self.kind} {self.app!r}>"

    def transfer(self, request: Request, transaction: Transaction | None) -> Response:
        if self.kind == "app":
            app: App = self.app
            if _internal.get() is self:
                response = app.execute(request)
            else:  # sub-requests made meanwhile run through this client too
                token = _internal.set(self)
                try:
                    response = app.execute(request)
                finally:
                    _internal.reset(token)
        else:
            response = self._foreign(request)
        response.request = request
        return response

    def _foreign(self, request: Request) -> Response:
        prepared = request
        if not request.is_external():
            prepared = request.copy()
            prepared._set_url("http://localhost/" + request.url())
        wire = prepared.prepare()
        if self.kind == "wsgi":
            from ..hmvc.wsgi import call_wsgi, environ_for

            return call_wsgi(self.app, environ_for(wire, request.client_ip()))
        from ..hmvc.asgi import ASGIRunner, scope_for

        if self._runner is None:
            self._runner = ASGIRunner(self.app)
        timeout = request.timeout() or self.timeout
        return self._runner.call(scope_for(wire, request.client_ip()), wire.body, timeout)

    def close(self) -> None:
        """Shut an ASGI application's lifespan down and stop its loop."""
        if self._runner is not None:
            self._runner.close()
            self._runner = None
