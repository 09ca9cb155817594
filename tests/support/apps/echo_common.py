"""What every Python echo app of ``tests.support.real_servers`` shares.

The framing of the answer comes from the first path segment (``/len/...``,
``/chunked/...``, ``/close/...``; anything else is ``len``). Each request is recorded
as one line ``<METHOD> <X-Request-Id>`` appended to the file named by ``$ECHO_LOG``
(one ``write()`` on an ``O_APPEND`` descriptor, so lines from several worker processes
never interleave), *before* the answer is sent: a client that has its response can
read the record at once.
"""

from __future__ import annotations

import os

_LOG_FD = os.open(os.environ["ECHO_LOG"], os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)


def framing(path: str) -> str:
    """``len``, ``chunked`` or ``close``, from the first segment of ``path``."""
    first = path.lstrip("/").split("/", 1)[0]
    return first if first in ("chunked", "close") else "len"


def record(method: str, request_id: str) -> None:
    os.write(_LOG_FD, f"{method} {request_id}\n".encode("latin-1", "replace"))


def body_parts(request_id: str) -> list[bytes]:
    """The body ``id=<id>\\n``, in two parts so chunked answers have two chunks and the id
    never starts a chunk."""
    return [b"id=", request_id.encode("latin-1", "replace") + b"\n"]
