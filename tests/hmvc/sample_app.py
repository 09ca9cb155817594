"""The App the HMVC tests serve: in-process, under gunicorn (WSGI) and uvicorn (ASGI).

``gunicorn tests.hmvc.sample_app:app`` / ``uvicorn tests.hmvc.sample_app:app.asgi``
"""

from __future__ import annotations

import json
import pathlib

from sendoff import Request
from sendoff.hmvc import App, Controller, HTTPException, View

VIEWS = pathlib.Path(__file__).resolve().parent / "views"

app = App(views=VIEWS)
app.route("widget", "widget/<name>(/<page>)", regex={"page": r"\d+"}).defaults(
    {"controller": "widget", "action": "show", "page": "1"}
)
app.route("default", "(<controller>(/<action>(/<id>)))", defaults={"controller": "welcome"})


@app.controller("welcome")
class Welcome(Controller):
    """The seed's hello example."""

    def action_index(self) -> None:
        name = self.request.query("name") or "Guest"
        self.response.body = View("hello.html", name=name)


@app.controller("widget")
class Widget(Controller):
    def action_show(self) -> None:
        self.response.body = f"[{self.request.param('name')} p{self.request.param('page')}]"


@app.controller("page")
class Page(Controller):
    """A page composed from two internal sub-requests."""

    def action_index(self) -> None:
        top = Request(app.url("widget", name="news")).execute()
        side = Request("widget/weather/3").execute()
        self.response.body = f"<main>{top.text}{side.text}</main>"


@app.controller("echo")
class Echo(Controller):
    """Everything the App read from the incoming request, as JSON."""

    def action_index(self) -> None:
        r = self.request
        body = r.body()
        self.response.headers["Content-Type"] = "application/json"
        self.response.body = json.dumps(
            {
                "method": r.method(),
                "uri": r.uri(),
                "query": r.query(),
                "post": r.post(),
                "json": r.json() if body and not r.post() else None,
                "user_agent": r.headers("user-agent"),
                "x_custom": r.headers("x-custom"),
                "cookies": r.cookie(),
                "client_ip": r.client_ip(),
                "is_initial": r.is_initial(),
                "is_ajax": r.is_ajax(),
            }
        )


@app.controller("fail")
class Fail(Controller):
    def action_index(self) -> None:
        raise RuntimeError("the secret failure detail")

    def action_teapot(self) -> None:
        raise HTTPException(418, "short and stout")
