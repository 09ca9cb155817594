"""No loss at exit or fork: real subprocesses and a real os.fork()."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import types
from collections import Counter

import pytest

from sendoff import FireAndForget
from sendoff.delivery import engine as engine_module
from sendoff.delivery.engine import ForkedAway
from tests.support.recording_server import Reply


def _run(code: str, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        capture_output=True, text=True, timeout=timeout, check=False,
    )


def test_a_script_that_fires_5000_and_exits_delivers_all(server):
    done = _run(
        """
        import sys
        import sendoff
        sendoff.set_default_client(sendoff.FireAndForget(exit_timeout=60))
        for i in range(5000):
            sendoff.fire("GET", sys.argv[1] + str(i))
        """,
        server.url("/exit/"),
    )
    assert done.returncode == 0, done.stderr
    got = server.wait_for(5000, timeout=30)
    assert len(got) == 5000
    assert len({r.path for r in got}) == 5000
    assert "undelivered" not in done.stderr


def test_exit_reports_what_it_abandons(make_server):
    release = threading.Event()
    srv = make_server(lambda req: Reply(200, b"ok", hold=release))
    try:
        done = _run(
            """
            import sys
            import sendoff
            client = sendoff.FireAndForget(exit_timeout=0.3, connections_per_origin=1)
            for i in range(3):
                client.fire("GET", sys.argv[1])
            """,
            srv.url("/held"),
        )
    finally:
        release.set()
    assert done.returncode == 0
    assert "exiting with 3 request(s) undelivered after 0.3 s" in done.stderr
    assert srv.url("/held").rsplit("/", 1)[0] in done.stderr


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_fork_child_gets_its_own_engine_and_the_parent_keeps_its_queue(make_server):
    release = threading.Event()
    srv = make_server(
        lambda req: Reply(200, b"ok", hold=release if req.path.startswith("/p/") else None)
    )
    client = FireAndForget(connections_per_origin=1, retries=0)
    parent = [client.fire("GET", srv.url(f"/p/{i}")) for i in range(5)]
    srv.wait_for(1)  # /p/0 is in flight, /p/1-4 are queued
    pid = os.fork()
    if pid == 0:  # the child: report through the exit code only
        code = 3
        try:
            inherited = all(isinstance(r.error, ForkedAway) for r in parent)
            mine = [client.fire("GET", srv.url(f"/c/{i}")) for i in range(3)]
            delivered = all(r.wait(10) is not None for r in mine)
            code = 0 if inherited and delivered else 1
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    release.set()
    assert client.flush(10)
    assert all(r.response.status == 200 for r in parent)
    counts = Counter(r.path for r in srv.received)
    assert counts == Counter([f"/p/{i}" for i in range(5)] + [f"/c/{i}" for i in range(3)])


def test_uwsgi_without_threads_is_warned_about(caplog, monkeypatch):
    monkeypatch.setitem(sys.modules, "uwsgi", types.SimpleNamespace(opt={}))
    engine_module._warn_if_uwsgi_without_threads()
    assert "--enable-threads" in caplog.text
    caplog.clear()
    monkeypatch.setitem(sys.modules, "uwsgi",
                        types.SimpleNamespace(opt={"enable-threads": b"true"}))
    engine_module._warn_if_uwsgi_without_threads()
    assert caplog.text == ""
