"""The Controller: Kohana's ``Controller`` with ``before()``, ``action_<name>()``, ``after()``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NoReturn

from .exceptions import HTTPException, Redirect

if TYPE_CHECKING:
    from ..http.models import Request, Response


class Controller:
    """Handles the requests routed to it; subclass it and register it on an App::

        @app.controller("welcome")
        class Welcome(Controller):
            def action_index(self) -> None:
                name = self.request.query("name") or "Guest"
                self.response.body = View("hello.html", name=name)

    The App creates one instance per request with :attr:`request` and :attr:`response`,
    then calls :meth:`execute`: ``before()``, the action named by the route (read after
    ``before()``, which may change it), ``after()``. A missing action is a 404.
    """

    __slots__ = ("request", "response")

    def __init__(self, request: Request[Any], response: Response) -> None:
        self.request = request
        self.response = response

    def before(self) -> None:
        """Runs before the action (authentication, shared setup)."""

    def after(self) -> None:
        """Runs after the action (wrapping the body in a layout, headers)."""

    def execute(self) -> Response:
        """Run ``before()``, the action and ``after()``; return the response."""
        self.before()
        action = getattr(self, "action_" + self.request.action().lower(), None)
        if action is None or not callable(action):
            raise HTTPException(
                404, f"The requested URL {self.request.uri()} was not found on this server."
            )
        action()
        self.after()
        return self.response

    def redirect(self, uri: str, status: int = 302) -> NoReturn:
        """Answer with a redirect to ``uri`` (Kohana's ``$this->redirect()``); it raises,
        so nothing after it in the action runs."""
        raise Redirect(uri, status)
