"""The `sendoff` command, run as a real subprocess."""

from __future__ import annotations

import pathlib
import subprocess
import sys

from tests.support.recording_server import Reply, free_port

SENDOFF = str(pathlib.Path(sys.executable).with_name("sendoff"))


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([SENDOFF, *args], capture_output=True, text=True, timeout=60)


def test_request_sends_and_prints(make_server):
    srv = make_server(lambda req: Reply(201, b"created", [("X-Id", "9")]))
    out = run("request", "POST", srv.url("/submit"), "-q", "corge=grault", "-d", "foo=bar",
              "-d", "baz=qux", "-H", "X-Trace: abc", "-i")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("HTTP/1.1 201 Created\n")
    assert "X-Id: 9\n" in out.stdout
    assert out.stdout.endswith("\ncreated")
    [got] = srv.wait_for(1)
    assert (got.method, got.target, got.body) == ("POST", "/submit?corge=grault",
                                                   b"foo=bar&baz=qux")
    assert got.header("x-trace") == "abc"


def test_json_body_and_error_status(make_server):
    srv = make_server(lambda req: Reply(404, b"nope"))
    out = run("request", "PUT", srv.url("/x"), "--json", '{"a": [1]}')
    assert out.returncode == 1
    assert srv.wait_for(1)[0].body == b'{"a":[1]}'


def test_bad_input_and_network_errors_exit_2_with_a_message():
    bad = run("request", "GET", "http://example.com/", "-H", "no colon")
    assert bad.returncode == 2
    assert "header: argument #1 is not of the form NAME:VALUE" in bad.stderr
    assert "no colon" not in bad.stderr
    refused = run("request", "GET", f"http://127.0.0.1:{free_port()}/", "--timeout", "5")
    assert refused.returncode == 2
    assert refused.stderr.startswith("sendoff: GET http://127.0.0.1:")


def test_version():
    out = run("--version")
    assert out.stdout.strip() == "sendoff 0.1.0"


def test_python_dash_m_knows_every_subcommand():
    for module in ("sendoff", "sendoff.cli"):
        out = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "{fire,outbox,request}" in out.stdout
