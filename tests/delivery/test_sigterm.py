"""SIGTERM runs the same bounded drain as a normal exit, then ends the process as it
would have ended: plain ``python`` (which dies on SIGTERM without running exit hooks),
uvicorn (which re-raises it with the default handler) and gunicorn, sync and gthread.
Whatever the drain could not deliver is logged and counted, never dropped silently."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
import urllib.request
from pathlib import Path

import pytest

from tests.support.process_server import ProcessServer, wait_until
from tests.support.recording_server import Reply

ROOT = Path(__file__).resolve().parent.parent.parent
ABANDONED = re.compile(r"exiting with (\d+) request\(s\) undelivered")


@pytest.fixture
def slow(make_server):
    """A receiver that takes 300 ms per answer."""
    return make_server(lambda req: Reply(200, b"ok", delay=0.3))


def test_plain_python_drains_then_dies_by_the_signal(slow):
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.delivery.sigterm_apps"], cwd=ROOT,
        env={"RECEIVER_URL": slow.url("/hook"), "FIRES": "500", "PATH": "/usr/bin:/bin"},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert proc.stdout is not None
    assert proc.stdout.readline() == "fired\n"
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == -signal.SIGTERM  # it still ends by the signal
    found = ABANDONED.search(err)
    assert found, err
    abandoned = int(found.group(1))
    delivered = wait_until(lambda: slow.count, timeout=5)
    assert 0 < abandoned < 500
    assert delivered >= 500 - abandoned - 4  # the drain delivered what it could (4 in flight)


@pytest.mark.parametrize("server", ["uvicorn", "gunicorn-sync", "gunicorn-gthread"])
def test_servers_drain_on_sigterm_and_log_what_they_abandon(slow, server):
    if server == "uvicorn":
        argv = [sys.executable, "-m", "uvicorn", "--host", "{host}", "--port", "{port}",
                "tests.delivery.sigterm_apps:asgi"]
    else:
        worker = ["-k", "sync"]
        if server == "gunicorn-gthread":
            worker = ["-k", "gthread", "--threads", "4"]
        argv = [sys.executable, "-m", "gunicorn", *worker, "-w", "1", "-b", "{host}:{port}",
                "--graceful-timeout", "10", "tests.delivery.sigterm_apps:application"]
    app = ProcessServer(argv, cwd=ROOT, env={"RECEIVER_URL": slow.url("/hook"), "FIRES": "200",
                                              "PYTHONPATH": str(ROOT)}).start()
    try:
        for _ in range(5):  # 1,000 webhooks to a receiver that takes 300 ms each
            with urllib.request.urlopen(app.url + "/", timeout=30) as resp:
                assert resp.read() == b"fired"
        assert app.proc is not None
        app.proc.send_signal(signal.SIGTERM)
        app.proc.wait(30)
    finally:
        app.stop()
    found = ABANDONED.search(app.output())
    assert found, app.output()[-3000:]
    abandoned = int(found.group(1))
    assert 0 < abandoned <= 1000
    assert slow.count >= 1  # the drain delivered some before it gave up


def test_a_handler_already_there_is_called_first():
    code = (
        "import signal, threading, sendoff\n"
        "seen = []\n"
        "signal.signal(signal.SIGTERM, lambda s, f: seen.append(s))\n"
        "sendoff.FireAndForget()\n"
        "signal.raise_signal(signal.SIGTERM)\n"
        "print(seen == [signal.SIGTERM])\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    assert (done.returncode, done.stdout) == (0, "True\n")


def test_an_ignored_sigterm_stays_ignored():
    code = (
        "import signal, sendoff\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sendoff.FireAndForget()\n"
        "print(signal.getsignal(signal.SIGTERM) is signal.SIG_IGN)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30, check=False)
    assert (done.returncode, done.stdout) == (0, "True\n")


def test_not_installed_from_another_thread():
    from sendoff.delivery.engine import drain_on_sigterm

    result: list[bool] = []
    worker = threading.Thread(target=lambda: result.append(drain_on_sigterm()))
    worker.start()
    worker.join(10)
    assert result == [False]
