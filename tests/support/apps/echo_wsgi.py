"""WSGI echo app for gunicorn (``echo_wsgi:application``); see ``echo_common``.

``/len/`` sets Content-Length. ``/chunked/`` and ``/close/`` set none, so gunicorn
chunks them (for HTTP/1.1): gunicorn cannot send a close-delimited answer to an
HTTP/1.1 request, and drops the app's ``Connection`` header (hop-by-hop). The sync
worker closes every connection after one answer anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from echo_common import body_parts, framing, record


def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    method = environ["REQUEST_METHOD"]
    request_id = environ.get("HTTP_X_REQUEST_ID", "-")
    stream = environ["wsgi.input"]
    while stream.read(65536):
        pass
    record(method, request_id)
    parts = body_parts(request_id)
    headers = [("Content-Type", "text/plain"), ("X-Request-Id", request_id)]
    if framing(environ.get("PATH_INFO", "/")) == "len":
        body = b"".join(parts)
        headers.append(("Content-Length", str(len(body))))
        start_response("200 OK", headers)
        return [b"" if method == "HEAD" else body]
    start_response("200 OK", headers)
    return _each([] if method == "HEAD" else parts)


def _each(parts: list[bytes]) -> Iterator[bytes]:
    # A generator, so nothing can guess a length: one chunk per part.
    yield from parts
