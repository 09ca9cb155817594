"""The History subscriber: every exchange, hops included."""

from __future__ import annotations

import pytest

import sendoff
from sendoff import External, Request, Response
from sendoff.subscribers import History, HttpError, Mock, Redirect, Retry
from tests.events.helpers import refused_url, statuses
from tests.support.recording_server import Reply


def history_client(limit: int | None = 10) -> tuple[External, History]:
    history = History(limit)
    client = External("urllib3", timeout=5)
    client.emitter.attach(history)
    return client, history


def test_records_requests_and_responses_in_order(server):
    client, history = history_client()
    first = Request(server.url("/one")).client(client)
    r1 = first.execute()
    r2 = Request(server.url("/two")).client(client).execute()
    assert [(e.request.uri(), e.response, e.exception) for e in history] == [
        (server.url("/one"), r1, None), (server.url("/two"), r2, None)
    ]
    assert history.entries[0].request is first
    assert history.last_request is not None
    assert history.last_request.uri() == server.url("/two")
    assert history.last_response is r2
    assert len(history) == 2


def test_records_each_redirect_hop(make_server):
    srv = make_server(lambda req: Reply(302, b"", [("Location", "/b")]) if req.path == "/a"
                      else Reply(200, b"end"))
    client, history = history_client()
    client.emitter.attach(Redirect())
    Request(srv.url("/a")).client(client).execute()
    assert [(e.request.parsed_url.path, e.response.status) for e in history] == [
        ("/a", 302), ("/b", 200)
    ]


def test_records_transport_errors():
    client, history = history_client()
    with pytest.raises(sendoff.ConnectError):
        Request(refused_url()).client(client).execute()
    [entry] = history
    assert entry.response is None
    assert isinstance(entry.exception, sendoff.ConnectError)
    assert history.last_response is None


def test_an_http_error_is_one_entry_with_its_response(make_server):
    srv = make_server(statuses(404))
    client, history = history_client()
    client.emitter.attach(HttpError())
    with pytest.raises(sendoff.HttpError):
        Request(srv.url("/")).client(client).execute()
    assert [(e.response.status, e.exception) for e in history] == [(404, None)]


def test_a_body_failure_after_the_headers_is_recorded_with_its_exception(make_server):
    srv = make_server(lambda req: Reply(200, b"x" * 100, [("Content-Length", "1000")],
                                        close=True))
    client, history = history_client()
    client.emitter.on("headers", lambda e: None)  # the partial response is on the event
    with pytest.raises(sendoff.ProtocolError):
        Request(srv.url("/")).client(client).execute()
    [entry] = history
    assert isinstance(entry.exception, sendoff.ProtocolError)


def test_records_retries(make_server):
    srv = make_server(statuses(503, 200))
    client, history = history_client()
    client.emitter.on("complete", lambda e: e.response.status == 503 and e.retry())
    Request(srv.url("/")).client(client).execute()
    assert [e.response.status for e in history] == [503, 200]


def test_limit_keeps_the_newest(server):
    client, history = history_client(limit=2)
    for path in ("/1", "/2", "/3"):
        Request(server.url(path)).client(client).execute()
    assert [e.request.parsed_url.path for e in history] == ["/2", "/3"]


def test_no_limit_and_clear():
    client, history = history_client(limit=None)
    client.emitter.attach(Mock([200] * 25))
    for _ in range(25):
        Request("http://example.test/").client(client).execute()
    assert len(history) == 25
    history.clear()
    assert len(history) == 0
    assert history.last_request is None


def test_limit_must_be_positive():
    with pytest.raises(ValueError, match="limit"):
        History(0)


def test_intercepted_responses_are_recorded():
    client, history = history_client()
    client.emitter.attach(Mock([Response(201)]))
    Request("http://example.test/").client(client).execute()
    assert [e.response.status for e in history] == [201]


def test_sees_retried_failures_whatever_the_attach_order(make_server, monkeypatch):
    monkeypatch.setattr("sendoff.clients.base.time.sleep", lambda s: None)
    srv = make_server()
    client = External("urllib3", timeout=5)
    client.emitter.attach(Retry())  # attached first: it stops propagation when it retries
    history = History()
    client.emitter.attach(history)
    request = Request(refused_url("/x")).client(client)
    # the retry goes to the live server
    client.emitter.on("before", lambda e: e.retry_count == 1 and e.request.uri(srv.url("/x")))
    assert request.execute().status == 200
    assert [(type(e.exception).__name__, e.response and e.response.status) for e in history] == [
        ("ConnectError", None), ("NoneType", 200)
    ]
