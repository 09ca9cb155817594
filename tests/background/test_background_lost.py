"""Tasks that must not run, or cannot finish, on real servers: a response that never
reached its client (reset before or in the middle of it) drops its tasks, logged by name;
a worker told to stop logs the tasks still running, by name, before the server kills it.

gunicorn sync and gthread, and uvicorn, as subprocesses on 127.0.0.1. No test sleeps: the
handler writes ``held-<id>`` once its task is queued and waits for ``go-<id>``, which the
test creates only after it has reset the connection.
"""

from __future__ import annotations

import signal
import socket
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.background.servers import Served, new_id, start
from tests.support.process_server import wait_until

SERVERS = ["gunicorn-sync-1", "gunicorn-gthread", "uvicorn"]
APPS = {"gunicorn-sync-1": "plain_wsgi:application",
        "gunicorn-gthread": "plain_wsgi:application", "uvicorn": "plain_asgi:application"}


@pytest.fixture(scope="module", params=SERVERS)
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    files = tmp_path_factory.mktemp(request.param)
    server = start(request.param, APPS[request.param], files)
    try:
        yield Served(server, files)
    finally:
        server.stop()


def reset(sock: socket.socket) -> None:
    """Close with an RST, as a client that crashed or gave up does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def send_get(served: Served, path: str) -> socket.socket:
    sock = socket.create_connection((served.server.host, served.server.port), timeout=15)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: test\r\n\r\n".encode())
    return sock


def read_until(sock: socket.socket, marker: bytes) -> bytes:
    data = b""
    while marker not in data:
        chunk = sock.recv(65536)
        assert chunk, f"closed before {marker!r}: {data!r}"
        data += chunk
    return data


def assert_dropped(served: Served, rid: str, path: str) -> None:
    line = f"background tasks of GET {path} not run ("
    output = served.server.wait_for_output(line)
    logged = next(text for text in output.splitlines() if line in text)
    assert logged.endswith("): common.touch"), logged
    # the scope is closed once logged: the task can no longer run
    assert not served.path(f"ran-{rid}").exists()


def test_a_reset_before_the_response_drops_its_tasks(served: Served) -> None:
    rid = new_id()
    sock = send_get(served, f"/hold?id={rid}")
    served.wait_file(f"held-{rid}")  # the task is queued; the handler waits for go-<id>
    reset(sock)
    served.path(f"go-{rid}").touch()
    assert_dropped(served, rid, "/hold")


def test_a_reset_in_the_middle_of_the_response_drops_its_tasks(served: Served) -> None:
    rid = new_id()
    sock = send_get(served, f"/stream?id={rid}")
    head = read_until(sock, b"first part")
    assert head.startswith(b"HTTP/1.1 200 ")
    reset(sock)
    served.path(f"go-{rid}").touch()
    assert_dropped(served, rid, "/stream")


def test_a_client_that_stays_gets_its_tasks_run(served: Served) -> None:
    """The same endpoints, with a client that reads everything: the tasks run."""
    rid = new_id()
    sock = send_get(served, f"/stream?id={rid}")
    read_until(sock, b"first part")
    served.path(f"go-{rid}").touch()
    read_until(sock, b"second part")
    sock.close()
    served.wait_file(f"ran-{rid}")


def test_add_outside_any_request_raises_in_a_serving_process(served: Served) -> None:
    """A thread the handler started has no request context: add() says so, and how to
    fix it, instead of queuing the task where nothing would ever run it."""
    for _ in range(2):  # the second request finds nothing left over from the first
        rid = new_id()
        assert served.request(f"/thread?id={rid}") == (200, b"threaded")
        message = served.wait_file(f"thread-{rid}")
        assert message.startswith("background.add(common.touch) outside any request, in a"
                                  " process that serves requests")
        assert "BackgroundMiddleware" in message
        assert "background.run()" in message
        assert not served.path(f"ran-{rid}").exists()


# -- a worker that stops while its tasks run ------------------------------------------------
@pytest.fixture(params=SERVERS)
def fresh(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Served]:
    """A server of one's own: these tests stop it."""
    server = start(request.param, APPS[request.param], tmp_path)
    try:
        yield Served(server, tmp_path)
    finally:
        server.stop()


def start_lingering_task(served: Served) -> str:
    rid = new_id()
    assert served.request(f"/linger?id={rid}") == (200, b"lingering")
    served.wait_file(f"lingering-{rid}")  # the task runs, and waits for release-<id>
    return rid


STOPPING = "SIGTERM: this process is stopping while background tasks run"


def test_tasks_killed_by_the_shutdown_are_named_first(fresh: Served) -> None:
    rid = start_lingering_task(fresh)
    fresh.server.stop()  # SIGTERM; gunicorn kills the worker 3 s later, uvicorn cancels
    output = fresh.output()
    warning = next((line for line in output.splitlines() if STOPPING in line), output)
    assert warning.endswith(("GET /linger: common.linger (running)",
                             "GET /linger: common.linger_async (running)")), warning
    assert not fresh.path(f"done-{rid}").exists()
    # killed (gunicorn: SIGKILL; uvicorn: cancelled, then its own re-raised SIGTERM):
    # no line says the tasks ended, so the warning above is their record
    assert "background tasks of GET /linger ended after SIGTERM" not in output


def test_tasks_that_finish_during_the_shutdown_say_so(fresh: Served) -> None:
    rid = start_lingering_task(fresh)
    assert fresh.server.proc is not None
    fresh.server.proc.send_signal(signal.SIGTERM)
    fresh.server.wait_for_output(STOPPING)
    fresh.release(rid)
    assert fresh.wait_file(f"done-{rid}") == rid
    fresh.server.wait_for_output("background tasks of GET /linger ended after SIGTERM")
    wait_until(lambda: fresh.server.proc is not None and fresh.server.proc.poll() is not None,
               what="the server to exit")
