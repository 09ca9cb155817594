"""A bare WSGI app (no framework) for gunicorn's sync and gthread workers: the test
endpoints, and at ``/readme`` the README's plain WSGI recipe, line for line."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import parse_qsl

from common import DIR, handle, hold, touch, wait_for

from sendoff import background
from sendoff.background import ThreadExecutor
from sendoff.wsgi import BackgroundMiddleware


def app(environ, start_response):
    path = environ["PATH_INFO"]
    params = dict(parse_qsl(environ.get("QUERY_STRING", "")))
    if path == "/generator":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _generated(params["id"])
    if path == "/stream":
        hold(params["id"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return _streamed(params["id"])
    if path == "/file":
        touch(f"file-{params['id']}", "from a file\n" * 1000)
        background.add(touch, f"sent-{params['id']}")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(DIR / f"file-{params['id']}", "rb"))
    if path != "/readme":
        body = handle(path, params).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
    background.add(print, "after the response to", environ["PATH_INFO"], flush=True)
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]


def _streamed(rid: str) -> Iterator[bytes]:
    yield b"first part\n"
    wait_for(f"go-{rid}")
    yield b"second part\n"


def _generated(rid: str) -> Iterator[bytes]:
    yield b"part one\n"
    background.add(touch, f"from-generator-{rid}")  # added while the server iterates
    yield b"part two\n"


application = BackgroundMiddleware(app, on_error="continue")
threaded = BackgroundMiddleware(
    app, executor=ThreadExecutor(max_workers=2, grace=1.0), on_error="continue"
)
