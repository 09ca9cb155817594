"""The App: routes and controllers, served over WSGI and ASGI (Kohana's bootstrap,
Request::execute and Request_Client_Internal in one place)."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Collection, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ..background import wsgi as background_wsgi
from ..background.executors import ExecutorChoice, options
from ..background.scope import RequestScope, current_scope
from ..background.tasks import OnError
from ..clients.default import reset_internal_client, set_internal_client
from ..clients.internal import Internal
from ..core.errors import InvalidRequest
from ..core.log import logger as _root_logger
from ..core.types import Environ, StartResponse
from ..http.frame import Frame
from ..http.models import Request, Response, RouteMatch, reason_phrase
from . import asgi, gateway, wsgi
from .context import MAX_DEPTH, enter, leave
from .controller import Controller
from .exceptions import HTTPException, RecursionLimit
from .routes import Route
from .view import make_environment

if TYPE_CHECKING:
    import jinja2

log = _root_logger.getChild("hmvc")

C = TypeVar("C", bound=type[Controller])

#: The largest request body the App reads by default (10 MiB); larger ones get a 413.
MAX_BODY = 10 * 1024 * 1024


class App:
    """An HMVC application: a WSGI callable, with ``app.asgi`` for ASGI servers.

    ::

        app = App()
        app.route("default", "(<controller>(/<action>(/<id>)))",
                  defaults={"controller": "welcome", "action": "index"})

        @app.controller("welcome")
        class Welcome(Controller):
            def action_index(self) -> None:
                self.response.body = "hello " + (self.request.query("name") or "Guest")

    Inside a controller, ``Request("widget/list").execute()`` runs through this App
    in-process, and ``background.add(func, ...)`` queues work that runs after the
    response has been sent, with ``executor`` (``"inline"``, ``"thread"`` or an
    :class:`~sendoff.background.Executor`) and ``on_error`` (``"stop"``/``"continue"``);
    no middleware is needed. Tasks queued by a controller that raised are dropped (and
    logged by name), those of its parent request are kept. ``debug`` shows tracebacks in
    500 responses (they are always logged on the ``sendoff.hmvc`` logger); ``views``
    names the template directories of :class:`~sendoff.hmvc.View`; ``max_depth`` bounds
    nested sub-requests;
    ``trusted_proxies`` are addresses whose ``X-Forwarded-For`` is believed.
    """

    def __init__(
        self,
        *,
        debug: bool = False,
        views: str | Path | Iterable[str | Path] | None = None,
        max_depth: int = MAX_DEPTH,
        max_body: int = MAX_BODY,
        trusted_proxies: Collection[str] = (),
        executor: ExecutorChoice = "inline",
        on_error: OnError = "stop",
    ) -> None:
        self.executor, self.on_error = options(executor, on_error)
        self.debug = debug
        self.max_depth = max_depth
        self.max_body = max_body
        self.trusted_proxies = frozenset(trusted_proxies)
        self.routes: dict[str, Route] = {}
        self.controllers: dict[str, type[Controller]] = {}
        if views is None or isinstance(views, str | Path):
            self.views: list[str] = [] if views is None else [str(views)]
        else:
            self.views = [str(v) for v in views]
        self._view_environment: jinja2.Environment | None = None
        #: The client that executes this App's requests, main and sub-requests alike;
        #: listeners on ``app.internal.emitter`` see each of them.
        self.internal: Internal = Internal(self)
        self._routes: tuple[Route, ...] = ()
        #: The ASGI application (uvicorn, hypercorn, daphne): ``uvicorn module:app.asgi``.
        self.asgi = asgi.ASGIEntry(self)

    def __repr__(self) -> str:
        return f"<App routes={list(self.routes)} controllers={list(self.controllers)}>"

    # -- building -----------------------------------------------------------------------------
    def route(
        self,
        name: str,
        pattern: str,
        defaults: Mapping[str, Any] | None = None,
        regex: Mapping[str, str] | None = None,
    ) -> Route:
        """Add a route (Kohana's ``Route::set``); routes are tried in the order added.
        Returns the :class:`Route`, whose ``defaults()`` chains."""
        if name in self.routes:
            raise ValueError(f"a route named {name!r} exists already")
        route = Route(name, pattern, defaults, regex)
        self.routes[name] = route
        self._routes = tuple(self.routes.values())
        return route

    def url(self, name: str, /, **params: Any) -> str:
        """The path of route ``name`` with ``params`` (Kohana's ``Route::url``; ``name`` is
        positional, so a route parameter may be called ``name`` too), e.g.
        ``app.url("default", controller="blog", id=5)`` -> ``"/blog/index/5"``."""
        route = self.routes.get(name)
        if route is None:
            raise KeyError(f"no route named {name!r}; routes: {', '.join(self.routes)}")
        return "/" + route.uri(**params)

    @overload
    def controller(self, name: str) -> Callable[[C], C]: ...
    @overload
    def controller(self, name: str, cls: C) -> C: ...
    def controller(self, name: str, cls: C | None = None) -> Any:
        """Register a Controller subclass for ``name`` (``"welcome"``, or with its
        directory, ``"admin/users"``); a decorator when ``cls`` is not given."""

        def register(klass: C) -> C:
            if not (isinstance(klass, type) and issubclass(klass, Controller)):
                raise TypeError(f"{klass!r} is not a sendoff.hmvc.Controller subclass")
            key = name.strip("/").lower()
            if not key:
                raise ValueError("a controller needs a name")
            self.controllers[key] = klass
            return klass

        return register if cls is None else register(cls)

    # -- executing ------------------------------------------------------------------------------
    def execute(self, request: Request[Any], /) -> Response:
        """Route ``request`` to its controller and return the response: 404 when nothing
        matches, the status of an :class:`HTTPException`, 500 for any other exception.
        Sub-requests nested deeper than ``max_depth`` raise
        :class:`~sendoff.hmvc.RecursionLimit` up to the outermost request, which answers
        500. (Use ``Internal(app)`` or
        ``request.execute()`` to run the event lifecycle around this.)"""
        token = enter(request, self, self.max_depth)
        scope = current_scope()
        mark = scope.mark() if scope is not None else 0
        try:
            response = self._dispatch(request)
        except HTTPException as exc:
            response = exc.get_response(request)  # a deliberate answer: its tasks stand
        except RecursionLimit:
            if isinstance(token.old_value, Frame):
                raise  # up to the request that started the loop: one 500, one log record
            response = self._server_error(request, scope, mark)
        except Exception:
            response = self._server_error(request, scope, mark)
        finally:
            leave(token)
        return response

    def _dispatch(self, request: Request[Any]) -> Response:
        url = request.parsed_url
        path = url.path.strip("/") if url.scheme else url.path
        for route in self._routes:
            params = route.matches(path, request)
            if params is not None:
                break
        else:
            raise HTTPException(404, f"Unable to find a route to match the URI: {path}")
        directory = params.pop("directory", "")
        controller = params.pop("controller", "")
        request.routed(RouteMatch(route, directory, controller, params.pop("action"), params))
        key = f"{directory}/{controller}".lower() if directory else controller.lower()
        cls = self.controllers.get(key)
        if cls is None:
            raise HTTPException(404, f"The requested URL {path} was not found on this server.")
        response = cls(request, Response(request=request)).execute()
        if response.status != 200:
            response.reason = reason_phrase(response.status)
        return response

    def _server_error(
        self, request: Request[Any], scope: RequestScope | None = None, mark: int = 0
    ) -> Response:
        log.error(
            "unhandled exception in %s %s", request.method(), request.url(redacted=True),
            exc_info=True,
        )
        if scope is not None:
            scope.drop_since(mark, f"{request.uri()!r} raised")
        body = traceback.format_exc() if self.debug else "500 Internal Server Error"
        return Response(500, {"Content-Type": "text/plain; charset=utf-8"}, body, request=request)

    def serve(self, request: Request[Any]) -> Response:
        """Serve a main request: run it through :attr:`internal` (the event lifecycle
        included) with this App executing the sub-requests made meanwhile."""
        token = set_internal_client(self.internal)
        try:
            response = self.internal.execute(request)
        except Exception:
            response = self._server_error(request)
        finally:
            reset_internal_client(token)
        return response

    def respond(self, build: Callable[[], Request[Any]]) -> tuple[Response, bool]:
        """Build the main request with ``build`` and serve it: (response, whether it was
        a HEAD). A request the server passed that cannot be one gets a 400."""
        try:
            request = build()
        except HTTPException as exc:
            return exc.get_response(), False
        except InvalidRequest as exc:
            body = f"400 Bad Request: {exc}"
            return Response(400, {"Content-Type": "text/plain; charset=utf-8"}, body), False
        return self.serve(request), request.method() == "HEAD"

    # -- servers --------------------------------------------------------------------------------
    def __call__(
        self, environ: Environ, start_response: StartResponse
    ) -> Iterable[bytes]:
        """The WSGI application (gunicorn, uWSGI, mod_wsgi, waitress...); background tasks
        run once the server has sent the response."""
        return background_wsgi.serve(
            self._wsgi, environ, start_response, executor=self.executor, on_error=self.on_error
        )

    def _wsgi(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        response, head = self.respond(
            lambda: wsgi.request_from_environ(environ, self.max_body, self.trusted_proxies)
        )
        body = response.body
        headers = gateway.outgoing_headers(response, body)
        start_response(gateway.status_line(response.status), headers)
        return [b"" if head else body]

    # -- views ----------------------------------------------------------------------------------
    def view_environment(self) -> jinja2.Environment | None:
        """The Jinja2 environment for this App's ``views`` (None when it has none)."""
        if self._view_environment is None and self.views:
            self._view_environment = make_environment(self.views)
        return self._view_environment
