"""The HttpError subscriber: 4xx and 5xx responses raise sendoff.HttpError."""

from __future__ import annotations

import pytest

import sendoff
from sendoff import External, Request, Response
from sendoff.events import RequestEvents
from sendoff.subscribers import HttpError, Mock
from tests.events.helpers import statuses


@pytest.mark.parametrize("status", [400, 404, 418, 500, 503, 599])
def test_error_statuses_raise(make_server, status):
    srv = make_server(statuses(status))
    client = External("urllib3")
    client.emitter.attach(HttpError())
    request = Request(srv.url("/missing")).client(client)
    with pytest.raises(sendoff.HttpError) as caught:
        request.execute()
    err = caught.value
    assert err.response.status == status
    assert err.response.body == f"status {status}".encode()
    assert err.request is request
    assert f"HTTP {status}" in str(err)
    assert srv.url("/missing") in str(err)


@pytest.mark.parametrize("status", [200, 204, 301, 304, 399])
def test_other_statuses_pass(make_server, status):
    srv = make_server(statuses(status))
    client = External("urllib3")
    client.emitter.attach(HttpError())
    assert Request(srv.url("/")).client(client).execute().status == status


def test_without_the_subscriber_errors_are_plain_responses(make_server):
    srv = make_server(statuses(500))
    assert Request(srv.url("/")).client(External("urllib3")).execute().status == 500


def test_the_error_event_carries_the_failed_response(make_server):
    srv = make_server(statuses(401))
    client = External("urllib3")
    client.emitter.attach(HttpError())
    seen: list[tuple] = []
    client.emitter.on("error", lambda e: seen.append((type(e.exception), e.response.status)))
    with pytest.raises(sendoff.HttpError):
        Request(srv.url("/")).client(client).execute()
    assert seen == [(sendoff.HttpError, 401)]


def test_a_listener_above_verify_response_can_still_replace_the_response(make_server):
    srv = make_server(statuses(404))
    client = External("urllib3")
    client.emitter.attach(HttpError())
    client.emitter.on(
        "complete",
        lambda e: e.response.status == 404 and e.intercept(Response(200, body=b"default")),
        RequestEvents.VERIFY_RESPONSE + 1,
    )
    assert Request(srv.url("/")).client(client).execute().body == b"default"


def test_an_intercepted_error_response_is_verified_too():
    client = External("urllib3")
    client.emitter.attach(HttpError())
    client.emitter.attach(Mock([Response(502)]))
    with pytest.raises(sendoff.HttpError, match="502"):
        Request("http://example.invalid/").client(client).execute()


def test_runs_at_verify_response_priority():
    assert HttpError().get_events() == {
        "complete": ("on_complete", RequestEvents.VERIFY_RESPONSE)
    }
