"""Calling a WSGI application in-process: the environ a server would build for a
prepared request, and the whole response collected (what ``Internal`` uses)."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable
from typing import Any
from urllib.parse import unquote_to_bytes

from ..core.types import Environ, WSGIApp
from ..http.headers import Headers
from ..http.models import PreparedRequest, Response

#: Headers a WSGI environ carries without the ``HTTP_`` prefix.
UNPREFIXED = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}

def environ_for(prepared: PreparedRequest, client_ip: str | None) -> Environ:
    """The WSGI environ a server would build for ``prepared``."""
    url = prepared.url
    path, _, query = prepared.target.partition("?")
    environ: Environ = {
        "REQUEST_METHOD": prepared.method,
        "SCRIPT_NAME": "",
        "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query,
        "SERVER_NAME": url.host,
        "SERVER_PORT": str(url.port),
        "SERVER_PROTOCOL": prepared.protocol,
        "REMOTE_ADDR": client_ip or "127.0.0.1",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": url.scheme,
        "wsgi.input": io.BytesIO(prepared.body),
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": False,
        "wsgi.run_once": False,
    }
    for name, value in prepared.headers:
        key = name.upper().replace("-", "_")
        if key not in UNPREFIXED:
            key = "HTTP_" + key
        environ[key] = f"{environ[key]},{value}" if key in environ else value
    return environ


def call_wsgi(app: WSGIApp, environ: Environ) -> Response:
    """Run ``app`` on ``environ`` and collect its whole response."""
    started: list[Any] = []
    written: list[bytes] = []

    def start_response(
        status: str, headers: list[tuple[str, str]], exc_info: Any = None
    ) -> Callable[[bytes], object]:
        if exc_info is not None and started:
            raise exc_info[1].with_traceback(exc_info[2])
        started[:] = [status, headers]
        return written.append

    result = app(environ, start_response)
    try:
        for chunk in result:
            written.append(chunk)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    if not started:
        raise RuntimeError(f"the WSGI application {app!r} did not call start_response()")
    status, headers = started
    code, _, reason = status.partition(" ")
    return Response(int(code), Headers.from_wire(list(headers)), b"".join(written), reason=reason)
