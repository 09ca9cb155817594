"""What the outbox keeps when processes die: ``kill -9`` of a producer mid-stream and of
a relay mid-delivery, SIGTERM of uvicorn and gunicorn workers under load, and four
gunicorn workers sharing one file. Real processes, a real receiver on loopback."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from pathlib import Path

import pytest

from sendoff import Outbox
from tests.support.process_server import ProcessServer, wait_until
from tests.support.recording_server import RecordingServer

ROOT = Path(__file__).resolve().parent.parent.parent


def _keys(srv: RecordingServer) -> Counter[str]:
    return Counter(rec.header("idempotency-key") or "" for rec in srv.received)


def _drain(path: str, timeout: float = 120.0) -> None:
    """Open the file as a restarted process would, and deliver what it holds."""
    outbox = Outbox(path, lease=2)
    try:
        assert outbox.flush(timeout), outbox.stats()
    finally:
        outbox.close()


@pytest.mark.parametrize("seed", [1, 2])
def test_kill_9_of_the_producer_loses_nothing_it_acknowledged(tmp_path, server, seed):
    path = str(tmp_path / "outbox.sqlite3")
    stop_after = random.Random(seed).randint(2_000, 15_000)
    producer = subprocess.Popen(
        [sys.executable, "-m", "tests.outbox.producer", path, server.url("/hook"), "20000", "2"],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
    )
    acknowledged: list[str] = []
    assert producer.stdout is not None
    for line in producer.stdout:
        acknowledged.append(line.decode().strip())
        if len(acknowledged) >= stop_after:
            producer.kill()  # SIGKILL, mid-stream: its relay dies mid-delivery too
            break
    acknowledged.extend(line.decode().strip() for line in producer.stdout)  # already written
    producer.wait(30)
    assert producer.returncode == -signal.SIGKILL
    assert len(acknowledged) >= stop_after
    _drain(path)
    got = _keys(server)
    missing = [key for key in acknowledged if key not in got]
    assert missing == []
    # duplicates only for messages in flight at the kill, each with its own key
    twice = [key for key, n in got.items() if n > 1]
    assert len(twice) <= 1024
    assert all(n <= 2 for n in got.values())


def test_kill_9_of_a_relay_mid_delivery_loses_nothing(tmp_path, make_server):
    path = str(tmp_path / "outbox.sqlite3")
    gate = threading.Event()
    from tests.support.recording_server import Reply

    srv = make_server(lambda req: Reply(200, b"ok", hold=gate))  # answers only when let go
    outbox = Outbox(path, relay=None)
    keys = [outbox.fire("POST", srv.url("/hook"), json={"n": n}, key=f"r{n}").key
            for n in range(300)]
    outbox.close()
    relay = subprocess.Popen(
        [sys.executable, "-c", "import sys; from sendoff.cli import main; sys.exit(main())",
         "outbox", path, "relay", "--lease", "2", "--timeout", "30"],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: srv.count >= 16, timeout=30, what="the relay's first deliveries")
    finally:
        relay.kill()  # mid-delivery: its leases are left in the file
        relay.wait(30)
    gate.set()
    _drain(path)
    got = _keys(srv)
    assert set(keys) <= set(got)
    assert all(n <= 2 for n in got.values())


def _server(kind: str, path: str, receiver: str) -> ProcessServer:
    env = {"OUTBOX_PATH": path, "RECEIVER_URL": receiver, "OUTBOX_LEASE": "2",
           "PYTHONPATH": str(ROOT)}
    if kind == "uvicorn":
        argv = [sys.executable, "-m", "uvicorn", "--host", "{host}", "--port", "{port}",
                "tests.outbox.apps:asgi"]
    else:
        workers = "4" if kind == "gunicorn-4" else "2"
        argv = [sys.executable, "-m", "gunicorn", "-k", "sync", "-w", workers,
                "-b", "{host}:{port}", "--graceful-timeout", "1", "tests.outbox.apps:application"]
    return ProcessServer(argv, cwd=ROOT, env=env).start()


def _load(base: str, numbers: range, stop: threading.Event, threads: int = 4) -> list[int]:
    """Requests /store?n=N from several threads; the numbers that were answered 200."""
    stored: list[int] = []
    lock = threading.Lock()
    todo = iter(numbers)

    def work() -> None:
        while not stop.is_set():
            with lock:
                n = next(todo, None)
            if n is None:
                return
            try:
                with urllib.request.urlopen(f"{base}/store?n={n}", timeout=10) as resp:
                    if resp.status == 200:
                        with lock:
                            stored.append(n)
            except OSError:
                continue  # the server is going away: that request was not acknowledged

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(120)
    return stored


@pytest.mark.parametrize("kind", ["uvicorn", "gunicorn"])
def test_sigterm_of_the_server_under_load_loses_nothing(tmp_path, server, kind):
    path = str(tmp_path / "outbox.sqlite3")
    app = _server(kind, path, server.url("/hook"))
    stop = threading.Event()
    stored: list[int] = []
    loader = threading.Thread(target=lambda: stored.extend(_load(app.url, range(3000), stop)))
    loader.start()
    try:
        wait_until(lambda: len(server.received) >= 200, timeout=60, what="deliveries under load")
        assert app.proc is not None
        app.proc.send_signal(signal.SIGTERM)  # the default exit of uvicorn and gunicorn
        app.proc.wait(30)
    finally:
        stop.set()
        loader.join(60)
        app.stop()
    assert len(stored) >= 200
    _drain(path)
    got = _keys(server)
    missing = [n for n in stored if f"req-{n}" not in got]
    assert missing == []


def test_four_gunicorn_workers_share_one_file_without_loss_or_duplicates(tmp_path, server):
    path = str(tmp_path / "outbox.sqlite3")
    app = _server("gunicorn-4", path, server.url("/hook"))
    try:
        stored = _load(app.url, range(2000), threading.Event(), threads=8)
        assert sorted(stored) == list(range(2000))
        outbox = Outbox(path, relay=None)
        try:
            assert outbox.flush(120), outbox.stats()  # the workers' relays deliver
        finally:
            outbox.close()
    finally:
        app.stop()
    got = _keys(server)
    assert set(got) == {f"req-{n}" for n in range(2000)}
    assert max(got.values()) == 1  # no faults: none delivered twice
