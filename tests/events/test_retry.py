"""The Retry subscriber: backoff with jitter, Retry-After, max, and what is retried."""

from __future__ import annotations

import email.utils

import pytest

import sendoff
from sendoff import External, Request, Response
from sendoff.subscribers import HttpError, Mock, Retry
from sendoff.subscribers.retry import retry_after
from tests.events.helpers import refused_url, statuses
from tests.support.recording_server import Reply


@pytest.fixture
def slept(monkeypatch) -> list[float]:
    """The delays the client waited before re-sending (without waiting them)."""
    delays: list[float] = []
    monkeypatch.setattr("sendoff.clients.base.time.sleep", delays.append)
    return delays


def retrying(retry: Retry | None = None) -> External:
    client = External("urllib3", timeout=5)
    client.emitter.attach(retry or Retry(random_factor=lambda: 1.0))
    return client


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_status_then_200(make_server, slept, status):
    srv = make_server(statuses(status, 200))
    resp = Request(srv.url("/")).client(retrying()).execute()
    assert resp.status == 200
    assert srv.count == 2
    assert len(slept) == 1


@pytest.mark.parametrize("status", [200, 400, 404, 500, 501])
def test_other_statuses_are_not_retried(make_server, slept, status):
    srv = make_server(statuses(status, 200))
    assert Request(srv.url("/")).client(retrying()).execute().status == status
    assert srv.count == 1
    assert slept == []


def test_honours_retry_after_seconds(make_server, slept):
    srv = make_server(statuses(503, 200, headers=[("Retry-After", "7")]))
    delays: list[float] = []
    client = retrying()
    client.emitter.on("before", lambda e: delays.append(e.transaction.retry_delay))
    assert Request(srv.url("/")).client(client).execute().status == 200
    assert delays == [0.0, 7.0]
    assert slept == [7.0]


def test_honours_retry_after_http_date(make_server, slept):
    now = 1_700_000_000.0
    date = email.utils.formatdate(now + 12, usegmt=True)
    srv = make_server(statuses(429, 200, headers=[("Retry-After", date)]))
    client = retrying(Retry(clock=lambda: now))
    assert Request(srv.url("/")).client(client).execute().status == 200
    assert slept == [12.0]


def test_retry_after_in_the_past_retries_at_once(make_server, slept):
    srv = make_server(statuses(503, 200, headers=[("Retry-After",
                                                   "Wed, 21 Oct 2015 07:28:00 GMT")]))
    assert Request(srv.url("/")).client(retrying()).execute().status == 200
    assert slept == []  # a zero delay is not slept


def test_retry_after_longer_than_max_wait_is_not_waited_for(make_server, slept):
    srv = make_server(statuses(503, 200, headers=[("Retry-After", "3600")]))
    resp = Request(srv.url("/")).client(retrying(Retry(max_wait=60))).execute()
    assert resp.status == 503
    assert srv.count == 1
    assert slept == []


def test_unreadable_retry_after_falls_back_to_backoff(make_server, slept):
    srv = make_server(statuses(503, 200, headers=[("Retry-After", "soon")]))
    client = retrying(Retry(base=0.5, random_factor=lambda: 1.0))
    assert Request(srv.url("/")).client(client).execute().status == 200
    assert slept == [0.5]


def test_exponential_backoff_capped_with_jitter(make_server, slept):
    srv = make_server(statuses(503, 503, 503, 503, 503, 200))
    factors = iter([1.0, 0.0, 1.0, 0.5, 1.0])
    client = retrying(Retry(max=5, base=1.0, cap=6.0, random_factor=lambda: next(factors)))
    assert Request(srv.url("/")).client(client).execute().status == 200
    # min(cap, base * 2**n) scaled by 0.5 + factor / 2
    assert slept == [1.0, 1.0, 4.0, 4.5, 6.0]


def test_gives_up_after_max_retries(make_server, slept):
    srv = make_server(statuses(503))
    resp = Request(srv.url("/")).client(retrying(Retry(max=3))).execute()
    assert resp.status == 503
    assert srv.count == 4
    assert len(slept) == 3


def test_counts_its_retries_in_the_transaction_meta(make_server, slept):
    srv = make_server(statuses(503, 502, 200))
    client = retrying()
    seen: list[tuple[int, int]] = []
    client.emitter.on("end", lambda e: seen.append((e.transaction.meta["retries"],
                                                    e.retry_count)))
    Request(srv.url("/")).client(client).execute()
    assert seen == [(2, 2)]


def test_redirects_do_not_use_up_retries(make_server, slept):
    answers = iter([Reply(302, b"", [("Location", "/b")]), Reply(503), Reply(200)])
    srv = make_server(lambda req: next(answers))
    client = External("urllib3", follow_redirects=True)
    client.emitter.attach(Retry(max=1, random_factor=lambda: 1.0))
    # the redirect made retry_count 1, but Retry has used none of its own retries yet
    assert Request(srv.url("/a")).client(client).execute().status == 200
    assert [r.path for r in srv.wait_for(3)] == ["/a", "/b", "/b"]


def test_connect_errors_are_retried(make_server, slept):
    srv = make_server()
    client = retrying()
    request = Request(refused_url("/x")).client(client)
    # the first try is refused; then the request points at the live server
    request.emitter.once("error", lambda e: e.request.uri(srv.url("/x")), 1_000_000)
    assert request.execute().status == 200
    assert len(slept) == 1


def test_persistent_connect_errors_raise_after_max(slept):
    attempts: list[int] = []
    client = retrying(Retry(max=2))
    client.emitter.on("before", lambda e: attempts.append(e.retry_count))
    with pytest.raises(sendoff.ConnectError):
        Request(refused_url()).client(client).execute()
    assert attempts == [0, 1, 2]


def test_tls_errors_are_not_retried(make_server, untrusted_tls, ca_bundle, slept):
    srv = make_server(tls=untrusted_tls)
    client = External("urllib3", ca_bundle=ca_bundle)
    client.emitter.attach(Retry())
    with pytest.raises(sendoff.TLSError):
        Request(srv.url("/", host="localhost")).client(client).execute()
    assert slept == []


def test_timeouts_are_not_retried_by_default(make_server, slept):
    srv = make_server(lambda req: Reply(200, delay=2))
    client = External("urllib3", timeout=0.2)
    client.emitter.attach(Retry())
    with pytest.raises(sendoff.TimeoutError):
        Request(srv.url("/")).client(client).execute()
    assert srv.count == 1


def test_retries_an_http_error_raised_by_the_http_error_subscriber(slept):
    client = External("urllib3")
    client.emitter.attach(Mock([Response(503), Response(200)]))
    client.emitter.attach(HttpError())
    client.emitter.attach(Retry(random_factor=lambda: 1.0))
    assert Request("http://example.invalid/").client(client).execute().status == 200


def test_runs_before_http_error(make_server, slept):
    srv = make_server(statuses(503, 503))
    client = External("urllib3")
    client.emitter.attach(HttpError())
    client.emitter.attach(Retry(max=1, random_factor=lambda: 1.0))
    with pytest.raises(sendoff.HttpError):
        Request(srv.url("/")).client(client).execute()
    assert srv.count == 2  # retried once, then the second 503 raised


def test_custom_statuses_and_exceptions():
    client = External("urllib3")
    client.emitter.attach(Mock([sendoff.TimeoutError("slow"), Response(500), Response(200)]))
    client.emitter.attach(Retry(statuses={500}, exceptions=(sendoff.TimeoutError,)))
    tries: list[int] = []
    client.emitter.on("before", lambda e: tries.append(e.retry_count))
    assert Request("http://example.invalid/").client(client).execute().status == 200
    assert tries == [0, 1, 2]


def test_mocked_retries_are_not_slept(slept):
    # a delay is waited before a transfer; a Mock answers without one, so tests stay fast
    client = External("urllib3")
    client.emitter.attach(Mock([Response(503), Response(200)]))
    client.emitter.attach(Retry())
    delays: list[float] = []
    client.emitter.on("before", lambda e: delays.append(e.transaction.retry_delay))
    assert Request("http://example.invalid/").client(client).execute().status == 200
    assert delays[0] == 0.0
    assert 0.25 <= delays[1] <= 0.5
    assert slept == []


def test_max_must_not_be_negative():
    with pytest.raises(ValueError, match="max"):
        Retry(max=-1)


@pytest.mark.parametrize(("value", "expected"), [
    ("120", 120.0), (" 0 ", 0.0), ("", None), ("-5", None), ("1.5", None), ("later", None),
    ("Tue, 14 Nov 2023 22:13:30 GMT", 10.0),
    ("Tue, 14 Nov 2023 22:13:00 GMT", 0.0),
])
def test_retry_after_parsing(value, expected):
    now = 1_700_000_000.0  # Tue, 14 Nov 2023 22:13:20 GMT
    assert retry_after(value, now) == expected
