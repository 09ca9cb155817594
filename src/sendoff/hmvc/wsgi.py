"""The WSGI boundary: environ to Request and Response to WSGI for the App, and the other
way round for :class:`~sendoff.Internal` calling any WSGI application in-process."""

from __future__ import annotations

import io
import sys
from collections.abc import Callable, Collection
from typing import Any
from urllib.parse import unquote_to_bytes

from .._typing import Environ, WSGIApp
from ..http.headers import Headers
from ..http.request import PreparedRequest, Request
from ..http.response import Response
from .exceptions import HTTPException
from .gateway import build_request

_SPECIAL = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}


def request_from_environ(
    environ: Environ, max_body: int, trusted_proxies: Collection[str] = ()
) -> Request:
    """The main request a WSGI server passed in ``environ``."""
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), value))
        elif key in _SPECIAL and value:
            headers.append((_SPECIAL[key], value))
    path = environ.get("PATH_INFO", "").encode("latin-1").decode("utf-8", errors="replace")
    query = environ.get("QUERY_STRING", "").encode("latin-1").decode("utf-8", errors="replace")
    return build_request(
        environ.get("REQUEST_METHOD", "GET"),
        path,
        query,
        headers,
        _read_body(environ, max_body),
        environ.get("REMOTE_ADDR"),
        trusted_proxies,
    )


def _read_body(environ: Environ, max_body: int) -> bytes:
    stream = environ.get("wsgi.input")
    if stream is None:
        return b""
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.isdigit():
        length = int(length_text)
        if length > max_body:
            raise HTTPException(413)
        return bytes(stream.read(length)) if length else b""
    if environ.get("wsgi.input_terminated"):  # chunked upload the server de-chunks
        data = bytes(stream.read(max_body + 1))
        if len(data) > max_body:
            raise HTTPException(413)
        return data
    return b""


# -- Internal: calling a WSGI application -------------------------------------------------
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
        if key not in _SPECIAL:
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
