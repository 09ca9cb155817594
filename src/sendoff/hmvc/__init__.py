"""Internal requests (HMVC): an App of routes and controllers, served over WSGI or ASGI,
whose controllers compose pages from in-process sub-requests (seed 003)::

    from sendoff import Request
    from sendoff.hmvc import App, Controller

    app = App()
    app.route("default", "(<controller>(/<action>(/<id>)))",
              defaults={"controller": "welcome", "action": "index"})

    @app.controller("welcome")
    class Welcome(Controller):
        def action_index(self) -> None:
            widget = Request("widget/list").query("page", 2).execute()
            self.response.body = "<h1>Hello</h1>" + widget.text
"""

from .app import App
from .context import MAX_DEPTH
from .controller import Controller
from .exceptions import HTTPException, RecursionLimit, Redirect
from .routes import Route
from .view import View

__all__ = [
    "MAX_DEPTH",
    "App",
    "Controller",
    "HTTPException",
    "RecursionLimit",
    "Redirect",
    "Route",
    "View",
]
