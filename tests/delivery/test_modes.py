"""mode="inline" (the seed's raw socket), mode="process" (a detached helper), the CLI."""

from __future__ import annotations

import logging
import subprocess
import sys

import sendoff
from sendoff import FireAndForget, Request
from tests.support.recording_server import free_port


def test_inline_writes_and_closes_in_the_caller(server):
    receipt = (Request(server.url("/inline")).client(FireAndForget(mode="inline"))
               .method("POST").post("foo", "bar").execute())
    assert receipt.done()
    assert (receipt.error, receipt.wait(0)) == (None, None)  # no response is read
    [got] = server.wait_for(1)
    assert (got.method, got.body) == ("POST", b"foo=bar")
    assert got.header("connection") == "close"


def test_inline_https(tls_server, ca_bundle):
    client = FireAndForget(mode="inline", ca_bundle=ca_bundle)
    receipt = client.fire("GET", tls_server.url("/tls", host="localhost"))
    assert receipt.error is None
    assert tls_server.wait_for(1)[0].path == "/tls"


def test_inline_failure_is_logged_not_raised(caplog):
    before = sendoff.stats()["inline"]["failed"]
    url = f"http://127.0.0.1:{free_port()}/down"
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        receipt = FireAndForget(mode="inline").fire("GET", url)
    assert isinstance(receipt.error, sendoff.ConnectError)
    assert f"GET {url} failed" in caplog.text
    assert sendoff.stats()["inline"]["failed"] == before + 1


def test_process_mode_hands_over_to_a_detached_helper(server):
    client = FireAndForget(mode="process")
    receipts = [client.fire("POST", server.url(f"/proc/{i}"), json={"i": i}) for i in range(3)]
    assert all(r.done() and r.error is None for r in receipts)
    client.close()  # the helper delivers what it has, then exits
    got = server.wait_for(3, timeout=30)
    assert sorted(r.path for r in got) == ["/proc/0", "/proc/1", "/proc/2"]
    assert sendoff.stats()["process"]["handed_off"] >= 3


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    entry = "import sys; from sendoff.cli import main; sys.exit(main())"  # the console script
    return subprocess.run([sys.executable, "-c", entry, *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_cli_fire_returns_at_once_and_delivers(server):
    done = _cli("fire", "POST", server.url("/cli"), "-q", "a=1", "-d", "k=v", "-H", "X-T: 1")
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")
    [got] = server.wait_for(1, timeout=30)
    assert (got.target, got.body, got.header("x-t")) == ("/cli?a=1", b"k=v", "1")


def test_cli_fire_wait_prints_the_status(server):
    done = _cli("fire", "GET", server.url("/w"), "--wait")
    assert (done.returncode, done.stdout) == (0, "200 OK\n")
    assert server.count == 1


def test_cli_fire_wait_reports_a_failure():
    done = _cli("fire", "GET", f"http://127.0.0.1:{free_port()}/", "--wait", "--timeout", "2")
    assert done.returncode == 2
    assert "refused" in done.stderr.lower()


def test_cli_rejects_bad_input():
    done = _cli("fire", "GET", "ftp://example.com/")
    assert done.returncode == 2
    assert "scheme" in done.stderr
