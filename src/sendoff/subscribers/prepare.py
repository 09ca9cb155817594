"""The Prepare subscriber: Content-Type, Content-Length and Expect, set before signing."""

from __future__ import annotations

import codecs
import json
from typing import Any

from ..events.lifecycle import BeforeEvent
from ..events.priorities import RequestEvents
from ..http.models import BODY_METHODS, FORM_TYPE, JSON_TYPE

#: Bodies of this many bytes or more are sent with ``Expect: 100-continue`` (Guzzle's 1 MB).
EXPECT_THRESHOLD = 1024 * 1024
_SNIFF = 8192  # how much of a raw body the Content-Type guess looks at
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"%PDF-", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"\x1f\x8b", "application/gzip"),
    (b"PK\x03\x04", "application/zip"),
    (b"<?xml", "application/xml"),
)


class Prepare:
    """Make a request's body headers explicit in ``before``, at ``PREPARE_REQUEST``.

    Listeners that run later (a signer at ``SIGN_REQUEST``) then see exactly the
    ``Content-Type``, ``Content-Length`` and ``Expect`` headers that will be sent:

    * ``Content-Length``: the size of the body (also 0 for a POST, PUT or PATCH without one);
    * ``Content-Type``, unless one is set: form fields and JSON bodies say what they are,
      a raw body is guessed from its first bytes (well-known file signatures, JSON,
      UTF-8 text, else ``application/octet-stream``);
    * ``Expect: 100-continue`` for HTTP/1.1 bodies of ``expect_threshold`` bytes or more
      (None never adds it), so that the server can refuse before the upload.
    """

    def __init__(self, expect_threshold: int | None = EXPECT_THRESHOLD) -> None:
        self.expect_threshold = expect_threshold

    def __repr__(self) -> str:
        return f"<Prepare expect_threshold={self.expect_threshold}>"

    def get_events(self) -> dict[str, Any]:
        return {"before": ("on_before", RequestEvents.PREPARE_REQUEST)}

    def on_before(self, event: BeforeEvent) -> None:
        request = event.request
        body: bytes = request.body()
        if not body and request.method() not in BODY_METHODS:
            return
        headers = request.headers()
        headers["Content-Length"] = str(len(body))
        if "content-type" not in headers and body:
            kind = request.body_kind()
            headers["Content-Type"] = (
                FORM_TYPE if kind == "form" else JSON_TYPE if kind == "json" else guess_type(body)
            )
        threshold = self.expect_threshold
        if (
            threshold is not None
            and len(body) >= threshold
            and request.protocol() == "HTTP/1.1"
            and "expect" not in headers
        ):
            headers["Expect"] = "100-continue"


def guess_type(body: bytes) -> str:
    """A Content-Type for raw ``body`` bytes, from what they start with."""
    head = body[:_SNIFF]
    for magic, ctype in _MAGIC:
        if head.startswith(magic):
            return ctype
    stripped = head.lstrip()
    if stripped[:1] in (b"{", b"["):
        try:
            json.loads(body)
        except ValueError:
            pass
        else:
            return JSON_TYPE
    try:
        text = codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "application/octet-stream"
    if any(ch < " " and ch not in "\t\r\n\f" for ch in text):
        return "application/octet-stream"
    return "text/plain; charset=utf-8"
