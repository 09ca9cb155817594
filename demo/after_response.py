"""Seed 001: work that runs after the response has reached the client.

The seed's example: two tasks sum 1+2+4 and then write the sum to a file, while the
response says 0. A real WSGI server on loopback serves the app through
sendoff.wsgi.BackgroundMiddleware; the client has its answer before the tasks finish.
"""

from __future__ import annotations

import pathlib
import tempfile
import threading
import time
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from progress import heading, progress

from sendoff import External, Request, background
from sendoff.wsgi import BackgroundMiddleware


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def make_app(path: pathlib.Path, done: threading.Event) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        total = {"sum": 0}

        def add_up(*numbers: int) -> None:
            time.sleep(0.5)  # pretend this is slow: an e-mail, a webhook, a report
            total["sum"] += sum(numbers)

        def write() -> None:
            path.write_text(str(total["sum"]))
            done.set()

        background.add(add_up, 1, 2, 4)   # runs after the response, first
        background.add(write)             # then this one
        body = f"Current sum value is {total['sum']}.".encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]

    return BackgroundMiddleware(app)


def main() -> None:
    heading(2, "After-response work (seed 001)",
            "the client has its answer before the background.add() tasks run")
    path = pathlib.Path(tempfile.mkdtemp()) / "background-processing.txt"
    done = threading.Event()
    server = make_server("127.0.0.1", 0, make_app(path, done), handler_class=_QuietHandler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        started = time.perf_counter()
        resp = Request(f"http://127.0.0.1:{server.server_port}/").client(External()).execute()
        answered = time.perf_counter() - started
        print(f"the client got {resp.text!r} after {answered * 1000:.0f} ms; "
              f"file exists yet: {path.exists()}")
        with progress("waiting for the tasks", lambda: f"file written: {path.exists()}"):
            done.wait(10)
        finished = time.perf_counter() - started
        print(f"the tasks finished after {finished * 1000:.0f} ms; the file says "
              f"{path.read_text()!r} (1+2+4)\n")
    finally:
        server.shutdown()
        server.server_close()
