"""Network failures are logged, counted and put on the receipt; keep-alive closes lose nothing."""

from __future__ import annotations

import logging
from collections import Counter

import pytest

import sendoff
from sendoff import FireAndForget, Request
from tests.delivery.conftest import origin_stats
from tests.support.recording_server import Reply, free_port


def _failures(caplog):
    return [r for r in caplog.records if r.name == "sendoff" and "failed" in r.getMessage()]


def test_refused_port(client, caplog):
    url = f"http://127.0.0.1:{free_port()}/hook"
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("POST", url, data={"a": "1"})
        assert receipt.wait(5) is None
    assert isinstance(receipt.error, sendoff.ConnectError)
    assert "refused" in str(receipt.error).lower()
    [line] = _failures(caplog)
    assert line.getMessage().startswith(f"POST {url} failed: ")
    counters = origin_stats(url)
    assert (counters["failed"], counters["delivered"], counters["retried"]) == (1, 0, 0)


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_credential_query_values_stay_out_of_logs_and_errors(mode, caplog):
    url = f"http://127.0.0.1:{free_port()}/hook"
    client = FireAndForget(timeout=5.0, retries=0, mode=mode)
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("GET", url, params={"api_key": "s3cr3t-k3y", "page": "2"})
        receipt.wait(5)
    assert isinstance(receipt.error, sendoff.ConnectError)
    [line] = _failures(caplog)
    for shown in (line.getMessage(), str(receipt.error), repr(receipt), receipt.url):
        assert "s3cr3t-k3y" not in shown
        assert "api_key=[redacted]&page=2" in shown
    assert receipt.request.query("api_key") == "s3cr3t-k3y"  # the request itself is whole


def test_refused_port_is_retried_before_it_fails(caplog):
    url = f"http://127.0.0.1:{free_port()}/"
    client = FireAndForget(retries=1)
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("GET", url)
        assert receipt.wait(10) is None
    assert isinstance(receipt.error, sendoff.ConnectError)
    assert len(_failures(caplog)) == 1
    assert (origin_stats(url)["retried"], origin_stats(url)["failed"]) == (1, 1)


def test_slow_server_past_the_timeout(make_server, caplog):
    srv = make_server(lambda req: Reply(200, b"too late", delay=3.0))
    client = FireAndForget(timeout=0.3, retries=0)
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("GET", srv.url("/slow"))
        assert receipt.wait(5) is None
    assert isinstance(receipt.error, sendoff.TimeoutError)
    assert "timed out waiting for the response" in str(receipt.error)
    [line] = _failures(caplog)
    assert srv.url("/slow") in line.getMessage()
    assert origin_stats(srv.url())["failed"] == 1
    assert srv.count == 1  # it was sent once and not again


def test_per_request_timeout_overrides_the_client(make_server, client):
    srv = make_server(lambda req: Reply(200, b"late", delay=2.0))
    receipt = Request(srv.url("/")).timeout(0.2).client(client).execute()
    assert receipt.wait(5) is None
    assert isinstance(receipt.error, sendoff.TimeoutError)


def test_bad_certificate(make_server, untrusted_tls, ca_bundle, caplog):
    srv = make_server(tls=untrusted_tls)
    client = FireAndForget(ca_bundle=ca_bundle, retries=3)
    url = srv.url("/", host="localhost")
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("GET", url)
        assert receipt.wait(5) is None
    assert isinstance(receipt.error, sendoff.TLSError)
    assert "certificate" in str(receipt.error).lower()
    assert len(_failures(caplog)) == 1
    counters = origin_stats(url)
    assert (counters["failed"], counters["retried"]) == (1, 0)  # never retried: it is permanent
    assert srv.count == 0


def test_credentials_never_reach_the_log(client, caplog):
    url = f"http://user:secret@127.0.0.1:{free_port()}/x"
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("GET", url)
        receipt.wait(5)
    assert receipt.error is not None
    assert "secret" not in caplog.text
    assert "secret" not in str(receipt.error)


def test_unresolvable_host(client, caplog):
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("GET", "http://no-such-host.invalid/")
        assert receipt.wait(30) is None
    assert isinstance(receipt.error, sendoff.ConnectError)
    assert len(_failures(caplog)) == 1


@pytest.mark.parametrize("announce", [True, False], ids=["connection-close", "silent-close"])
def test_keep_alive_closed_every_7_requests_loses_nothing(make_server, announce):
    srv = make_server(close_after=7, announce_close=announce)
    client = FireAndForget(connections_per_origin=4, retries=0)
    receipts = [client.fire("GET", srv.url(f"/k/{i}")) for i in range(1000)]
    assert client.flush(30)
    assert [r.error for r in receipts if r.error] == []
    assert all(r.response.status == 200 for r in receipts)
    counts = Counter(rec.path for rec in srv.received)
    assert len(counts) == 1000
    assert max(counts.values()) == 1  # none sent twice
    assert srv.connections >= 1000 // 7


def test_nothing_is_pipelined_behind_an_answer_that_announces_the_close(make_server):
    srv = make_server(close_after=5)
    client = FireAndForget(connections_per_origin=1, pipeline=4, retries=0)
    receipts = [client.fire("GET", srv.url(f"/q/{i}")) for i in range(50)]
    assert client.flush(30)
    assert all(r.response is not None for r in receipts), [r.error for r in receipts]
    counts = Counter(rec.path for rec in srv.received)
    assert counts == Counter({f"/q/{i}": 1 for i in range(50)})
    # a request goes behind another only once that one's head has said the connection
    # stays open: the fifth answer said it closes, so nothing was behind it to resend
    counters = origin_stats(srv.url())
    assert (counters["delivered"], counters["retried"]) == (50, 0)


def test_pipelined_requests_behind_a_silent_close_are_resent_once(make_server):
    srv = make_server(lambda req: Reply(200, req.path), close_after=5, announce_close=False)
    client = FireAndForget(connections_per_origin=1, pipeline=4, retries=0)
    receipts = [client.fire("GET", srv.url(f"/q/{i}")) for i in range(50)]
    assert client.flush(30)
    assert all(r.response is not None for r in receipts), [r.error for r in receipts]
    assert [r.response.text for r in receipts] == [f"/q/{i}" for i in range(50)]
    counts = Counter(rec.path for rec in srv.received)
    assert set(counts) == {f"/q/{i}" for i in range(50)}
    # the fifth answer said "keep-alive" and the server closed anyway: the request behind
    # it was sent again, once (the server may have read it before closing, never more)
    assert max(counts.values()) <= 2
    counters = origin_stats(srv.url())
    assert counters["delivered"] == 50
    assert counters["retried"] >= sum(1 for n in counts.values() if n == 2)
    assert counters["retried"] > 0


def test_server_dropping_a_fresh_connection_fails_without_resending(make_server, client, caplog):
    srv = make_server(lambda req: Reply(drop=True))
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = client.fire("POST", srv.url("/once"), data={"a": "1"})
        assert receipt.wait(5) is None
    assert isinstance(receipt.error, sendoff.ProtocolError)
    assert srv.count == 1
