"""The Mock subscriber: queued responses and exceptions, nothing on the wire."""

from __future__ import annotations

import io

import pytest

import sendoff
from sendoff import External, Request, Response
from sendoff.events import RequestEvents
from sendoff.subscribers import Mock


def mocked(*items) -> tuple[External, Mock]:
    mock = Mock(items)
    client = External("urllib3")
    client.emitter.attach(mock)
    return client, mock


def test_answers_from_the_queue_and_the_server_sees_nothing(server):
    client, mock = mocked(Response(201, body=b"first"), 404)
    r1 = Request(server.url("/")).client(client).execute()
    r2 = Request(server.url("/")).client(client).execute()
    assert (r1.status, r1.body, r2.status) == (201, b"first", 404)
    assert r1.request is not None
    assert r1.request.uri() == server.url("/")
    assert server.count == 0
    assert len(mock) == 0


def test_queued_exceptions_are_raised_through_the_error_event(server):
    failure = sendoff.ConnectError("simulated outage")
    client, _ = mocked(failure)
    seen: list[BaseException | None] = []
    client.emitter.on("error", lambda e: seen.append(e.exception))
    with pytest.raises(sendoff.ConnectError) as caught:
        Request(server.url("/")).client(client).execute()
    assert caught.value is failure
    assert seen == [failure]
    assert server.count == 0


def test_an_empty_queue_is_an_error():
    client, _ = mocked()
    with pytest.raises(IndexError, match=r"Mock queue is empty.*GET http://example\.test/x"):
        Request("http://example.test/x").client(client).execute()


def test_add_chains_and_validates():
    mock = Mock().add(200).add(Response(204)).add(ValueError("x"))
    assert len(mock) == 3
    for bad in ("200", True, None, object()):
        with pytest.raises(TypeError, match="queue a Response"):
            mock.add(bad)
    mock.clear()
    assert len(mock) == 0


def test_runs_after_listeners_that_prepare_and_sign():
    client, _ = mocked(200)
    signed: list[str] = []
    client.emitter.on("before", lambda e: signed.append("signed"), RequestEvents.SIGN_REQUEST)
    Request("http://example.test/").client(client).execute()
    assert signed == ["signed"]
    assert Mock().get_events() == {"before": ("on_before", RequestEvents.SIGN_REQUEST - 10)}


def test_emits_headers_and_honours_a_sink():
    client, _ = mocked(Response(200, headers={"X-Mock": "yes"}, body=b"streamed body"))
    sink = io.BytesIO()
    seen: list[str] = []

    def on_headers(event):
        seen.append(event.response.headers["x-mock"])
        event.sink = sink

    client.emitter.on("headers", on_headers)
    resp = Request("http://example.test/").client(client).execute()
    assert seen == ["yes"]
    assert sink.getvalue() == b"streamed body"
    assert resp.body == b""


def test_request_level_mock_for_one_request(server):
    client = External("urllib3")
    mocked_request = Request(server.url("/mocked")).client(client)
    mocked_request.emitter.attach(Mock([418]))
    assert mocked_request.execute().status == 418
    assert Request(server.url("/real")).client(client).execute().status == 200
    assert [r.path for r in server.wait_for(1)] == ["/real"]
