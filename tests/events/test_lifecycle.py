"""Every path of the request lifecycle, against a real loopback server."""

from __future__ import annotations

import io
import logging

import pytest

import sendoff
from sendoff import External, Request, Response
from sendoff.clients.base import Client
from sendoff.events import (
    MAX_TRANSITIONS,
    BeforeEvent,
    CompleteEvent,
    EndEvent,
    ErrorEvent,
    HeadersEvent,
    ProgressEvent,
    Transaction,
)
from sendoff.subscribers import Redirect
from tests.events.helpers import refused_url, statuses
from tests.support.recording_server import Reply

LIFECYCLE = ("before", "headers", "complete", "error", "end")


class Trace:
    """Records every lifecycle event a client or request emits, in order."""

    def __init__(self, emitter, names=("before", "complete", "error", "end"), priority=1000):
        self.seen: list[tuple[str, int]] = []
        self.events: list = []
        for name in names:
            emitter.on(name, self._record, priority)

    def _record(self, event) -> None:
        self.seen.append((event.name, event.retry_count))
        self.events.append(event)

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.seen]


# -- before ----------------------------------------------------------------------------------
def test_intercept_in_before_sends_nothing(server):
    client = External("urllib3")
    trace = Trace(client.emitter)
    client.emitter.on("before", lambda e: e.intercept(Response(201, body=b"cached")))
    resp = Request(server.url("/")).client(client).execute()
    assert (resp.status, resp.body) == (201, b"cached")
    assert resp.request is not None
    assert resp.request.url() == server.url("/")
    assert trace.names == ["before", "complete", "end"]
    assert server.count == 0


def test_intercept_in_before_stops_later_before_listeners(server):
    client = External("urllib3")
    calls: list[str] = []
    client.emitter.on("before", lambda e: e.intercept(Response(200)), 10)
    client.emitter.on("before", lambda e: calls.append("later"), 0)
    Request(server.url("/")).client(client).execute()
    assert calls == []
    assert server.count == 0


def test_exception_in_before_goes_to_error_and_sends_nothing(server):
    client = External("urllib3")
    trace = Trace(client.emitter)
    boom = ValueError("refused by a listener")

    def before(event):
        raise boom

    client.emitter.on("before", before)
    with pytest.raises(ValueError) as caught:
        Request(server.url("/")).client(client).execute()
    assert caught.value is boom
    assert trace.names == ["before", "error", "end"]
    assert trace.events[1].exception is boom
    assert server.count == 0


def test_before_can_change_the_request_that_is_sent(server):
    client = External("urllib3")
    client.emitter.on("before", lambda e: e.request.headers("X-Signed", "yes"))
    Request(server.url("/")).client(client).execute()
    assert server.wait_for(1)[0].header("x-signed") == "yes"


# -- complete / error ------------------------------------------------------------------------
def test_complete_carries_the_event_fields(server):
    client = External("urllib3")
    trace = Trace(client.emitter, names=("complete",))
    request = Request(server.url("/fields"))
    resp = request.client(client).execute()
    [event] = trace.events
    assert isinstance(event, CompleteEvent)
    assert event.request is request
    assert event.client is client
    assert event.response is resp
    assert event.exception is None
    assert event.retry_count == 0
    info = event.transfer_info
    assert info["remote_address"] == ("127.0.0.1", server.port)
    assert info["bytes_received"] == 2
    assert info["total_time"] > 0


def test_intercept_in_complete_replaces_the_response(server):
    client = External("urllib3")
    replacement = Response(200, body=b"from cache")
    client.emitter.on("complete", lambda e: e.response is not replacement
                      and e.intercept(replacement), 10)
    later: list[Response] = []
    client.emitter.on("complete", lambda e: later.append(e.response), 0)
    resp = Request(server.url("/")).client(client).execute()
    assert resp is replacement
    assert server.count == 1
    # intercept stopped the first complete; the replacement goes through complete again,
    # so that the listeners after the interceptor (verification, redirects) see it
    assert later == [replacement]


def test_exception_in_complete_goes_to_error_with_the_response(make_server):
    srv = make_server(statuses(418))
    client = External("urllib3")
    trace = Trace(client.emitter)
    problem = RuntimeError("bad response")

    def complete(event):
        raise problem

    client.emitter.on("complete", complete)
    with pytest.raises(RuntimeError) as caught:
        Request(srv.url("/")).client(client).execute()
    assert caught.value is problem
    assert trace.names == ["before", "complete", "error", "end"]
    error = trace.events[2]
    assert error.exception is problem
    assert error.response is not None
    assert error.response.status == 418


def test_transport_failure_goes_to_error_and_raises():
    client = External("urllib3", timeout=5)
    trace = Trace(client.emitter)
    with pytest.raises(sendoff.ConnectError):
        Request(refused_url()).client(client).execute()
    assert trace.names == ["before", "error", "end"]
    assert isinstance(trace.events[1].exception, sendoff.ConnectError)
    assert trace.events[1].response is None
    assert trace.events[1].transfer_info["backend"] == "urllib3"


def test_error_intercept_yields_a_complete():
    client = External("urllib3", timeout=5)
    trace = Trace(client.emitter)
    client.emitter.on("error", lambda e: e.intercept(Response(203, body=b"fallback")))
    resp = Request(refused_url()).client(client).execute()
    assert (resp.status, resp.body) == (203, b"fallback")
    assert trace.names == ["before", "error", "complete", "end"]
    assert trace.events[2].response is resp
    assert trace.events[2].exception is None


def test_complete_raising_after_an_error_intercept_emits_error_again():
    client = External("urllib3", timeout=5)
    trace = Trace(client.emitter)
    errors_seen: list[BaseException | None] = []
    rejected = LookupError("rejected fallback")

    def on_error(event):
        errors_seen.append(event.exception)
        if len(errors_seen) == 1:
            event.intercept(Response(200))

    def on_complete(event):
        raise rejected

    client.emitter.on("error", on_error)
    client.emitter.on("complete", on_complete)
    with pytest.raises(LookupError):
        Request(refused_url()).client(client).execute()
    assert trace.names == ["before", "error", "complete", "error", "end"]
    assert isinstance(errors_seen[0], sendoff.ConnectError)
    assert errors_seen[1] is rejected


def test_exception_in_error_listener_ends_the_request_with_it():
    client = External("urllib3", timeout=5)
    trace = Trace(client.emitter)
    replacement = KeyError("from the error listener")

    def on_error(event):
        raise replacement

    client.emitter.on("error", on_error)
    with pytest.raises(KeyError) as caught:
        Request(refused_url()).client(client).execute()
    assert caught.value is replacement
    assert trace.names == ["before", "error", "end"]
    assert trace.events[-1].exception is replacement


# -- retry -----------------------------------------------------------------------------------
def test_retry_on_503_then_200_reaches_the_server_twice(make_server):
    srv = make_server(statuses(503, 200))
    client = External("urllib3")
    trace = Trace(client.emitter)

    def on_complete(event):
        if event.response.status == 503:
            event.retry()

    client.emitter.on("complete", on_complete)
    resp = Request(srv.url("/again")).client(client).execute()
    assert (resp.status, resp.body) == (200, b"status 200")
    assert [r.path for r in srv.wait_for(2)] == ["/again", "/again"]
    assert srv.count == 2
    assert trace.seen == [
        ("before", 0), ("complete", 0), ("before", 1), ("complete", 1), ("end", 1)
    ]


def test_retry_from_error_sends_again(make_server):
    srv = make_server()
    client = External("urllib3", timeout=5)
    request = Request(refused_url()).client(client)

    def on_error(event):
        event.request.uri(srv.url("/recovered"))  # e.g. fail over to another host
        event.retry()

    request.emitter.once("error", on_error)
    resp = request.execute()
    assert resp.status == 200
    assert srv.wait_for(1)[0].path == "/recovered"


def test_retry_delay_is_waited_before_the_next_send(make_server, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr("sendoff.clients.base.time.sleep", slept.append)
    srv = make_server(statuses(503, 200))
    client = External("urllib3")
    delays: list[float] = []
    client.emitter.on("before", lambda e: delays.append(e.transaction.retry_delay))
    client.emitter.on("complete", lambda e: e.response.status == 503 and e.retry(2.5))
    assert Request(srv.url("/")).client(client).execute().status == 200
    assert delays == [0.0, 2.5]
    assert slept == [2.5]


def test_retry_stops_propagation(make_server):
    srv = make_server(statuses(503, 200))
    client = External("urllib3")
    later: list[int] = []
    client.emitter.on("complete", lambda e: e.response.status == 503 and e.retry(), 10)
    client.emitter.on("complete", lambda e: later.append(e.response.status), 0)
    Request(srv.url("/")).client(client).execute()
    assert later == [200]


# -- endless loops -----------------------------------------------------------------------------
def test_endless_retry_loop_raises_too_many_transitions(server):
    client = External("urllib3")
    client.emitter.on("complete", lambda e: e.retry())
    ends: list[BaseException | None] = []
    client.emitter.on("end", lambda e: ends.append(e.exception))
    with pytest.raises(sendoff.TooManyTransitions, match="transitions"):
        Request(server.url("/loop")).client(client).execute()
    # each round is before + complete: the bound stops it after MAX_TRANSITIONS / 2 sends
    assert server.count == MAX_TRANSITIONS // 2
    assert len(ends) == 1
    assert isinstance(ends[0], sendoff.TooManyTransitions)


def test_endless_intercept_loop_raises_too_many_transitions(server):
    client = External("urllib3")
    client.emitter.on("complete", lambda e: e.intercept(Response(200)))
    with pytest.raises(sendoff.TooManyTransitions):
        Request(server.url("/")).client(client).execute()
    assert server.count == 1


def test_endless_error_complete_loop_raises_too_many_transitions():
    client = External("urllib3", timeout=5)
    client.emitter.on("error", lambda e: e.intercept(Response(200)))

    def complete(event):
        raise RuntimeError("never good enough")

    client.emitter.on("complete", complete)
    with pytest.raises(sendoff.TooManyTransitions):
        Request(refused_url()).client(client).execute()


def test_transition_bound_is_per_transaction(server):
    client = External("urllib3")

    class Bounded(Client):
        def transfer(self, request, transaction):
            return client.transfer(request, transaction)

    bounded = Bounded()
    bounded.emitter.on("complete", lambda e: e.retry_count < 3 and e.retry())
    for _ in range(3):  # the counter starts again for each request
        assert Request(server.url("/")).client(bounded).execute().status == 200
    txn = Transaction(bounded, Request(server.url("/")), max_transitions=4)
    assert txn.start() == "send"
    assert txn.succeeded(Response(200)) == "send"  # retried: before again
    assert txn.succeeded(Response(200)) == "done"
    with pytest.raises(sendoff.TooManyTransitions):
        txn.result()


# -- end ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["ok", "intercept", "error", "retry", "redirect"])
def test_end_is_emitted_exactly_once_last(make_server, path):
    srv = make_server(
        lambda req: Reply(302, b"", [("Location", "/done")]) if req.path == "/start"
        else Reply(200, b"done")
    )
    client = External("urllib3", timeout=5)
    trace = Trace(client.emitter)
    url = srv.url("/start" if path == "redirect" else "/")
    if path == "intercept":
        client.emitter.on("before", lambda e: e.intercept(Response(204)))
    elif path == "error":
        url = refused_url()
    elif path == "retry":
        client.emitter.on("complete", lambda e: e.retry_count == 0 and e.retry())
    elif path == "redirect":
        client.emitter.attach(Redirect())
    try:
        result = Request(url).client(client).execute()
    except sendoff.ConnectError as exc:
        result = exc
    assert trace.names.count("end") == 1
    assert trace.names[-1] == "end"
    end = trace.events[-1]
    assert isinstance(end, EndEvent)
    if isinstance(result, Response):
        assert end.response is result
        assert end.exception is None
    else:
        assert end.exception is result


def test_end_listener_exception_is_logged_and_raised(server, caplog):
    client = External("urllib3")
    problem = RuntimeError("end listener broke")

    def end(event):
        raise problem

    client.emitter.on("end", end)
    with caplog.at_level(logging.ERROR, logger="sendoff"), pytest.raises(RuntimeError):
        Request(server.url("/")).client(client).execute()
    assert "an 'end' listener raised" in caplog.text


# -- headers, sink and progress (these depend on the backend) ------------------------------------
def test_headers_event_comes_before_the_body(make_server, backend):
    srv = make_server(lambda req: Reply(200, b"x" * 5000, [("X-Kind", "big")]))
    client = External(backend)
    seen: list[tuple] = []

    def on_headers(event):
        assert isinstance(event, HeadersEvent)
        assert not hasattr(event, "intercept")
        seen.append((event.response.status, event.response.headers["x-kind"],
                     event.response.body))

    request = Request(srv.url("/")).client(client)
    request.emitter.on("headers", on_headers)
    resp = request.execute()
    assert seen == [(200, "big", b"")]
    assert resp.body == b"x" * 5000


def test_headers_sink_streams_the_body_to_a_file(make_server, backend, tmp_path):
    payload = bytes(range(256)) * 1000
    srv = make_server(lambda req: Reply(200, payload, chunked=True))
    client = External(backend)
    target = tmp_path / "download.bin"
    with open(target, "wb") as fh:
        def to_file(event):
            event.sink = fh

        client.emitter.on("headers", to_file)
        resp = Request(srv.url("/file")).client(client).execute()
    assert resp.status == 200
    assert resp.body == b""
    assert target.read_bytes() == payload
    assert resp.transfer_info["bytes_received"] == len(payload)


def test_headers_sink_must_be_writable(server):
    client = External("urllib3")

    def bad(event):
        event.sink = object()

    client.emitter.on("headers", bad)
    with pytest.raises(TypeError, match="write"):
        Request(server.url("/")).client(client).execute()


def test_headers_listener_exception_reaches_error_unchanged(server, backend):
    client = External(backend)
    problem = ValueError("unwanted content type")

    def on_headers(event):
        raise problem

    seen: list[BaseException | None] = []
    client.emitter.on("headers", on_headers)
    client.emitter.on("error", lambda e: seen.append(e.exception))
    with pytest.raises(ValueError) as caught:
        Request(server.url("/")).client(client).execute()
    assert caught.value is problem
    assert seen == [problem]


def test_progress_reports_bytes_when_listened_to(make_server, backend):
    payload = b"p" * 300_000
    srv = make_server(lambda req: Reply(200, payload))
    client = External(backend)
    reports: list[tuple] = []

    def on_progress(event):
        assert isinstance(event, ProgressEvent)
        reports.append((event.upload_total, event.uploaded, event.download_total,
                        event.downloaded))

    request = Request(srv.url("/up")).method("POST").body(b"u" * 10).client(client)
    request.emitter.on("progress", on_progress)
    request.execute()
    assert reports, "no progress event"
    downloaded = [r[3] for r in reports]
    assert downloaded == sorted(downloaded)
    assert reports[-1] == (10, 10, len(payload), len(payload))


def test_progress_is_not_emitted_when_nobody_listens(server, backend, monkeypatch):
    calls: list[tuple] = []
    monkeypatch.setattr(Transaction, "progress", lambda self, *a: calls.append(a))
    client = External(backend)
    client.emitter.on("headers", lambda e: None)  # a transaction, but no progress listener
    assert Request(server.url("/")).client(client).execute().status == 200
    assert calls == []


def test_no_listener_means_no_transaction(server):
    passed: list = []

    class Spy(External):
        def transfer(self, request, transaction):
            passed.append(transaction)
            return super().transfer(request, transaction)

    client = Spy("urllib3")
    Request(server.url("/")).client(client).execute()
    client.emitter.on("end", lambda e: None)
    Request(server.url("/")).client(client).execute()
    assert passed[0] is None
    assert isinstance(passed[1], Transaction)


# -- client and request listeners ---------------------------------------------------------------
def test_client_and_request_listeners_run_by_priority_together(server):
    client = External("urllib3")
    calls: list[str] = []
    client.emitter.on("before", lambda e: calls.append("client 10"), 10)
    client.emitter.on("before", lambda e: calls.append("client 0"), 0)
    request = Request(server.url("/")).client(client)
    request.emitter.on("before", lambda e: calls.append("request 20"), 20)
    request.emitter.on("before", lambda e: calls.append("request 5"), 5)
    request.emitter.on("before", lambda e: calls.append("request 0"), 0)
    request.execute()
    assert calls == ["request 20", "client 10", "request 5", "client 0", "request 0"]


def test_request_listeners_apply_to_that_request_only(server):
    client = External("urllib3")
    calls: list[str] = []
    client.emitter.on("complete", lambda e: calls.append(f"client {e.request.uri()}"))
    first = Request(server.url("/one")).client(client)
    first.emitter.on("complete", lambda e: calls.append(f"own {e.request.uri()}"))
    first.execute()
    Request(server.url("/two")).client(client).execute()
    assert calls == [
        f"client {server.url('/one')}", f"own {server.url('/one')}",
        f"client {server.url('/two')}",
    ]


def test_request_listeners_alone_run_the_lifecycle(server):
    client = External("urllib3")
    request = Request(server.url("/")).client(client)
    trace = Trace(request.emitter)
    request.execute()
    assert trace.names == ["before", "complete", "end"]


def test_once_on_a_client_fires_once_per_request(make_server):
    srv = make_server(redirecting)
    client = External("urllib3", follow_redirects=True)
    calls: list[str] = []
    client.emitter.once("before", lambda e: calls.append(e.request.parsed_url.path))
    Request(srv.url("/old")).client(client).execute()  # redirected: before runs twice
    Request(srv.url("/b")).client(client).execute()
    assert calls == ["/old", "/b"]
    assert len(client.emitter.listeners("before")) == 1  # it stays for the next request


def test_once_on_a_request_fires_once_even_when_the_request_is_sent_again(server):
    client = External("urllib3")
    request = Request(server.url("/")).client(client)
    calls: list[int] = []
    request.emitter.once("complete", lambda e: calls.append(e.response.status))
    request.execute()
    request.execute()
    assert calls == [200]
    assert not request.emitter.has_listeners("complete")


# -- redirect via subscriber ---------------------------------------------------------------------
def redirecting(req):
    if req.path == "/old":
        return Reply(301, b"moved", [("Location", "/new?x=1")])
    return Reply(200, f"at {req.target}".encode())


def test_redirect_via_subscriber(make_server):
    srv = make_server(redirecting)
    client = External("urllib3")
    client.emitter.attach(Redirect())
    trace = Trace(client.emitter)
    original = Request(srv.url("/old"))
    resp = original.client(client).execute()
    assert (resp.status, resp.body) == (200, b"at /new?x=1")
    assert [r.target for r in srv.wait_for(2)] == ["/old", "/new?x=1"]
    assert trace.seen == [
        ("before", 0), ("complete", 0), ("before", 1), ("complete", 1), ("end", 1)
    ]
    end = trace.events[-1]
    assert end.transaction.original is original
    assert end.request is not original
    assert end.request.url() == srv.url("/new?x=1")
    assert resp.request is end.request
    assert original.url() == srv.url("/old")  # the caller's request is left as it was


def test_follow_redirects_option_attaches_the_subscriber(make_server):
    srv = make_server(redirecting)
    with External("urllib3", follow_redirects=True) as client:
        assert any(isinstance(getattr(fn, "__self__", None), Redirect)
                   for fn in client.emitter.listeners("complete"))
        assert Request(srv.url("/old")).client(client).execute().status == 200


def test_redirect_limit_raises_too_many_redirects(make_server):
    srv = make_server(lambda req: Reply(302, b"", [("Location", req.path + "x")]))
    client = External("urllib3")
    client.emitter.attach(Redirect(max_redirects=3))
    with pytest.raises(sendoff.TooManyRedirects, match="more than 3 redirects"):
        Request(srv.url("/r")).client(client).execute()
    assert srv.count == 4


def test_redirect_303_switches_to_get_without_body(make_server):
    srv = make_server(
        lambda req: Reply(303, b"", [("Location", "/see")]) if req.path == "/form"
        else Reply(200, req.method.encode())
    )
    client = External("urllib3", follow_redirects=True)
    resp = Request(srv.url("/form")).method("POST").post("a", "b").client(client).execute()
    assert resp.body == b"GET"
    second = srv.wait_for(2)[1]
    assert (second.method, second.body, second.header("content-type")) == ("GET", b"", None)


def test_redirect_to_another_origin_drops_credentials(make_server):
    target = make_server(lambda req: Reply(200, b"target"))
    source = make_server(
        lambda req: Reply(302, b"", [("Location", target.url("/landing", host="localhost"))])
    )
    client = External("urllib3", follow_redirects=True)
    request = (Request(source.url("/start")).client(client)
               .headers("Authorization", "Bearer s3cret").cookie("sid", "abc123"))
    assert request.execute().body == b"target"
    assert source.wait_for(1)[0].header("authorization") == "Bearer s3cret"
    landed = target.wait_for(1)[0]
    assert landed.header("authorization") is None
    assert landed.header("cookie") is None


def test_request_listeners_follow_a_redirect(make_server):
    srv = make_server(redirecting)
    client = External("urllib3", follow_redirects=True)
    request = Request(srv.url("/old")).client(client)
    sent: list[str] = []
    request.emitter.on("before", lambda e: sent.append(e.request.parsed_url.path))
    request.execute()
    assert sent == ["/old", "/new"]


# -- the transaction, driven by hand (as the fire-and-forget engine does) ------------------
def test_transaction_driven_step_by_step(server):
    client = External("urllib3")
    client.emitter.on("complete", lambda e: e.response.status == 200 and e.retry_count == 0
                      and e.retry(0.25))
    txn = Transaction(client, Request(server.url("/")))
    assert txn.start() == "send"
    assert txn.succeeded(Response(200)) == "send"
    assert (txn.retry_count, txn.retry_delay) == (1, 0.25)
    assert txn.failed(sendoff.ConnectError("down")) == "done"
    with pytest.raises(sendoff.ConnectError):
        txn.result()


def test_headers_event_stream_into_bytes_io(make_server):
    srv = make_server(lambda req: Reply(200, b"abc" * 10))
    client = External("urllib3")
    buf = io.BytesIO()
    client.emitter.on("headers", lambda e: setattr(e, "sink", buf))
    Request(srv.url("/")).client(client).execute()
    assert buf.getvalue() == b"abc" * 10


def test_event_types_per_name(server):
    client = External("urllib3")
    kinds: dict[str, type] = {}
    for name in LIFECYCLE:
        client.emitter.on(name, lambda e: kinds.setdefault(e.name, type(e)))
    Request(server.url("/")).client(client).execute()
    with pytest.raises(sendoff.ConnectError):
        Request(refused_url()).client(client).execute()
    assert kinds == {
        "before": BeforeEvent, "headers": HeadersEvent, "complete": CompleteEvent,
        "error": ErrorEvent, "end": EndEvent,
    }
