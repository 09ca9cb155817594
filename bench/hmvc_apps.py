"""The equivalent pages the HMVC suite measures: a sendoff App and a Flask app.

Served by gunicorn as ``bench.hmvc_apps:sendoff_app`` and ``bench.hmvc_apps:flask_app``.
"""

from __future__ import annotations

import flask

from sendoff import Request
from sendoff.hmvc import App, Controller

sendoff_app = App()
sendoff_app.route("default", "<controller>(/<name>)", {"name": "world"})


@sendoff_app.controller("hello")
class Hello(Controller):
    def action_index(self) -> None:
        self.response.body = f"hello {self.request.param('name')}"


@sendoff_app.controller("page")
class Page(Controller):
    """The hello page composed from two internal sub-requests."""

    def action_index(self) -> None:
        first = Request("hello/a").execute().text
        second = Request("hello/b").execute().text
        self.response.body = f"{first} {second}"


flask_app = flask.Flask("bench")


@flask_app.route("/hello/<name>")
def hello(name: str) -> str:
    return f"hello {name}"
