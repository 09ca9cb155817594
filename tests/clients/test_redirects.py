"""Redirects follow Kohana's rules when External(follow_redirects=True)."""

from __future__ import annotations

import pytest

import sendoff
from sendoff import External, Request
from tests.support.recording_server import Reply


def redirecting(status: int, hops: int = 1):
    def handler(req):
        n = int(req.path.strip("/") or 0)
        if n < hops:
            return Reply(status, b"", [("Location", f"/{n + 1}?from={n}")])
        return Reply(200, f"{req.method} {req.body.decode()}".encode())
    return handler


@pytest.mark.parametrize(("status", "method"), [
    (301, "POST"), (302, "POST"), (307, "POST"), (308, "POST"), (303, "GET"), (201, "GET"),
])
def test_kohana_method_rules(make_server, backend, status, method):
    srv = make_server(redirecting(status))
    resp = (Request(srv.url("/0")).method("POST").post("a", "1")
            .client(External(backend, follow_redirects=True)).execute())
    first, second = srv.wait_for(2)
    assert (first.method, second.method) == ("POST", method)
    assert second.target == "/1?from=0"
    assert second.body == (b"a=1" if method == "POST" else b"")
    assert resp.status == 200
    assert resp.text == f"{method} {second.body.decode()}"
    if method == "GET":
        assert second.header("content-type") is None
        assert second.header("content-length") is None


def test_redirects_are_not_followed_by_default(make_server, backend):
    srv = make_server(redirecting(302))
    resp = Request(srv.url("/0")).client(External(backend)).execute()
    assert (resp.status, resp.headers["location"], srv.count) == (302, "/1?from=0", 1)


def test_at_most_max_redirects(make_server, backend):
    srv = make_server(redirecting(302, hops=10))
    client = External(backend, follow_redirects=True, max_redirects=3)
    with pytest.raises(sendoff.TooManyRedirects, match="more than 3 redirects"):
        client.execute(Request(srv.url("/0")))
    assert srv.count == 4  # the original request and three redirects


def test_credentials_stay_on_their_origin(make_server):
    other = make_server()
    srv = make_server(lambda req: Reply(302, b"", [("Location", other.url("/elsewhere"))]))
    (Request(srv.url("/")).headers("Authorization", "Bearer t").cookie("sid", "1")
        .headers("X-Keep", "yes").client(External("urllib3", follow_redirects=True)).execute())
    [moved] = other.wait_for(1)
    assert moved.header("authorization") is None
    assert moved.header("cookie") is None
    assert moved.header("x-keep") == "yes"
    assert moved.header("host") == f"127.0.0.1:{other.port}"


def test_the_users_request_is_not_changed(make_server):
    srv = make_server(redirecting(303))
    request = Request(srv.url("/0")).method("POST").post("a", "1")
    request.client(External("urllib3", follow_redirects=True)).execute()
    assert (request.method(), request.post(), request.uri()) == ("POST", {"a": "1"},
                                                                  srv.url("/0"))
