"""Delivery through the background engine against real loopback servers."""

from __future__ import annotations

import threading

import pytest

import sendoff
from sendoff import FireAndForget, Receipt, Request, Response
from sendoff.delivery.wire import fire_wire
from tests.delivery.conftest import origin_stats
from tests.support.recording_server import Reply


def test_get_returns_a_receipt_that_confirms_delivery(server, client):
    receipt = Request(server.url("/")).client(client).execute()
    assert isinstance(receipt, Receipt)
    response = receipt.wait(5)
    assert receipt.done()
    assert isinstance(response, Response)
    assert (response.status, response.body, receipt.error) == (200, b"ok", None)
    assert response.headers["content-type"] == "text/plain"
    [got] = server.wait_for(1)
    assert (got.method, got.target) == ("GET", "/")
    assert got.header("user-agent") == "sendoff/0.1.0"


def test_get_with_query(server, client):
    (Request(server.url("/example")).client(client)
        .query("foo", "bar").query("baz", "qux").execute().wait(5))
    [got] = server.wait_for(1)
    assert got.target == "/example?foo=bar&baz=qux"


def test_post_form(server, client):
    receipt = (Request(server.url("/submit")).client(client).method("POST")
               .post("foo", "bar").post("baz", "qux").execute())
    assert receipt.wait(5).status == 200
    [got] = server.wait_for(1)
    assert (got.method, got.body) == ("POST", b"foo=bar&baz=qux")
    assert got.header("content-type") == "application/x-www-form-urlencoded"


def test_mixed_query_and_post(server, client):
    (Request(server.url("/submit")).client(client).method("POST")
        .post("foo", "bar").post("baz", "qux")
        .query("corge", "grault").query("garply", "waldo").execute().wait(5))
    [got] = server.wait_for(1)
    assert got.target == "/submit?corge=grault&garply=waldo"
    assert got.form == [("foo", "bar"), ("baz", "qux")]


def test_https_verified(tls_server, ca_bundle):
    client = FireAndForget(ca_bundle=ca_bundle, retries=0)
    receipt = Request(tls_server.url("/secure", host="localhost")).client(client).execute()
    assert receipt.wait(5).status == 200, receipt.error
    assert tls_server.wait_for(1)[0].path == "/secure"


def test_many_fires_reuse_keep_alive_connections(server):
    client = FireAndForget(connections_per_origin=4, retries=0)
    receipts = [client.fire("POST", server.url(f"/n/{i}"), json={"i": i}) for i in range(400)]
    assert client.flush(10)
    assert all(r.response is not None and r.response.status == 200 for r in receipts)
    got = server.wait_for(400)
    assert sorted(int(r.path.rsplit("/", 1)[1]) for r in got) == list(range(400))
    assert server.connections <= 4
    counters = origin_stats(server.url())
    assert (counters["delivered"], counters["failed"], counters["queued"]) == (400, 0, 0)


def test_pipelining_delivers_in_order_on_few_connections(server):
    client = FireAndForget(connections_per_origin=2, pipeline=8, retries=0)
    receipts = [client.fire("GET", server.url(f"/p/{i}")) for i in range(200)]
    assert client.flush(10)
    assert [r.response.body for r in receipts] == [b"ok"] * 200
    assert server.count == 200
    assert server.connections <= 2
    by_connection: dict[int, list[int]] = {}
    for rec in server.received:
        by_connection.setdefault(rec.connection_id, []).append(int(rec.path.rsplit("/", 1)[1]))
    for paths in by_connection.values():
        assert paths == sorted(paths)


def test_response_shapes(make_server):
    """Content-length, chunked, close-delimited, 1xx first, HEAD, 204 and 304, one after
    the other on a single connection (re-opened after the close-delimited one)."""
    client = FireAndForget(connections_per_origin=1, retries=0)
    def handler(req):
        return {
            "/chunked": Reply(200, b"0123456789" * 50, chunked=True),
            "/close": Reply(200, b"until the end", until_close=True),
            "/early": Reply(200, b"final", informational=103),
            "/empty": Reply(204, b""),
            "/same": Reply(304, b""),
        }.get(req.path, Reply(200, b"plain", [("X-Len", "5")]))

    srv = make_server(handler)
    chunked = client.fire("GET", srv.url("/chunked"))
    close = client.fire("GET", srv.url("/close"))
    early = client.fire("GET", srv.url("/early"))
    empty = client.fire("GET", srv.url("/empty"))
    same = client.fire("GET", srv.url("/same"))
    head = client.execute(Request(srv.url("/plain"), "HEAD"))
    after_head = client.fire("GET", srv.url("/plain"))
    assert client.flush(10)
    assert chunked.response.body == b"0123456789" * 50
    assert close.response.body == b"until the end"
    assert (early.response.status, early.response.body) == (200, b"final")
    assert (empty.response.status, empty.response.body) == (204, b"")
    assert (same.response.status, same.response.body) == (304, b"")
    assert (head.response.status, head.response.body) == (200, b"")
    assert after_head.response.body == b"plain"
    assert srv.count == 7
    # the close-delimited answer ends its connection; so does a HEAD (a server that sent
    # a body with it anyway cannot make the next request read that body as its answer)
    assert srv.connections == 3


def test_fire_shortcut_and_default_client(server):
    receipt = sendoff.fire("POST", server.url("/hook"), params={"a": "1"}, json={"k": "v"},
                           headers={"X-Token": "t"})
    assert receipt.wait(5).status == 200
    [got] = server.wait_for(1)
    assert (got.target, got.body) == ("/hook?a=1", b'{"k":"v"}')
    assert got.header("x-token") == "t"
    assert got.header("content-type") == "application/json"


def test_fire_uses_a_fire_and_forget_default_client(server):
    mine = FireAndForget(timeout=7.0, retries=0)
    sendoff.set_default_client(mine)
    try:
        from sendoff.shortcuts import default_fire_client

        assert default_fire_client() is mine
        assert sendoff.fire("GET", server.url("/d")).wait(5).status == 200
    finally:
        sendoff.set_default_client(None)


def test_receipt_rebuilds_the_request_it_sent(server, client):
    receipt = client.fire("PUT", server.url("/r"), params={"q": "1"}, data={"f": "x y"},
                          headers={"X-A": "b"})
    receipt.wait(5)
    request = receipt.request
    assert (request.method(), request.url()) == ("PUT", server.url("/r?q=1"))
    assert request.headers()["x-a"] == "b"
    assert request.body() == b"f=x+y"
    assert request.render() == receipt.wire
    assert repr(receipt).startswith(f"<Receipt PUT {server.url('/r?q=1')} 200")


@pytest.mark.parametrize(
    ("method", "params", "data", "json", "headers"),
    [
        ("GET", None, None, None, None),
        ("get", {"a": "1", "b": ["x", "y"], "c": None}, None, None, None),
        ("POST", None, {"f": "é", "n": 3}, None, {"X-Api-Key": "k"}),
        ("POST", None, None, {"k": [1, "é"], "n": None}, None),
        ("PUT", None, None, None, None),
        ("DELETE", {"x": b"bytes"}, {}, None, {"Accept": "text/plain"}),
        ("PATCH", {}, {"only": None}, None, None),
    ],
)
def test_fast_fire_bytes_equal_the_request_rendering(method, params, data, json, headers):
    url = "http://example.com:8080/hook"
    fast = fire_wire(method, url, params, data, json, headers)
    assert fast is not None
    kwargs = {} if json is None else {"json": json}
    slow = Request(url, method, query=params, post=data, headers=headers, **kwargs).render()
    assert fast[1] == slow


def test_bad_input_raises_at_once_in_the_caller(client):
    with pytest.raises(sendoff.InvalidRequest, match="header"):
        client.fire("GET", "http://127.0.0.1:1/", headers={"X-Bad": "a\r\nb"})
    with pytest.raises(sendoff.InvalidRequest, match="uri"):
        client.fire("GET", "ftp://example.com/")
    with pytest.raises(sendoff.InvalidRequest, match="uri"):
        client.execute(Request("internal/route"))
    with pytest.raises(sendoff.InvalidRequest, match="method"):
        sendoff.fire("GE T", "http://127.0.0.1:1/")
    with pytest.raises(sendoff.InvalidRequest, match="timeout"):
        sendoff.fire("GET", "http://127.0.0.1:1/", timeout=-1)
    with pytest.raises(sendoff.InvalidRequest, match="timeout"):  # as Request(timeout=True)
        sendoff.fire("GET", "http://127.0.0.1:1/", timeout=True)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), True])
def test_a_timeout_that_never_ends_is_refused(bad):
    """NaN or infinity as a timeout or deadline left a request to a silent server pending
    for ever (and a blocked caller with it)."""
    with pytest.raises(ValueError, match="timeout"):
        sendoff.FireAndForget(timeout=bad)
    with pytest.raises(ValueError, match="deadline"):
        sendoff.FireAndForget(deadline=bad)
    with pytest.raises(sendoff.InvalidRequest, match="timeout"):
        sendoff.fire("GET", "http://127.0.0.1:1/", timeout=bad)
    with pytest.raises(sendoff.InvalidRequest, match="deadline"):
        sendoff.Request("http://127.0.0.1:1/").deadline(bad)


def test_waiting_longer_than_the_platform_can_does_not_raise(make_server, client):
    srv = make_server(lambda req: Reply(200, b"late", delay=0.2))
    receipt = client.fire("GET", srv.url("/slow"))
    assert receipt.wait(float("inf")).body == b"late"
    assert receipt.wait(1e300).body == b"late"


def test_wait_times_out_without_raising(make_server, client):
    srv = make_server(lambda req: Reply(200, b"late", delay=1.0))
    receipt = client.fire("GET", srv.url("/slow"))
    assert receipt.wait(0.05) is None
    assert not receipt.done()
    assert receipt.wait(5).body == b"late"


def test_waiters_in_several_threads_all_wake(make_server, client):
    srv = make_server(lambda req: Reply(200, b"x", delay=0.2))
    receipt = client.fire("GET", srv.url("/"))
    seen: list[int] = []
    threads = [threading.Thread(target=lambda: seen.append(receipt.wait(5).status))
               for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert seen == [200] * 4


def test_import_starts_no_thread():
    import subprocess
    import sys

    code = ("import threading, sendoff, sendoff.delivery.engine as e; "
            "print(threading.active_count(), e.current_engine() is None)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "True"]
