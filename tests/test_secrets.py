"""Secrets fired through every entry point never come out of any output.

One request carries a URL password, credential-like query values (``api_key``,
``access_key``, ``private_key``, ``code``, ``token``) and credential headers
(``Authorization``, ``X-Api-Key``, a cookie). It goes through the blocking client on
every backend, the fire-and-forget modes, the CLI, the Log subscriber at DEBUG, the
process helper's log, a full queue and an HTTP error; every text those produce (log
records, str and repr of errors and receipts, CLI stdout and stderr, the log file) is
searched for each secret value. Each check also asserts that the output did describe the
request, so that a path that printed nothing cannot pass.
"""

from __future__ import annotations

import logging
import os
import pathlib
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

import sendoff
from sendoff import External, FireAndForget, InvalidRequest, Request
from sendoff.subscribers import Log
from tests.support.process_server import wait_until
from tests.support.recording_server import RecordingServer, Reply, free_port

BACKENDS = ["urllib3", "pycurl", "httpx", "stdlib"]
SENDOFF = str(pathlib.Path(sys.executable).with_name("sendoff"))

SECRETS = {
    "password": "PW-s3cr3t-1",
    "api_key": "QK-api-2",
    "access_key": "QK-acc-3",
    "private_key": "QK-priv-4",
    "code": "QK-code-5",
    "token": "QK-tok-6",
    "bearer": "HV-bearer-8",
    "x-api-key": "HV-apikey-9",
    "cookie": "HV-cookie-10",
    "cookie()": "CK-sid-11",
}
HEADERS = [
    ("Authorization", f"Bearer {SECRETS['bearer']}"),
    ("X-Api-Key", SECRETS["x-api-key"]),
    ("Cookie", f"session={SECRETS['cookie']}"),
]


def secret_url(port: int, path: str = "/hook") -> str:
    s = SECRETS
    return (
        f"http://alice:{s['password']}@127.0.0.1:{port}{path}?api_key={s['api_key']}"
        f"&access_key={s['access_key']}&private_key={s['private_key']}&code={s['code']}"
        f"&token={s['token']}&page=7"
    )


def secret_request(port: int, path: str = "/hook") -> Request[sendoff.Response]:
    request = Request(secret_url(port, path), headers=HEADERS)
    return request.cookie("sid", SECRETS["cookie()"])


def assert_clean(*texts: str, mentions: str = "127.0.0.1") -> None:
    """No secret in any of ``texts``, and together they do describe the request."""
    joined = "\n".join(texts)
    for name, value in SECRETS.items():
        assert value not in joined, f"the {name} secret leaked: {joined}"
    assert mentions in joined, f"{mentions!r} not in: {joined}"


def caplog_text(caplog: pytest.LogCaptureFixture) -> str:
    """Every record as handlers format it, and its fields for structured handlers."""
    lines = [caplog.text]
    for record in caplog.records:
        lines.append(record.getMessage())
        lines.append(repr(getattr(record, "sendoff", "")))
    return "\n".join(lines)


@pytest.mark.parametrize("backend", BACKENDS)
def test_blocking_errors_on_every_backend(backend: str) -> None:
    port = free_port()
    with pytest.raises(sendoff.ConnectError) as info:
        External(backend, timeout=5).execute(secret_request(port))
    error = info.value
    assert_clean(str(error), repr(error), mentions=f"127.0.0.1 port {port}")
    assert "_Connection(" not in str(error)  # our own words, not the backend's reprs
    assert "api_key=[redacted]" in str(error)


def test_http_error_and_the_log_subscriber_at_debug(
    make_server: Callable[..., RecordingServer], caplog: pytest.LogCaptureFixture
) -> None:
    srv = make_server(lambda req: Reply(500, b"no", [("Set-Cookie", "s=HV-setcookie-12")]))
    client = External("urllib3")
    client.emitter.attach(Log())
    with caplog.at_level(logging.DEBUG, logger="sendoff"):
        response = client.execute(secret_request(srv.port))
    with pytest.raises(sendoff.HttpError) as info:
        response.raise_for_status()
    logged = caplog_text(caplog)
    assert_clean(str(info.value), repr(info.value), logged)
    assert "HV-setcookie-12" not in logged
    assert "request headers" in logged
    assert "'X-Api-Key', '[redacted]'" in logged
    assert "'Authorization', '[redacted]'" in logged
    got = srv.wait_for(1)[0]
    assert got.header("x-api-key") == SECRETS["x-api-key"]  # the wire has the real value


def test_the_log_subscriber_scrubs_a_failure(caplog: pytest.LogCaptureFixture) -> None:
    client = External("stdlib", timeout=5)
    client.emitter.attach(Log())
    request = secret_request(free_port())
    with caplog.at_level(logging.DEBUG, logger="sendoff"), pytest.raises(sendoff.ConnectError):
        client.execute(request)
    assert_clean(caplog_text(caplog))
    assert "error=" in caplog.text


@pytest.mark.parametrize("mode", ["background", "inline"])
def test_fire_and_forget_receipts_and_logs(mode: str, caplog: pytest.LogCaptureFixture) -> None:
    client = FireAndForget(mode=mode, timeout=5, retries=0)
    try:
        with caplog.at_level(logging.DEBUG, logger="sendoff"):
            receipt = client.execute(secret_request(free_port()))
            receipt.wait(30)
            client.flush(30)
        assert receipt.error is not None
        assert_clean(repr(receipt), str(receipt.error), repr(receipt.error), receipt.url,
                     caplog_text(caplog))
        assert "failed" in caplog.text
    finally:
        client.close()


def test_fire_and_forget_5xx_answers_are_logged_redacted(
    make_server: Callable[..., RecordingServer], caplog: pytest.LogCaptureFixture
) -> None:
    srv = make_server(lambda req: Reply(503, b"busy"))
    client = FireAndForget(timeout=5)
    try:
        with caplog.at_level(logging.DEBUG, logger="sendoff"):
            receipt = client.execute(secret_request(srv.port, "/answered"))
            assert receipt.wait(30) is not None
            client.flush(30)
        assert_clean(repr(receipt), caplog_text(caplog))
        assert "503" in caplog.text
    finally:
        client.close()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections (the backlog does) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    try:
        yield sock.getsockname()[1]
    finally:
        sock.close()


def fire_all(client: FireAndForget, requests: list[Request[sendoff.Response]]) -> None:
    for request in requests:
        client.execute(request)


def test_queue_full(silent_port: int, caplog: pytest.LogCaptureFixture) -> None:
    client = FireAndForget(timeout=5, max_queue=1, on_full="raise", connections_per_origin=1)
    try:
        requests = [secret_request(silent_port) for _ in range(50)]
        with caplog.at_level(logging.DEBUG, logger="sendoff"), \
                pytest.raises(sendoff.QueueFull) as info:
            fire_all(client, requests)  # one of them finds the queue full
        assert_clean(str(info.value), repr(info.value), caplog_text(caplog))
        assert "queue is full" in str(info.value)
    finally:
        client.close()


@pytest.mark.parametrize(("field", "setter"), [
    ("header 'Authorization'", lambda r: r.headers("Authorization", "Bearer HV-bearer-8\r\nX: 1")),
    ("header 'X-Api-Key'", lambda r: r.headers("X-Api-Key", b"HV-apikey-9\x85")),
    ("header 'X-Api-Key'", lambda r: r.headers().add("X-Api-Key", "HV-apikey-9\x0b")),
    ("cookie 'sid'", lambda r: r.cookie("sid", "CK-sid-11\x7f")),
    ("cookie 'sid'", lambda r: r.cookie("sid", "CK-sid-11; x")),
    ("cookie 'sid'", lambda r: r.cookie("sid", "CK-sid-11 é")),
    ("uri", lambda r: r.uri("http://alice:PW-s3cr3t-1@127.0.0.1/\r\n")),
    ("query 'api_key'", lambda r: r.query("api_key", "QK-api-2\udc80")),
])
def test_invalid_request_names_the_field_and_the_character_never_the_value(field, setter):
    with pytest.raises(InvalidRequest) as info:
        setter(Request("http://127.0.0.1/"))
    assert str(info.value).startswith(f"{field}: contains ")
    assert " at position " in str(info.value)
    assert_clean(str(info.value), repr(info.value), mentions=field)


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SENDOFF, *args], capture_output=True, text=True, timeout=60,
                          env={**os.environ, **(env or {})})


def cli_secret_args(port: int) -> list[str]:
    args = [secret_url(port), "--timeout", "5"]
    for name, value in HEADERS:
        args += ["-H", f"{name}: {value}"]
    return args


def test_cli_request_and_fire_wait_stderr() -> None:
    port = free_port()
    request = cli("request", "GET", *cli_secret_args(port), "--backend", "urllib3")
    fire = cli("fire", "POST", *cli_secret_args(port), "--wait")
    assert (request.returncode, fire.returncode) == (2, 2)
    assert_clean(request.stdout, request.stderr, fire.stdout, fire.stderr,
                 mentions=f"127.0.0.1 port {port}")
    assert "[redacted]" in request.stderr


def test_cli_bad_input_does_not_echo_it() -> None:
    bad = cli("request", "GET", "http://127.0.0.1/",
              "-H", f"Authorization Bearer {SECRETS['bearer']}")
    assert bad.returncode == 2
    assert_clean(bad.stderr, mentions="header")


def test_process_mode_log_file(tmp_path: pathlib.Path) -> None:
    log = tmp_path / "helper.log"
    port = free_port()
    fired = cli("fire", "POST", *cli_secret_args(port), env={"SENDOFF_PROCESS_LOG": str(log)})
    assert (fired.returncode, fired.stdout, fired.stderr) == (0, "", "")
    text = wait_until(
        lambda: log.exists() and "failed" in log.read_text() and log.read_text(),
        what="the helper's failure line",
    )
    assert_clean(text, mentions=f"127.0.0.1:{port}")
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)


def test_process_mode_from_python(tmp_path: pathlib.Path) -> None:
    """The same through FireAndForget(mode="process") in a script."""
    log = tmp_path / "helper.log"
    port = free_port()
    script = (
        "import sys; from sendoff import FireAndForget, Request\n"
        f"r = Request({secret_url(port)!r}, headers={HEADERS!r}).cookie('sid', 'CK-sid-11')\n"
        "c = FireAndForget(mode='process', timeout=5); print(repr(c.execute(r))); c.close()\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "SENDOFF_PROCESS_LOG": str(log)})
    assert done.returncode == 0, done.stderr
    text = wait_until(
        lambda: log.exists() and "failed" in log.read_text() and log.read_text(),
        what="the helper's failure line",
    )
    assert_clean(done.stdout, done.stderr, text, mentions=f"127.0.0.1:{port}")


def test_the_default_policy_covers_the_documented_names() -> None:
    from sendoff import redaction

    for name in ("api_key", "API-Key", "access_key", "private_key", "key", "token", "secret",
                 "password", "signature", "code", "sig", "access_token", "client_secret",
                 "X-Amz-Security-Token", "refresh_token", "passphrase", "session_id"):
        assert redaction.is_secret_name(name), name
    for name in ("page", "q", "monkey", "postcode", "id", "keyword"):
        assert not redaction.is_secret_name(name), name
    for header in ("Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key",
                   "X-Auth-Token", "X-Hub-Signature-256", "webhook-signature", "X-Secret",
                   "Api-Key", "X-Access-Key", "X-Session"):
        assert redaction.is_secret_header(header), header
    for header in ("Content-Type", "X-Request-Id", "Idempotency-Key", "User-Agent", "Accept"):
        assert not redaction.is_secret_header(header), header


def test_add_secret_names_extends_the_policy_everywhere(
    make_server: Callable[..., RecordingServer], caplog: pytest.LogCaptureFixture
) -> None:
    from sendoff import redaction

    srv = make_server(lambda req: Reply(404))
    url = srv.url("/x") + "?shop_hmac=HM-own-13"
    assert "HM-own-13" in redaction.redact_url(url)  # not a secret by default
    redaction.add_secret_names("shop_hmac", "X-Shop-Hmac")
    assert redaction.redact_url(url).endswith("shop_hmac=[redacted]")
    assert redaction.redact_headers([("x-shop-hmac", "v")]) == [("x-shop-hmac", "[redacted]")]
    client = External("urllib3")
    client.emitter.attach(Log())
    with caplog.at_level(logging.DEBUG, logger="sendoff"):
        client.execute(Request(url, headers={"X-Shop-Hmac": "HM-own-14"}))
    assert "HM-own-13" not in caplog.text
    assert "HM-own-14" not in caplog.text
    assert "shop_hmac=[redacted]" in caplog.text
    with pytest.raises(ValueError, match="non-empty"):
        redaction.add_secret_names("")


def test_threads_do_not_see_half_added_names() -> None:
    from sendoff import redaction

    errors: list[BaseException] = []

    def add(i: int) -> None:
        try:
            redaction.add_secret_names(f"thread_secret_{i}")
            assert redaction.is_secret_name(f"thread_secret_{i}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {f"thread_secret_{i}" for i in range(8)} <= redaction.secret_names()
