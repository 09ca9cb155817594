"""What a new user gets wrong first: a URL without its scheme, an empty URI."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sendoff import Internal, InvalidRequest, Request
from sendoff.hmvc import App, Controller
from sendoff.http import URL


@pytest.mark.parametrize(("uri", "suggestion"), [
    ("example.com/hook", "https://example.com/hook"),
    ("hooks.slack.com/services/T0/B0", "https://hooks.slack.com/services/T0/B0"),
    ("api.example.com", "https://api.example.com"),
    ("localhost:8000/events", "https://localhost:8000/events"),
    ("localhost/events", "https://localhost/events"),
    ("127.0.0.1/x", "https://127.0.0.1/x"),
    ("10.0.0.7:9000", "https://10.0.0.7:9000"),
    ("[::1]:8080/x", "https://[::1]:8080/x"),
    ("Example.COM?x=1", "https://Example.COM?x=1"),
])
def test_a_host_without_a_scheme_is_refused_with_the_fix(uri: str, suggestion: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^uri: .* looks like a host") as info:
        Request(uri)
    assert repr(suggestion) in str(info.value)
    with pytest.raises(InvalidRequest, match="looks like a host"):
        Request("http://example.com/").uri(uri)  # the setter too


def test_the_suggestion_does_not_show_secrets() -> None:
    with pytest.raises(InvalidRequest) as info:
        Request("example.com/hook?api_key=sekrit-value&page=1")
    assert "'https://example.com/hook?api_key=[redacted]&page=1'" in str(info.value)
    assert "sekrit" not in str(info.value)


@pytest.mark.parametrize("uri", [
    "users/42", "welcome/index", "welcome", "items/tea?q=green", "blog/v1.2", "v2/items",
    "/robots.txt", "/example.com/x", "?page=2", "/", "files/report.pdf",
])
def test_internal_uris_stay_internal(uri: str) -> None:
    request = Request(uri)
    assert not request.is_external()


def test_inside_a_served_app_a_dotted_first_segment_stays_internal() -> None:
    app = App()
    app.route("files", "<name>", regex={"name": r"[^/]+\.[^/]+"}).defaults(
        {"controller": "files", "action": "index"})
    app.route("default", "(<controller>)").defaults({"controller": "outer"})
    seen: dict[str, Any] = {}

    @app.controller("files")
    class Files(Controller):
        def action_index(self) -> None:
            self.response.body = "file " + str(self.request.param("name"))

    @app.controller("outer")
    class Outer(Controller):
        def action_index(self) -> None:
            sub = Request("robots.txt")  # inside the App: Kohana's internal request
            seen["external"] = sub.is_external()
            self.response.body = sub.execute().text

    response = Request("outer").client(Internal(app)).execute()
    assert (response.status, response.text) == (200, "file robots.txt")
    assert seen == {"external": False}


@pytest.mark.parametrize("uri", ["", "   ", "\t"])
def test_an_empty_uri_is_refused(uri: str) -> None:
    with pytest.raises(InvalidRequest, match=r"^uri: is empty: write '/' for the App's root"):
        Request(uri)
    with pytest.raises(InvalidRequest, match="is empty"):
        Request.factory(uri)
    with pytest.raises(InvalidRequest, match="is empty"):
        Request("http://example.com/").uri(uri)


def test_a_uri_is_required() -> None:
    with pytest.raises(TypeError):
        Request()  # type: ignore[call-overload]


def test_the_gateway_still_builds_the_root_main_request() -> None:
    """Servers pass PATH_INFO "/": the App builds the main request from a URL object."""
    assert Request(URL("", "", 0, "", "")).uri() == "/"
    app = App()
    app.route("default", "(<controller>)").defaults({"controller": "home"})

    @app.controller("home")
    class Home(Controller):
        def action_index(self) -> None:
            self.response.body = "home"

    statuses: list[str] = []
    environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "QUERY_STRING": "",
               "SERVER_NAME": "localhost", "SERVER_PORT": "80", "wsgi.input": io.BytesIO(),
               "wsgi.url_scheme": "http", "REMOTE_ADDR": "127.0.0.1"}
    body = b"".join(app(environ, lambda status, headers, *rest: statuses.append(status)))
    assert (statuses, body) == (["200 OK"], b"home")
