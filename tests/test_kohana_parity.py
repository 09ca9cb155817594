"""Kohana 3.3's own test cases, run against sendoff (tests named after Kohana's).

From kohana/core ``tests/kohana/RouteTest.php`` and ``tests/kohana/RequestTest.php``; where
sendoff deliberately differs, the test says so.
"""

from __future__ import annotations

from typing import Any

import pytest

from sendoff import Internal, InvalidRequest, Request
from sendoff.hmvc import App, Controller, Route


# RouteTest::provider_route_uri_encode_parameters (Kohana ticket 4079)
@pytest.mark.parametrize(
    ("name", "uri_callback", "defaults", "uri_key", "uri_value", "expected"),
    [(
        "article",
        "blog/article/<article_name>",
        {"controller": "home", "action": "index"},
        "article_name",
        "Article name with special chars \\ ##",
        "blog/article/Article%20name%20with%20special%20chars%20\\%20%23%23",
    )],
)
def test_route_uri_encode_parameters(
    name: str, uri_callback: str, defaults: dict[str, str], uri_key: str, uri_value: str,
    expected: str,
) -> None:
    app = App()
    app.route(name, uri_callback).defaults(defaults)
    assert app.routes[name].uri(**{uri_key: uri_value}) == expected
    assert app.url(name, **{uri_key: uri_value}) == "/" + expected


def test_route_uri_encode_parameters_keeps_slashes_and_defaults_apart() -> None:
    """Kohana puts ``/`` and ``\\`` back after rawurlencode; a value equal to its default
    still leaves its optional part out."""
    route = Route("files", "files/<path>(/<mode>)", {"mode": "view"}, regex={"path": ".+?"})
    assert route.uri(path="a dir/b?c.txt") == "files/a%20dir/b%3Fc.txt"
    assert route.uri(path="x", mode="view") == "files/x"
    assert route.uri(path="x", mode="raw edit") == "files/x/raw%20edit"


def test_an_encoded_link_is_one_path_on_the_wire() -> None:
    """Before, a ``#`` in a parameter turned the rest of a link into a fragment."""
    app = App()
    app.route("article", "blog/article/<article_name>")
    link = app.url("article", article_name="a #1 b")
    assert Request("http://example.com" + link).render().startswith(
        b"GET /blog/article/a%20%231%20b HTTP/1.1\r\n"
    )


# RequestTest::provider_set_protocol
@pytest.mark.parametrize(("protocol", "expected"), [
    ("http/1.1", "HTTP/1.1"),
    ("hTTp/1.0", "HTTP/1.0"),
    ("HTTP/1.1", "HTTP/1.1"),
])
def test_set_protocol(protocol: str, expected: str) -> None:
    request = Request("http://example.com/")
    result = request.protocol(protocol)
    assert request.protocol() == expected
    assert result is request
    assert request.render().split(b"\r\n", 1)[0] == f"GET / {expected}".encode()


def test_set_protocol_ftp_is_refused() -> None:
    """Kohana's third case (``ftp`` -> ``FTP``) stores any word; sendoff renders the
    request line, so it accepts only what it can send."""
    with pytest.raises(InvalidRequest, match=r"^protocol: 'FTP' is not one of HTTP/1\.1"):
        Request("http://example.com/").protocol("ftp")


# RequestTest::provider_uri_only_trimed_on_internal
@pytest.mark.parametrize(("uri", "expected"), [
    ("http://www.google.com/", "http://www.google.com/"),
    ("foo/bar/", "foo/bar"),
    ("foo/bar", "foo/bar"),
    ("/", "/"),
    ("/?page=2", "/"),
])
def test_uri_only_trimed_on_internal(uri: str, expected: str) -> None:
    assert Request(uri).uri() == expected


def test_uri_only_trimed_on_internal_differences() -> None:
    """Kohana's ``new Request('')`` is the root too; sendoff refuses the empty URI (a
    missing value, far more often than a wish for the root) and says to write ``/``.
    A URL without a path gets ``/``, the path it is sent with."""
    with pytest.raises(InvalidRequest, match=r"^uri: is empty: write '/'"):
        Request("")
    assert Request("http://www.google.com").uri() == "http://www.google.com/"


def test_the_root_request_routes_to_the_default_route() -> None:
    """RequestTest::test_route: the root "should always match something"."""
    app = App()
    app.route("default", "(<controller>(/<action>))").defaults(
        {"controller": "welcome", "action": "index"})

    @app.controller("welcome")
    class Welcome(Controller):
        def action_index(self) -> None:
            self.response.body = f"root {self.request.uri()}"

    response = Request("/").client(Internal(app)).execute()
    assert (response.status, response.text) == (200, "root /")
    assert response.request is not None
    route: Any = response.request.route()
    assert route is app.routes["default"]
