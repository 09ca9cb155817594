"""HMVC: one internal sub-request beside the Flask test client and httpx's WSGITransport,
and requests/s of a page served by gunicorn, the sendoff App beside Flask.

The in-process rows time each call (route match, controller, response) one by one. The
server rows run gunicorn (1 gthread worker) in a subprocess and drive it from an asyncio
load generator over 16 keep-alive connections for a fixed time; only 200 responses whose
body is the expected page are counted.
"""

from __future__ import annotations

import asyncio
import pathlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable

import httpx

from bench.hmvc_apps import flask_app, sendoff_app
from bench.report import bar_plot, percentile, quick, table
from sendoff import Internal, Request
from sendoff.clients.default import reset_internal_client, set_internal_client

ROOT = pathlib.Path(__file__).resolve().parents[1]
QUICK = quick()  # SENDOFF_BENCH_QUICK=1: a smoke run
CALLS = 2_000 if QUICK else 20_000
LOAD_SECONDS = 1.5 if QUICK else 6.0
CONNECTIONS = 16


def timed(call: Callable[[], object], calls: int = CALLS) -> list[float]:
    """Microseconds of each of ``calls`` calls, after a warm-up."""
    for _ in range(calls // 10):
        call()
    clock = time.perf_counter_ns
    samples = []
    for _ in range(calls):
        start = clock()
        call()
        samples.append((clock() - start) / 1000)
    return samples


def in_process_rows() -> list[list[object]]:
    flask_client = flask_app.test_client()
    to_flask = httpx.Client(transport=httpx.WSGITransport(app=flask_app), base_url="http://b")
    to_sendoff = httpx.Client(transport=httpx.WSGITransport(app=sendoff_app), base_url="http://b")
    internal_flask = Internal(flask_app)

    def sub_uri() -> Request:
        return Request("hello/bench")

    def sub_request() -> object:
        return sub_uri().execute()

    def check(name: str, text: str) -> None:
        if text != "hello bench":
            raise SystemExit(f"{name} answered {text!r}")

    token = set_internal_client(sendoff_app.internal)  # as inside a controller
    try:
        check("sub-request", sub_request().text)  # type: ignore[attr-defined]
        candidates: list[tuple[str, Callable[[], object]]] = [
            ("sendoff sub-request Request(uri).execute()", sub_request),
            ("Flask test client", lambda: flask_client.get("/hello/bench")),
            ("httpx WSGITransport -> Flask", lambda: to_flask.get("/hello/bench")),
            ("httpx WSGITransport -> sendoff App", lambda: to_sendoff.get("/hello/bench")),
            ("sendoff Internal -> Flask (WSGI)", lambda: internal_flask.execute(sub_uri())),
        ]
        check("flask", flask_client.get("/hello/bench").get_data(as_text=True))
        check("httpx", to_sendoff.get("/hello/bench").text)
        check("internal-flask", internal_flask.execute(Request("hello/bench")).text)
        rows = []
        for name, call in candidates:
            samples = timed(call, CALLS if "sendoff sub" in name else CALLS // 4)
            rows.append([name, percentile(samples, 50), percentile(samples, 99),
                         1e6 / (sum(samples) / len(samples))])
    finally:
        reset_internal_client(token)
    return rows


async def load(port: int, path: str, expected: bytes, seconds: float) -> tuple[int, int]:
    """(expected 200 responses, anything else) over CONNECTIONS keep-alive connections."""
    request = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()
    deadline = time.monotonic() + seconds
    good = bad = 0

    async def connection() -> None:
        nonlocal good, bad
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                body = await reader.readexactly(length)
                if head.startswith(b"HTTP/1.1 200") and body == expected:
                    good += 1
                else:
                    bad += 1
                if b"connection: close" in head.lower():
                    writer.close()
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
        finally:
            writer.close()

    await asyncio.gather(*(connection() for _ in range(CONNECTIONS)))
    return good, bad


def served(target: str, path: str, expected: bytes) -> tuple[float, int]:
    """Requests/s gunicorn serves ``path`` of ``target`` at, and the failures seen."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(1024)
    port = listener.getsockname()[1]
    gunicorn = pathlib.Path(sys.executable).parent / "gunicorn"
    proc = subprocess.Popen(
        [str(gunicorn), "--bind", f"fd://{listener.fileno()}", "--workers", "1",
         "--worker-class", "gthread", "--threads", "4", "--keep-alive", "30",
         "--log-level", "warning", target],
        cwd=ROOT, pass_fds=(listener.fileno(),),
    )
    listener.close()
    try:
        asyncio.run(load(port, path, expected, 1.0))  # warm-up: imports, first connections
        good, bad = asyncio.run(load(port, path, expected, LOAD_SECONDS))
    finally:
        proc.terminate()
        proc.wait(timeout=15)
    return good / LOAD_SECONDS, bad


def main() -> None:
    rows = in_process_rows()
    table(
        "One in-process request (route match, controller/view, response), µs per call",
        ["how", "p50 µs", "p99 µs", "calls/s"],
        rows,
    )
    bar_plot("hmvc_in_process.png", "One in-process request: p50 µs (lower is better)",
             [r[0] for r in rows], [float(r[1]) for r in rows], "µs per call (p50)", log=True)

    pages = [
        ("sendoff App /hello/bench", "bench.hmvc_apps:sendoff_app", "/hello/bench", b"hello bench"),
        ("Flask /hello/bench", "bench.hmvc_apps:flask_app", "/hello/bench", b"hello bench"),
        ("sendoff App /page (2 sub-requests)", "bench.hmvc_apps:sendoff_app", "/page",
         b"hello a hello b"),
    ]
    server_rows = []
    for name, target, path, expected in pages:
        rate, failures = served(target, path, expected)
        server_rows.append([name, rate, failures])
    table(
        f"gunicorn (1 gthread worker, 4 threads), {CONNECTIONS} keep-alive connections, "
        f"{LOAD_SECONDS:.0f} s: expected 200 responses per second",
        ["page", "responses/s", "failures"],
        server_rows,
    )
    bar_plot("hmvc_gunicorn.png", "Page served by gunicorn: responses/s (higher is better)",
             [r[0] for r in server_rows], [float(r[1]) for r in server_rows], "responses/s")


if __name__ == "__main__":
    main()
