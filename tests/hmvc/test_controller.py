"""Controllers: lifecycle order, directories, 404 / 500 / HTTP exceptions."""

from __future__ import annotations

import logging

import pytest

from sendoff import Internal, Request, Response
from sendoff.hmvc import App, Controller, HTTPException


def make_app(debug: bool = False) -> tuple[App, list[str]]:
    app = App(debug=debug)
    app.route("admin", "admin(/<controller>(/<action>(/<id>)))", {"directory": "admin"})
    app.route("default", "(<controller>(/<action>(/<id>)))", {"controller": "welcome"})
    calls: list[str] = []

    @app.controller("welcome")
    class Welcome(Controller):
        def before(self) -> None:
            calls.append("before")
            if self.request.query("switch"):
                self.request.action("switched")

        def action_index(self) -> None:
            calls.append("action_index")
            self.response.body = "index"

        def action_switched(self) -> None:
            calls.append("action_switched")
            self.response.body = "switched"

        def action_gone(self) -> None:
            calls.append("action_gone")
            raise HTTPException(410, headers={"X-Why": "removed"})

        def action_move(self) -> None:
            self.redirect("/welcome/index", 301)

        def action_boom(self) -> None:
            calls.append("action_boom")
            raise KeyError("secret-key-name")

        def after(self) -> None:
            calls.append("after")
            self.response.headers["X-After"] = "1"

    @app.controller("admin/users")
    class AdminUsers(Controller):
        def action_edit(self) -> None:
            r = self.request
            self.response.status = 202
            self.response.body = f"{r.directory()}|{r.controller()}|{r.action()}|{r.param('id')}"

    return app, calls


def run(app: App, uri: str) -> Response:
    response: Response = Request(uri).client(Internal(app)).execute()
    return response


def test_lifecycle_order() -> None:
    app, calls = make_app()
    response = run(app, "welcome/index")
    assert calls == ["before", "action_index", "after"]
    assert (response.status, response.text, response.headers["x-after"]) == (200, "index", "1")


def test_before_may_change_the_action() -> None:
    app, calls = make_app()
    assert run(app, "welcome?switch=1").text == "switched"
    assert calls == ["before", "action_switched", "after"]


def test_directories_and_request_routing_getters() -> None:
    app, _ = make_app()
    response = run(app, "admin/users/edit/9")
    assert (response.status, response.reason) == (202, "Accepted")
    assert response.text == "admin|users|edit|9"


@pytest.mark.parametrize(
    "uri",
    ["no/route/matches/this/one", "missing", "welcome/unknown", "admin/welcome/index", "admin"],
)
def test_not_found(uri: str) -> None:
    app, calls = make_app()
    response = run(app, uri)
    assert response.status == 404
    assert "after" not in calls


def test_missing_action_is_found_after_before() -> None:
    app, calls = make_app()
    assert run(app, "welcome/unknown").status == 404
    assert calls == ["before"]


def test_http_exception_gives_its_status_and_headers() -> None:
    app, calls = make_app()
    response = run(app, "welcome/gone")
    assert (response.status, response.reason, response.text) == (410, "Gone", "410 Gone")
    assert response.headers["x-why"] == "removed"
    assert calls == ["before", "action_gone"]


def test_redirect() -> None:
    app, _ = make_app()
    response = run(app, "welcome/move")
    assert (response.status, response.headers["location"]) == (301, "/welcome/index")


def test_server_error_is_logged_not_shown(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app()
    with caplog.at_level(logging.ERROR, logger="sendoff.hmvc"):
        response = run(app, "welcome/boom")
    assert (response.status, response.text) == (500, "500 Internal Server Error")
    [record] = caplog.records
    assert record.name == "sendoff.hmvc"
    assert "welcome/boom" in record.getMessage()
    assert record.exc_info is not None
    assert "secret-key-name" in caplog.text


def test_server_error_shows_the_traceback_in_debug(caplog: pytest.LogCaptureFixture) -> None:
    app, _ = make_app(debug=True)
    with caplog.at_level(logging.CRITICAL, logger="sendoff.hmvc"):
        response = run(app, "welcome/boom")
    assert response.status == 500
    assert "Traceback" in response.text
    assert "secret-key-name" in response.text


def test_controller_registration_checks() -> None:
    app = App()
    with pytest.raises(TypeError, match=r"not a sendoff\.hmvc\.Controller"):
        app.controller("x", object)  # type: ignore[type-var]

    class Plain(Controller):
        pass

    assert app.controller("Shop/Items", Plain) is Plain
    assert app.controllers == {"shop/items": Plain}


def test_http_exception_statuses_are_checked() -> None:
    with pytest.raises(ValueError, match="3xx, 4xx or 5xx"):
        HTTPException(200)
