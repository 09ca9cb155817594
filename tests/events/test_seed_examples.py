"""Every example of seed 004 (Guzzle's "Event System" documentation), in sendoff terms.

Each test names the seed section and lines it translates. httpbin.org becomes a real
loopback server with the same routes (/status/N, /stream/N, /basic-auth/user/pass).
"""

from __future__ import annotations

import base64
import hashlib
import io

import pytest

import sendoff
from sendoff import External, Request, Response
from sendoff.events import (
    BeforeEvent,
    CompleteEvent,
    Emitter,
    ErrorEvent,
    HeadersEvent,
    RequestEvents,
    Transaction,
)
from sendoff.subscribers import Cookies, HttpError, Prepare, Redirect
from tests.events.helpers import refused_url
from tests.support.recording_server import Reply


def httpbin(req) -> Reply:
    """The few httpbin.org routes the seed uses."""
    parts = req.path.strip("/").split("/")
    if parts[0] == "status":
        code = int(parts[1])
        headers = [("Location", "/get")] if 300 <= code < 400 else []
        return Reply(code, b"", headers)
    if parts[0] == "stream":
        lines = b"".join(b'{"id": %d}\n' % i for i in range(int(parts[1])))
        return Reply(200, lines, [("Content-Type", "application/json")])
    if parts[0] == "basic-auth":
        expected = "Basic " + base64.b64encode(f"{parts[1]}:{parts[2]}".encode()).decode()
        if req.header("authorization") != expected:
            return Reply(401, b"", [("WWW-Authenticate", 'Basic realm="Fake Realm"')])
        return Reply(200, b'{"authenticated": true}', [("Content-Type", "application/json")])
    return Reply(200, b"{}", [("Content-Type", "application/json")])


@pytest.fixture
def bin(make_server):
    return make_server(httpbin)


@pytest.fixture
def client():
    with External("urllib3", timeout=5) as c:
        yield c


# -- Event Emitters (lines 10-78) --------------------------------------------------------------
def test_getting_an_emitter(client):
    """$emitter = $client->getEmitter(); requests have one too (lines 61-68)."""
    assert isinstance(client.emitter, Emitter)
    assert client.emitter is client.emitter
    request = Request("http://example.test/")
    assert isinstance(request.emitter, Emitter)
    assert request.emitter is not client.emitter


def test_adding_an_event_listener(client, bin, capsys):
    """$emitter->on('before', function (BeforeEvent $event) { echo $event->getRequest(); })
    (lines 89-95)."""

    def listener(event: BeforeEvent) -> None:
        print(event.request)

    client.emitter.on("before", listener)
    Request(bin.url("/get")).client(client).execute()
    assert capsys.readouterr().out == f"<Request GET {bin.url('/get')}>\n"


def test_listener_gets_the_name_and_can_reach_the_emitter(client, bin):
    """The verbose listener receives the event, its name and the emitter (lines 97-112);
    the emitter lets a listener remove itself (lines 303-305)."""
    seen: list[tuple] = []

    def listener(event: BeforeEvent) -> None:
        emitter = event.client.emitter
        seen.append((event.name, event.request.method(), listener in emitter.listeners("before")))
        emitter.off(event.name, listener)

    client.emitter.on("before", listener)
    Request(bin.url("/get")).client(client).execute()
    Request(bin.url("/get")).client(client).execute()
    assert seen == [("before", "GET", True)]


def test_once_happens_once_per_request(client, bin, capsys):
    """$client->getEmitter()->once('before', function () {
    echo 'This will only happen once... per request!'; }) (lines 114-122)."""
    client.emitter.once("before", lambda e: print("This will only happen once... per request!"))
    client.emitter.on("complete", lambda e: e.retry_count == 0 and e.retry())  # before twice
    Request(bin.url("/get")).client(client).execute()
    Request(bin.url("/get")).client(client).execute()
    assert capsys.readouterr().out == "This will only happen once... per request!\n" * 2
    assert bin.count == 4


# -- Event Propagation (lines 124-165) -----------------------------------------------------------
def test_stopping_propagation_of_an_error_event(client):
    """$emitter->on('error', function (ErrorEvent $event) { $event->stopPropagation(); })
    (lines 136-145): listeners after it are not triggered."""
    later: list[str] = []
    client.emitter.on("error", lambda event: event.stop_propagation())
    client.emitter.on("error", lambda event: later.append("not triggered"), -1)
    with pytest.raises(sendoff.ConnectError):
        Request(refused_url()).client(client).execute()
    assert later == []


def test_emit_returns_the_event_to_check_propagation(client, capsys):
    """if ($emitter->emit('error', $errorEvent)->isPropagationStopped()) echo 'It was stopped!';
    (lines 152-159), with an ErrorEvent created by hand."""
    emitter = client.emitter
    emitter.on("error", lambda event: event.stop_propagation())
    error_event = ErrorEvent(Transaction(client, Request("http://example.test/")))
    if emitter.emit("error", error_event).is_propagation_stopped():
        print("It was stopped!")
    assert capsys.readouterr().out == "It was stopped!\n"
    assert Emitter().emit("error", ErrorEvent(error_event.transaction)) \
        .is_propagation_stopped() is False


# -- Event Subscribers (lines 167-219) -----------------------------------------------------------
class SimpleSubscriber:
    """The seed's SimpleSubscriber (lines 192-214)."""

    def __init__(self) -> None:
        self.out: list[str] = []

    def get_events(self) -> dict:
        return {
            # Provide name and optional priority
            "before": ("on_before", 100),
            "complete": ("on_complete",),
            # You can pass a list of listeners with different priorities
            "error": [("before_error", "first"), ("after_error", "last")],
        }

    def on_before(self, event: BeforeEvent) -> None:
        self.out.append("Before!")

    def on_complete(self, event: CompleteEvent) -> None:
        self.out.append("Complete!")

    def before_error(self, event: ErrorEvent) -> None:
        self.out.append("beforeError")

    def after_error(self, event: ErrorEvent) -> None:
        self.out.append("afterError")


def test_simple_subscriber(client, bin):
    sub = SimpleSubscriber()
    client.emitter.on("before", lambda e: sub.out.append("before at 50"), 50)
    client.emitter.on("error", lambda e: sub.out.append("error at 10"), 10)
    client.emitter.on("error", lambda e: sub.out.append("error at -10"), -10)
    client.emitter.attach(sub)
    Request(bin.url("/get")).client(client).execute()
    assert sub.out == ["Before!", "before at 50", "Complete!"]
    sub.out.clear()
    with pytest.raises(sendoff.ConnectError):
        Request(refused_url()).client(client).execute()
    assert sub.out == ["Before!", "before at 50",
                       "beforeError", "error at 10", "error at -10", "afterError"]
    client.emitter.detach(sub)
    assert len(client.emitter.listeners("error")) == 2


# -- Event Priorities (lines 221-292) ------------------------------------------------------------
def test_named_priorities():
    """RequestEvents::EARLY, LATE, PREPARE_REQUEST, SIGN_REQUEST, VERIFY_RESPONSE,
    REDIRECT_RESPONSE (lines 245-280), with Guzzle's values."""
    assert (RequestEvents.EARLY, RequestEvents.LATE) == (10000, -10000)
    assert (RequestEvents.PREPARE_REQUEST, RequestEvents.SIGN_REQUEST) == (-100, -10000)
    assert (RequestEvents.VERIFY_RESPONSE, RequestEvents.REDIRECT_RESPONSE) == (100, 200)


def test_early_and_late(client, bin):
    """EARLY: as early as possible; LATE: as late as possible (lines 245-251)."""
    calls: list[str] = []
    client.emitter.on("complete", lambda e: calls.append("default"))
    client.emitter.on("complete", lambda e: calls.append("late"), RequestEvents.LATE)
    client.emitter.on("complete", lambda e: calls.append("early"), RequestEvents.EARLY)
    Request(bin.url("/get")).client(client).execute()
    assert calls == ["early", "default", "late"]


def test_cookies_of_a_redirect_are_collected_before_it_is_followed(make_server, client):
    """The cookie listener must run before the redirect listener (lines 224-230)."""
    srv = make_server(
        lambda req: Reply(302, b"", [("Location", "/next"), ("Set-Cookie", "seen=1")])
        if req.path == "/first" else Reply(200, (req.header("cookie") or "").encode())
    )
    client.emitter.attach(Redirect())
    client.emitter.attach(Cookies())
    assert Request(srv.url("/first")).client(client).execute().body == b"seen=1"


def test_after_prepare_request_the_request_is_prepared(client, bin):
    """Subscribe below PREPARE_REQUEST to see what Prepare did (lines 253-259)."""
    client.emitter.attach(Prepare())
    seen: list[str | None] = []
    client.emitter.on("before", lambda e: seen.append(e.request.headers("Content-Type")),
                      RequestEvents.PREPARE_REQUEST - 1)
    Request(bin.url("/post")).method("POST").body(b'{"a": 1}').client(client).execute()
    assert seen == ["application/json"]


def test_sign_request_sees_the_final_request(client, bin):
    """A signer at SIGN_REQUEST sees a request that is no longer mutated (lines 261-266)."""
    client.emitter.attach(Prepare())

    def sign(event: BeforeEvent) -> None:
        request = event.request
        text = "\n".join([request.method(), request.url(), request.headers("Content-Length"),
                          request.headers("Content-Type"), request.headers("X-Late")])
        request.headers("X-Signature", hashlib.sha256(text.encode()).hexdigest())

    client.emitter.on("before", lambda e: e.request.headers("X-Late", "1"), 0)
    client.emitter.on("before", sign, RequestEvents.SIGN_REQUEST)
    Request(bin.url("/post")).method("PUT").body(b"data").client(client).execute()
    got = bin.wait_for(1)[0]
    text = "\n".join(["PUT", bin.url("/post"), "4", "text/plain; charset=utf-8", "1"])
    assert got.header("x-signature") == hashlib.sha256(text.encode()).hexdigest()


def test_verify_response_is_where_http_error_raises(client, bin):
    """HttpError checks 4xx/5xx at VERIFY_RESPONSE; add one to run before it
    (lines 268-285)."""
    client.emitter.attach(HttpError())
    client.emitter.on(
        "complete",
        lambda e: e.response.status == 404 and e.intercept(Response(200)),
        RequestEvents.VERIFY_RESPONSE + 1,
    )
    assert Request(bin.url("/status/404")).client(client).execute().status == 200
    with pytest.raises(sendoff.HttpError):
        Request(bin.url("/status/500")).client(client).execute()


def test_redirect_response_is_where_redirects_happen(client, bin):
    """Redirect runs at REDIRECT_RESPONSE (lines 276-280): a listener above it sees the 302."""
    client.emitter.attach(Redirect())
    seen: list[int] = []
    client.emitter.on("complete", lambda e: seen.append(e.response.status),
                      RequestEvents.REDIRECT_RESPONSE + 1)
    assert Request(bin.url("/status/302")).client(client).execute().status == 200
    assert seen == [302, 200]


def test_first_is_not_readjusted(client, bin):
    """A listener added as "first" is passed by a later, higher one (lines 287-292)."""
    calls: list[str] = []
    client.emitter.on("before", lambda e: calls.append("first"), "first")
    client.emitter.on("before", lambda e: calls.append("higher"), 10)
    Request(bin.url("/get")).client(client).execute()
    assert calls == ["higher", "first"]


# -- Working With Request Events (lines 294-305) -------------------------------------------------
def test_lifecycle_events_may_fire_several_times(client, bin):
    """Redirects, retries and reusing a request trigger events again; once() does not
    (lines 299-305)."""
    client.emitter.attach(Redirect())
    request = Request(bin.url("/status/301")).client(client)
    every: list[int] = []
    once: list[int] = []
    request.emitter.on("before", lambda e: every.append(e.retry_count))
    request.emitter.once("before", lambda e: once.append(e.retry_count))
    request.execute()
    request.execute()
    assert every == [0, 1, 0, 1]
    assert once == [0]


# -- before (lines 309-361) ----------------------------------------------------------------------
def test_before_event(client, bin, capsys):
    """$request->getEmitter()->on('before', ...) prints the name, the method and the client's
    class (lines 315-333)."""
    request = Request(bin.url("/")).client(client)

    def listener(e: BeforeEvent) -> None:
        print(e.name)
        print(e.request.method())
        print(type(e.client).__name__)

    request.emitter.on("before", listener)
    request.execute()
    assert capsys.readouterr().out == "before\nGET\nExternal\n"


def test_intercepting_the_before_event(client, bin):
    """$e->intercept(new Response(200)) on GET /status/500 gives 200 and sends nothing
    (lines 335-356)."""
    request = Request(bin.url("/status/500")).client(client)
    later: list[str] = []
    request.emitter.on("before", lambda e: e.intercept(Response(200)))
    request.emitter.on("before", lambda e: later.append("not invoked"), -1)
    response = client.send(request)
    assert response.status == 200
    assert later == []
    assert bin.count == 0


def test_an_exception_in_before_triggers_error(client, bin):
    """Any exception encountered while executing before triggers error (lines 358-361)."""
    problem = PermissionError("not allowed")
    errors: list[BaseException | None] = []

    def before(e: BeforeEvent) -> None:
        raise problem

    client.emitter.on("before", before)
    client.emitter.on("error", lambda e: errors.append(e.exception))
    with pytest.raises(PermissionError):
        Request(bin.url("/get")).client(client).execute()
    assert errors == [problem]


# -- headers (lines 365-404) ---------------------------------------------------------------------
class MyCustomStreamDecorator:
    """Wraps a body sink: counts and hashes what passes through."""

    def __init__(self, inner: io.BytesIO) -> None:
        self.inner = inner
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        return self.inner.write(data)


def test_headers_event_wraps_the_body(make_server, backend, capsys):
    """On GET /stream/100, print the head and wrap the body when Content-Length or
    Content-Encoding is present (lines 378-396)."""
    srv = make_server(httpbin)
    client = External(backend)
    request = Request(srv.url("/stream/100")).client(client)
    decorators: list[MyCustomStreamDecorator] = []

    def on_headers(e: HeadersEvent) -> None:
        print(e.response)  # the response head
        if e.response.headers.get("Content-Length") or e.response.headers.get(
            "Content-Encoding"
        ):
            decorator = MyCustomStreamDecorator(io.BytesIO())
            decorators.append(decorator)
            e.sink = decorator

    request.emitter.on("headers", on_headers)
    response = request.execute()
    expected = b"".join(b'{"id": %d}\n' % i for i in range(100))
    assert capsys.readouterr().out == "<Response [200 OK]>\n"
    [decorator] = decorators
    assert decorator.inner.getvalue() == expected
    assert decorator.digest.hexdigest() == hashlib.sha256(expected).hexdigest()
    assert response.body == b""  # the body went to the decorator


def test_headers_event_cannot_be_intercepted():
    """This event cannot be intercepted (line 376)."""
    assert not hasattr(HeadersEvent, "intercept")
    assert not hasattr(HeadersEvent, "retry")


# -- complete (lines 408-445) --------------------------------------------------------------------
def test_intercepting_complete_with_a_cached_response(client, bin):
    """GET /status/302 intercepted with a cached 200 (lines 418-440)."""
    request = Request(bin.url("/status/302")).client(client)
    cached_response = Response(200)

    def on_complete(e: CompleteEvent) -> None:
        if e.response.status == 302:
            # Intercept the original transaction with the new response
            e.intercept(cached_response)

    request.emitter.on("complete", on_complete)
    response = client.send(request)
    assert response.status == 200
    assert response is cached_response


def test_an_exception_in_complete_triggers_error(client, bin):
    """A RequestException raised in complete triggers error (lines 442-445)."""
    client.emitter.attach(HttpError())
    errors: list[str] = []
    client.emitter.on("error", lambda e: errors.append(type(e.exception).__name__))
    with pytest.raises(sendoff.HttpError):
        Request(bin.url("/status/503")).client(client).execute()
    assert errors == ["HttpError"]


# -- error (lines 449-482) -----------------------------------------------------------------------
def test_retrying_failed_basic_auth_from_the_error_event(client, bin):
    """On a 401, set Authorization, send the request again with the event's client and
    intercept with the new response (lines 456-476)."""
    client.emitter.attach(HttpError())  # Guzzle raises for 4xx by default
    request = Request(bin.url("/basic-auth/foo/bar")).client(client)

    def on_error(e: ErrorEvent) -> None:
        if e.response is not None and e.response.status == 401:
            # Add authentication stuff as needed and retry the request
            e.request.headers("Authorization", "Basic " + base64.b64encode(b"foo:bar").decode())
            # Get the client of the event and retry the request
            new_response = e.client.send(e.request)
            # Intercept the original transaction with the new response
            e.intercept(new_response)

    request.emitter.on("error", on_error)
    response = request.execute()
    assert response.status == 200
    assert response.json() == {"authenticated": True}
    first, second = bin.wait_for(2)
    assert first.header("authorization") is None
    assert second.header("authorization") == "Basic Zm9vOmJhcg=="


def test_intercepted_error_triggers_complete_and_a_failing_complete_errors_again(client):
    """If error is intercepted, complete is triggered; if complete fails, error is triggered
    once again (lines 478-482)."""
    trail: list[str] = []

    def on_error(e: ErrorEvent) -> None:
        trail.append(f"error: {type(e.exception).__name__}")
        if isinstance(e.exception, sendoff.ConnectError):
            e.intercept(Response(500))

    client.emitter.on("error", on_error)
    client.emitter.on("complete", lambda e: trail.append(f"complete: {e.response.status}"),
                      RequestEvents.EARLY)
    client.emitter.attach(HttpError())
    with pytest.raises(sendoff.HttpError):
        Request(refused_url()).client(client).execute()
    assert trail == ["error: ConnectError", "complete: 500", "error: HttpError"]
