"""Shared fixtures: real HTTP and HTTPS servers on loopback, certificates from trustme."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator

import pytest
import trustme

from sendoff.delivery.logwindow import BURST
from tests.support.recording_server import RecordingServer, Reply, default_handler

BACKENDS = ["urllib3", "pycurl", "httpx", "stdlib"]


@pytest.fixture(autouse=True)
def _fresh_log_burst() -> None:
    """Each test starts a window of its own: the process-wide cap on warning lines
    (BURST_LINES per window, every origin together) must not carry one test's lines
    into the next one's."""
    BURST.clear()


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def ca_bundle(ca: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("ca") / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


def _server_context(ca: trustme.CA, *names: str) -> ssl.SSLContext:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    return ctx


@pytest.fixture(scope="session")
def server_tls(ca: trustme.CA) -> ssl.SSLContext:
    """A server context whose certificate the ``ca_bundle`` trusts."""
    return _server_context(ca, "localhost", "127.0.0.1", "::1")


@pytest.fixture(scope="session")
def untrusted_tls() -> ssl.SSLContext:
    """A server context signed by a CA nobody trusts."""
    return _server_context(trustme.CA(), "localhost", "127.0.0.1")


@pytest.fixture
def make_server() -> Iterator[Callable[..., RecordingServer]]:
    """``make_server(handler=..., tls=ctx, close_after=n, announce_close=..., host=...)``;
    stopped at teardown."""
    started: list[RecordingServer] = []

    def make(
        handler: Callable[..., Reply] = default_handler,
        *,
        tls: ssl.SSLContext | None = None,
        close_after: int | None = None,
        announce_close: bool = True,
        host: str = "127.0.0.1",
    ) -> RecordingServer:
        srv = RecordingServer(
            handler, ssl_context=tls, close_after=close_after, announce_close=announce_close,
            host=host,
        )
        srv.start()
        started.append(srv)
        return srv

    yield make
    for srv in started:
        srv.stop()


@pytest.fixture
def server(make_server: Callable[..., RecordingServer]) -> RecordingServer:
    return make_server()


@pytest.fixture
def tls_server(
    make_server: Callable[..., RecordingServer], server_tls: ssl.SSLContext
) -> RecordingServer:
    return make_server(tls=server_tls)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)
