"""The seed's hello example, and View."""

from __future__ import annotations

import pathlib

import pytest

from sendoff import Internal, Request
from sendoff.hmvc import App, Controller, View

from .sample_app import VIEWS


@pytest.mark.parametrize(("query", "text"), [("?name=Kohana", "Kohana"), ("", "Guest")])
def test_hello(client: Internal, query: str, text: str) -> None:
    response = Request("welcome/index" + query).client(client).execute()
    assert response.status == 200
    assert response.text == f"<p>hello {text}!</p>"


def test_html_is_escaped(client: Internal) -> None:
    response = Request("welcome").query("name", "<b>x</b>").client(client).execute()
    assert response.text == "<p>hello &lt;b&gt;x&lt;/b&gt;!</p>"


def test_view_outside_an_app_needs_configuration(tmp_path: pathlib.Path) -> None:
    (tmp_path / "t.txt").write_text("{{ a }}-{{ b }}-{{ site }}")
    saved = View._default
    try:
        View._default = None
        with pytest.raises(LookupError, match=r"View\.configure"):
            View("t.txt").render()
        View.configure(tmp_path)
        View.set_global("site", "S")
        assert View.factory("t.txt").set("a", 1).set({"b": "<2>"}).render() == "1-<2>-S"
        assert str(View("t.txt", a="x", b="y", site="own")) == "x-y-own"
    finally:
        View._default = saved
        View._globals.pop("site", None)


def test_app_views_are_used_inside_its_requests() -> None:
    app = App(views=[VIEWS])
    app.route("default", "(<controller>)", {"controller": "hi"})

    @app.controller("hi")
    class Hi(Controller):
        def action_index(self) -> None:
            self.response.body = View.factory("hello.html").set("name", self.request.uri())

    assert Request("hi").client(Internal(app)).execute().text == "<p>hello hi!</p>"
