"""External against real loopback servers; every test runs on every backend."""

from __future__ import annotations

import gzip
import time

import pytest

import sendoff
from sendoff import External, Request
from tests.support.recording_server import Reply, free_port


def test_get(server, backend):
    resp = Request(server.url("/")).client(External(backend)).execute()
    assert (resp.status, resp.reason, resp.body, resp.text) == (200, "OK", b"ok", "ok")
    assert resp.headers["content-type"] == "text/plain"
    [got] = server.wait_for(1)
    assert (got.method, got.target) == ("GET", "/")
    assert got.header("host") == f"127.0.0.1:{server.port}"
    assert got.header("user-agent") == "sendoff/0.1.0"


def test_get_with_query(server, backend):
    (Request(server.url("/example")).client(External(backend))
        .query("foo", "bar").query("baz", "qux").execute())
    [got] = server.wait_for(1)
    assert got.target == "/example?foo=bar&baz=qux"


def test_query_in_uri_is_merged(server, backend):
    Request(server.url("/e?a=1&b=2")).client(External(backend)).query("b", "3").query("c", "4")\
        .execute()
    [got] = server.wait_for(1)
    assert got.query == [("a", "1"), ("b", "3"), ("c", "4")]


def test_post_form(server, backend):
    (Request(server.url("/submit")).client(External(backend)).method("POST")
        .post("foo", "bar").post("baz", "qux").execute())
    [got] = server.wait_for(1)
    assert got.method == "POST"
    assert got.body == b"foo=bar&baz=qux"
    assert got.header("content-type") == "application/x-www-form-urlencoded"
    assert got.header("content-length") == "15"


def test_mixed_query_and_post(server, backend):
    (Request(server.url("/submit")).client(External(backend)).method("POST")
        .post("foo", "bar").post("baz", "qux")
        .query("corge", "grault").query("garply", "waldo").execute())
    [got] = server.wait_for(1)
    assert got.target == "/submit?corge=grault&garply=waldo"
    assert got.form == [("foo", "bar"), ("baz", "qux")]


def test_json_round_trip(make_server, backend):
    srv = make_server(lambda req: Reply(201, req.body, [("Content-Type", "application/json")]))
    resp = Request(srv.url("/j")).method("PUT").json({"k": [1, "é"]}).client(External(backend))\
        .execute()
    assert resp.status == 201
    assert resp.json() == {"k": [1, "é"]}
    assert srv.received[0].header("content-type") == "application/json"


def test_https_verified_with_ca_bundle(tls_server, ca_bundle, backend):
    resp = Request(tls_server.url("/secure", host="localhost")).client(
        External(backend, ca_bundle=ca_bundle)).execute()
    assert resp.status == 200
    assert tls_server.wait_for(1)[0].path == "/secure"


def test_untrusted_certificate_raises_tls_error(make_server, untrusted_tls, ca_bundle, backend):
    srv = make_server(tls=untrusted_tls)
    with pytest.raises(sendoff.TLSError):
        Request(srv.url("/", host="localhost")).client(External(backend, ca_bundle=ca_bundle))\
            .execute()
    assert srv.count == 0


def test_system_cas_do_not_trust_a_private_ca(tls_server, backend):
    with pytest.raises(sendoff.TLSError):
        Request(tls_server.url("/", host="localhost")).client(External(backend)).execute()


@pytest.mark.filterwarnings("ignore::urllib3.exceptions.InsecureRequestWarning")
def test_verify_false_accepts_any_certificate(make_server, untrusted_tls, backend):
    srv = make_server(tls=untrusted_tls)
    resp = Request(srv.url("/")).client(External(backend, verify=False)).execute()
    assert resp.status == 200


def test_refused_port_raises_connect_error(backend):
    url = f"http://127.0.0.1:{free_port()}/"
    with pytest.raises(sendoff.ConnectError) as info:
        Request(url).client(External(backend)).execute()
    assert not isinstance(info.value, sendoff.TLSError)
    assert url in str(info.value)


def test_slow_server_raises_timeout_error(make_server, backend):
    srv = make_server(lambda req: Reply(delay=5))
    started = time.monotonic()
    with pytest.raises(sendoff.TimeoutError):
        Request(srv.url("/slow")).client(External(backend, timeout=0.5)).execute()
    # pycurl rounds its no-progress timeout up to whole seconds
    assert time.monotonic() - started < 4


def test_request_timeout_overrides_client_timeout(make_server, backend):
    srv = make_server(lambda req: Reply(delay=5))
    with pytest.raises(sendoff.TimeoutError):
        Request(srv.url("/")).timeout(0.3).client(External(backend, timeout=60)).execute()


def test_server_closing_without_answer_raises_protocol_error(make_server, backend):
    srv = make_server(lambda req: Reply(drop=True))
    with pytest.raises(sendoff.TransportError):
        Request(srv.url("/")).client(External(backend)).execute()
    assert srv.count == 1


def test_multi_valued_response_headers(make_server, backend):
    srv = make_server(lambda req: Reply(headers=[("Set-Cookie", "a=1; Path=/"),
                                                 ("Set-Cookie", "b=2"), ("X-Twice", "x"),
                                                 ("x-twice", "y")]))
    resp = Request(srv.url("/")).client(External(backend)).execute()
    assert resp.headers.get_all("set-cookie") == ["a=1; Path=/", "b=2"]
    assert resp.headers["X-TWICE"] == "x, y"
    assert resp.cookies == {"a": "1", "b": "2"}


def test_chunked_and_gzip_bodies_are_decoded(make_server, backend):
    payload = b"hello " * 1000
    srv = make_server(lambda req: Reply(body=gzip.compress(payload), chunked=True,
                                        headers=[("Content-Encoding", "gzip")]))
    resp = Request(srv.url("/")).client(External(backend)).execute()
    assert resp.body == payload


def test_head_and_no_content(make_server, backend):
    srv = make_server(lambda req: Reply(204 if req.path == "/none" else 200, b"body"))
    client = External(backend)
    head = Request(srv.url("/")).method("HEAD").client(client).execute()
    assert (head.status, head.body, head.headers["content-length"]) == (200, b"", "4")
    none = Request(srv.url("/none")).method("DELETE").client(client).execute()
    assert (none.status, none.body) == (204, b"")


def test_informational_response_is_skipped(make_server, backend):
    srv = make_server(lambda req: Reply(informational=103, body=b"final"))
    resp = Request(srv.url("/")).client(External(backend)).execute()
    assert (resp.status, resp.body) == (200, b"final")


def test_keep_alive_reuses_connections(server, backend):
    client = External(backend)
    for _ in range(3):
        client.execute(Request(server.url("/")))
    # the stdlib backend opens one connection per request, by design
    assert server.connections == (3 if backend == "stdlib" else 1)


def test_host_header_and_ipv6(make_server, backend):
    srv = make_server(host="::1")
    resp = Request(srv.url("/six")).client(External(backend)).execute()
    assert resp.status == 200
    assert srv.received[0].header("host") == f"[::1]:{srv.port}"


def test_transfer_info(server, backend):
    resp = Request(server.url("/")).client(External(backend)).execute()
    info = resp.transfer_info
    assert info["backend"] == backend
    assert info["remote_address"][1] == server.port
    assert info["bytes_received"] == 2
    assert info["total_time"] > 0


def test_every_backend_returns_the_same_response(make_server):
    srv = make_server(lambda req: Reply(
        418, b'{"tea": true}', [("Content-Type", "application/json"), ("X-A", "1"), ("X-A", "2")],
        reason="I'm a teapot"))
    seen = []
    for name in ["urllib3", "pycurl", "httpx", "stdlib"]:
        resp = Request(srv.url("/t")).client(External(name)).execute()
        seen.append((resp.status, resp.reason, resp.headers.multi_items(), resp.body))
    assert all(s == seen[0] for s in seen), seen
    assert seen[0][0] == 418


def test_every_backend_sends_the_rendered_headers(server):
    request = Request(server.url("/h")).method("POST").post("a", "1").headers("X-Id", "7")
    for name in ["urllib3", "pycurl", "httpx", "stdlib"]:
        External(name).execute(request)
    expected = request.prepare().headers
    for got in server.wait_for(4):
        sent = [(k, v) for k, v in got.headers if k.lower() != "accept-encoding"]
        assert sent == expected, got.headers


def test_unknown_backend_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown backend 'curl'"):
        External("curl")


def test_auto_prefers_pycurl():
    assert External().backend.name == "pycurl"


def test_clients_are_context_managers(server):
    with External("urllib3") as client:
        assert client.execute(Request(server.url("/"))).status == 200
        assert len(client.backend.pool.pools) == 1
    assert len(client.backend.pool.pools) == 0


# -- our own words for transport errors (method, redacted URL, host, port, cause) ----------
def test_connect_error_message_is_ours(backend):
    port = free_port()
    url = f"http://127.0.0.1:{port}/hook?token=t0k3n-value&page=1"
    with pytest.raises(sendoff.ConnectError) as info:
        Request(url).client(External(backend)).execute()
    message = str(info.value)
    assert message.startswith(
        f"GET http://127.0.0.1:{port}/hook?token=[redacted]&page=1: "
        f"cannot connect to 127.0.0.1 port {port}: "
    )
    assert "refused" in message.lower() or "could not connect" in message.lower()
    for internal in ("_Connection(", "HTTPConnection(", "object at 0x", "t0k3n-value"):
        assert internal not in message


def test_tls_error_message_is_ours(make_server, untrusted_tls, ca_bundle, backend):
    srv = make_server(tls=untrusted_tls)
    with pytest.raises(sendoff.TLSError) as info:
        Request(srv.url("/")).client(External(backend, ca_bundle=ca_bundle)).execute()
    message = str(info.value)
    assert message.startswith(f"GET {srv.url('/')}: TLS with 127.0.0.1 port {srv.port} failed: ")
    assert "certificate" in message.lower() or "SSL" in message
    assert "object at 0x" not in message


def test_a_truncated_body_is_a_protocol_error_on_every_backend(make_server, backend):
    srv = make_server(lambda req: Reply(body=b"abc", headers=[("Content-Length", "10")],
                                        close=True))
    with pytest.raises(sendoff.ProtocolError) as info:
        Request(srv.url("/short")).client(External(backend)).execute()
    assert f"127.0.0.1 port {srv.port}: " in str(info.value)
    assert "IncompleteRead(" not in str(info.value)
