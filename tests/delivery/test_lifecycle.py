"""Lifecycle events through the engine: before in the caller's thread, the rest on the
engine's; intercept and retry."""

from __future__ import annotations

import logging
import threading

import sendoff
from sendoff import FireAndForget, Request, Response
from tests.delivery.conftest import origin_stats
from tests.support.recording_server import Reply, free_port


def test_before_runs_in_the_caller_and_the_rest_on_the_engine_thread(server):
    client = FireAndForget(retries=0)
    threads: dict[str, str] = {}
    for name in ("before", "complete", "end"):
        client.emitter.on(name, lambda e, n=name: threads.setdefault(
            n, threading.current_thread().name))
    receipt = Request(server.url("/e")).client(client).execute()
    assert receipt.wait(5).status == 200
    assert client.flush(5)
    assert threads["before"] == threading.current_thread().name
    assert threads["complete"] == threads["end"] == "sendoff-engine"


def test_before_can_change_the_request(server):
    client = FireAndForget(retries=0)
    client.emitter.on("before", lambda e: e.request.headers("X-Signed", "yes"))
    Request(server.url("/s")).client(client).execute().wait(5)
    assert server.wait_for(1)[0].header("x-signed") == "yes"


def test_before_intercept_sends_nothing(server):
    client = FireAndForget(retries=0)
    client.emitter.on("before", lambda e: e.intercept(Response(299, body=b"cached")))
    ended: list[int] = []
    client.emitter.on("end", lambda e: ended.append(e.response.status))
    receipt = Request(server.url("/i")).client(client).execute()
    assert receipt.done()
    assert receipt.wait(0).body == b"cached"
    assert ended == [299]
    assert client.flush(5)
    assert server.count == 0


def test_complete_retry_sends_again(make_server):
    statuses = iter([503, 200])
    srv = make_server(lambda req: Reply(next(statuses), b"x"))
    client = FireAndForget(retries=0)
    seen: list[tuple[int, int]] = []

    def on_complete(event):
        seen.append((event.response.status, event.retry_count))
        if event.response.status == 503:
            event.retry()

    client.emitter.on("complete", on_complete)
    receipt = client.fire("POST", srv.url("/r"), data={"a": "1"})
    assert receipt.wait(5).status == 200
    assert seen == [(503, 0), (200, 1)]
    got = srv.wait_for(2)
    assert [r.body for r in got] == [b"a=1", b"a=1"]
    counters = origin_stats(srv.url())
    assert (counters["delivered"], counters["retried"]) == (1, 1)


def test_error_listener_sees_the_failure_and_may_intercept(caplog):
    client = FireAndForget(retries=0)
    errors: list[BaseException] = []

    def on_error(event):
        errors.append(event.exception)
        event.intercept(Response(204))

    client.emitter.on("error", on_error)
    url = f"http://127.0.0.1:{free_port()}/"
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("GET", url)
        assert receipt.wait(5).status == 204
    assert isinstance(errors[0], sendoff.ConnectError)
    assert receipt.error is None
    assert "failed" not in caplog.text


def test_listener_exception_fails_the_request_and_is_logged(server, caplog):
    client = FireAndForget(retries=0)

    def reject(event):
        raise sendoff.HttpError(event.response, event.request)

    client.emitter.on("complete", reject)
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = Request(server.url("/x")).client(client).execute()
        assert receipt.wait(5) is None
    assert isinstance(receipt.error, sendoff.HttpError)
    assert f"GET {server.url('/x')} failed" in caplog.text
    assert origin_stats(server.url())["failed"] == 1


def test_headers_event_and_body_sink(make_server):
    srv = make_server(lambda req: Reply(200, b"streamed body", chunked=True))
    client = FireAndForget(retries=0)
    sink: list[bytes] = []

    class Sink:
        def write(self, data: bytes) -> None:
            sink.append(data)

    client.emitter.on("headers", lambda e: setattr(e, "sink", Sink()))
    receipt = client.fire("GET", srv.url("/"))
    response = receipt.wait(5)
    assert response.body == b""
    assert b"".join(sink) == b"streamed body"
    assert response.transfer_info["bytes_received"] == len(b"streamed body")


def test_request_own_emitter_applies_to_that_request_only(server):
    client = FireAndForget(retries=0)
    seen: list[str] = []
    tagged = Request(server.url("/own")).client(client)
    tagged.emitter.on("complete", lambda e: seen.append(e.request.uri()))
    tagged.execute().wait(5)
    Request(server.url("/other")).client(client).execute().wait(5)
    assert seen == [server.url("/own")]
