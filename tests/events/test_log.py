"""The Log subscriber: one structured line per request, never a secret."""

from __future__ import annotations

import logging

import pytest

import sendoff
from sendoff import External, Request, Response
from sendoff.subscribers import HttpError, Log, Mock, Redirect, Retry
from tests.events.helpers import refused_url, statuses
from tests.support.recording_server import Reply

SECRETS = ("Bearer-t0ps3cret", "sessi0nc00kie", "pr0xyp4ss", "urlp4ssw0rd", "jarc00kie",
           "setc00kieval")


def logged(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("sendoff")]


def line_records(caplog) -> list[logging.LogRecord]:
    return [r for r in logged(caplog) if hasattr(r, "sendoff")]


def log_client(*subscribers) -> External:
    client = External("urllib3", timeout=5)
    client.emitter.attach(Log())
    for sub in subscribers:
        client.emitter.attach(sub)
    return client


def secret_request(url: str) -> Request:
    scheme, rest = url.split("://", 1)
    return (Request(f"{scheme}://user:urlp4ssw0rd@{rest}")
            .headers("Authorization", "Bearer Bearer-t0ps3cret")
            .headers("Cookie", "session=sessi0nc00kie")
            .headers("Proxy-Authorization", "Basic pr0xyp4ss")
            .cookie("jar", "jarc00kie"))


def assert_no_secret(caplog) -> None:
    text = caplog.text + "".join(str(getattr(r, "sendoff", "")) for r in caplog.records)
    for secret in SECRETS:
        assert secret not in text, f"{secret} was logged"


def test_one_line_per_request_with_the_fields(server, caplog):
    caplog.set_level(logging.INFO, logger="sendoff")
    Request(server.url("/ok?q=1")).client(log_client()).execute()
    [record] = line_records(caplog)
    assert record.levelno == logging.INFO
    fields = record.sendoff
    assert fields["method"] == "GET"
    assert fields["url"] == server.url("/ok?q=1")
    assert fields["status"] == 200
    assert fields["elapsed_ms"] > 0
    assert (fields["retries"], fields["redirects"]) == (0, 0)
    url = server.url("/ok?q=1")  # logfmt quotes a value with "=" in it
    assert record.getMessage().startswith(f'method=GET url="{url}" status=200 elapsed_ms=')
    assert record.getMessage().endswith(" retries=0 redirects=0")


def test_error_statuses_are_warnings(make_server, caplog):
    caplog.set_level(logging.INFO, logger="sendoff")
    srv = make_server(statuses(404))
    Request(srv.url("/")).client(log_client()).execute()
    [record] = line_records(caplog)
    assert (record.levelno, record.sendoff["status"]) == (logging.WARNING, 404)


def test_failures_are_errors_with_the_reason(caplog):
    caplog.set_level(logging.INFO, logger="sendoff")
    with pytest.raises(sendoff.ConnectError):
        Request(refused_url("/down")).client(log_client()).execute()
    [record] = line_records(caplog)
    assert record.levelno == logging.ERROR
    assert "status" not in record.sendoff
    assert record.sendoff["error"].startswith("ConnectError: GET http://127.0.0.1:")
    assert 'error="ConnectError: GET' in record.getMessage()


def test_retries_and_redirects_are_counted(make_server, caplog, monkeypatch):
    monkeypatch.setattr("sendoff.clients.base.time.sleep", lambda s: None)
    caplog.set_level(logging.INFO, logger="sendoff")
    answers = iter([Reply(503), Reply(302, b"", [("Location", "/final")]), Reply(200)])
    srv = make_server(lambda req: next(answers))
    client = log_client(Retry(), Redirect())
    Request(srv.url("/start")).client(client).execute()
    [record] = line_records(caplog)
    fields = record.sendoff
    assert (fields["retries"], fields["redirects"], fields["status"]) == (1, 1, 200)
    assert fields["url"] == srv.url("/start")
    assert fields["final_url"] == srv.url("/final")


def test_one_line_even_when_end_is_reached_through_intercepts(caplog):
    caplog.set_level(logging.INFO, logger="sendoff")
    Request("http://example.test/").client(log_client(Mock([Response(200)]))).execute()
    assert len(line_records(caplog)) == 1


def test_debug_dumps_headers_redacted(server, caplog):
    caplog.set_level(logging.DEBUG, logger="sendoff")
    secret_request(server.url("/dump")).client(log_client()).execute()
    messages = [r.getMessage() for r in logged(caplog)]
    request_dump = next(m for m in messages if m.startswith("request headers"))
    assert "('Authorization', '[redacted]')" in request_dump
    assert "('Proxy-Authorization', '[redacted]')" in request_dump
    assert "('Cookie', '[redacted]')" in request_dump
    assert "('User-Agent', 'sendoff/0.1.0')" in request_dump
    assert any(m.startswith("response headers") for m in messages)
    assert_no_secret(caplog)
    # the server did get the credentials: they were redacted in the log only
    assert server.wait_for(1)[0].header("authorization") == "Bearer Bearer-t0ps3cret"


def test_never_logs_a_secret_on_success(make_server, caplog):
    caplog.set_level(logging.DEBUG, logger="sendoff")
    srv = make_server(lambda req: Reply(200, b"ok", [("Set-Cookie", "s=setc00kieval")]))
    secret_request(srv.url("/")).client(log_client()).execute()
    assert "user:[redacted]@" in caplog.text
    assert_no_secret(caplog)


def test_never_logs_a_secret_on_http_errors_and_retries(make_server, caplog, monkeypatch):
    monkeypatch.setattr("sendoff.clients.base.time.sleep", lambda s: None)
    caplog.set_level(logging.DEBUG, logger="sendoff")
    srv = make_server(statuses(503, 401))
    client = log_client(Retry(), HttpError())
    with pytest.raises(sendoff.HttpError):
        secret_request(srv.url("/")).client(client).execute()
    assert "HttpError: HTTP 401" in caplog.text
    assert_no_secret(caplog)


def test_never_logs_a_secret_on_transport_errors(caplog):
    caplog.set_level(logging.DEBUG, logger="sendoff")
    with pytest.raises(sendoff.ConnectError):
        secret_request(refused_url()).client(log_client()).execute()
    assert_no_secret(caplog)


def test_scrubs_secrets_quoted_in_an_error_message(server, caplog):
    caplog.set_level(logging.DEBUG, logger="sendoff")
    client = log_client()

    def leaky(event):
        auth = event.request.headers("Authorization")
        raise RuntimeError(f"refused token {auth!r} and cookie {event.request.cookie('jar')}")

    client.emitter.on("before", leaky)
    with pytest.raises(RuntimeError):
        secret_request(server.url("/")).client(client).execute()
    [record] = line_records(caplog)
    assert "refused token" in record.sendoff["error"]
    assert "[redacted]" in record.sendoff["error"]
    assert_no_secret(caplog)


def test_values_with_spaces_or_newlines_cannot_forge_a_line(caplog):
    caplog.set_level(logging.INFO, logger="sendoff")
    client = log_client()

    def forge(event):
        raise ValueError("bad\nmethod=POST status=200")

    client.emitter.on("before", forge)
    with pytest.raises(ValueError):
        Request("http://example.test/").client(client).execute()
    [record] = line_records(caplog)
    assert "\n" not in record.getMessage()
    assert 'error="ValueError: bad\\nmethod=POST status=200"' in record.getMessage()


def test_nothing_is_formatted_when_the_logger_is_quiet(server, caplog):
    caplog.set_level(logging.CRITICAL, logger="sendoff")
    Request(server.url("/")).client(log_client()).execute()
    assert logged(caplog) == []


def test_logs_only_on_sendoff_loggers():
    assert Log(logging.getLogger("sendoff.http")).logger.name == "sendoff.http"
    with pytest.raises(ValueError, match="sendoff"):
        Log(logging.getLogger("myapp"))
