"""The App's WSGI boundary: the main request built from a server's environ."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any

from ..core.types import Environ
from ..http.models import Request
from ..transports.wsgi import UNPREFIXED
from .exceptions import HTTPException
from .gateway import build_request


def request_from_environ(
    environ: Environ, max_body: int, trusted_proxies: Collection[str] = ()
) -> Request[Any]:
    """The main request a WSGI server passed in ``environ``."""
    headers: list[tuple[str, str]] = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            headers.append((key[5:].replace("_", "-").title(), value))
        elif key in UNPREFIXED and value:
            headers.append((UNPREFIXED[key], value))
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
