"""The response side of one exchange, the same for every transport: the Response built
when the head is in, the body taken chunk by chunk, and the transfer info."""

from __future__ import annotations

import http.client
import re
import socket
import ssl
import time
import zlib
from typing import TYPE_CHECKING, Any

from ..core import errors
from ..core.errors import ProtocolError, TransportError
from ..core.log import redact_url, scrub, secret_values
from ..http.headers import Headers
from ..http.models import Response

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest

#: Bytes read per chunk of a response body.
CHUNK = 64 * 1024


class Exchange:
    """The response side of one exchange: builds the Response when the head is in, then
    takes the body chunk by chunk (Content-Encoding decoded, an event sink honoured,
    progress reported) and keeps the transfer info every backend reports the same way."""

    __slots__ = (
        "_chunks",
        "_decoder",
        "_progress",
        "_sink",
        "backend",
        "body_size",
        "decoded_size",
        "download_total",
        "info",
        "listener_error",
        "max_body",
        "prepared",
        "response",
        "started",
        "txn",
    )

    def __init__(
        self,
        backend: str,
        prepared: PreparedRequest,
        txn: Transaction | None,
        max_body: int | None = None,
    ) -> None:
        self.backend = backend
        self.prepared = prepared
        self.txn = txn
        self.started = time.perf_counter()
        self.info: dict[str, Any] = {
            "backend": backend,
            "bytes_sent": len(prepared.body),
            "bytes_received": 0,
            "remote_address": None,
        }
        self.response: Response | None = None
        self._chunks: list[bytes] = []
        self._decoder: Any = None
        self._sink: Any = None
        self._progress = txn is not None and txn.wants("progress")
        self.download_total: int | None = None
        self.body_size = 0
        #: the most decoded body bytes kept (None: no limit); a ProtocolError beyond
        self.max_body = max_body
        self.decoded_size = 0
        #: what a ``headers``/``progress`` listener or a body sink raised: backends
        #: re-raise it as it is instead of reporting a transport failure
        self.listener_error: BaseException | None = None

    def head(
        self, status: int, reason: str, headers: list[tuple[str, str]], version: str = "HTTP/1.1"
    ) -> Response:
        """The status line and headers are in: build the response, emit ``headers``."""
        response = Response(status, Headers.from_wire(headers), reason=reason, http_version=version)
        self.response = response
        self.info["headers_time"] = time.perf_counter() - self.started
        encoding = response.headers.get("content-encoding", "").strip().lower()
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = zlib.decompressobj(47)  # gzip or zlib header, detected
        length = response.headers.get("content-length", "")
        self.download_total = int(length) if length.isdigit() else None
        if self.txn is not None:
            try:
                self._sink = self.txn.headers_received(response)
            except Exception as exc:
                self.listener_error = exc
                raise
        return response

    def feed(self, chunk: bytes) -> None:
        """One piece of the body, as received."""
        if not chunk:
            return
        self.body_size += len(chunk)
        data = self._decoder.decompress(chunk) if self._decoder is not None else chunk
        self.decoded_size += len(data)
        if self.max_body is not None and self.decoded_size > self.max_body:
            raise ProtocolError(f"the decoded response body exceeds {self.max_body} bytes")
        try:
            if self._sink is not None:
                self._sink.write(data)
            else:
                self._chunks.append(data)
            if self._progress and self.txn is not None:
                size = len(self.prepared.body)
                self.txn.progress(size, size, self.download_total, self.body_size)
        except Exception as exc:
            self.listener_error = exc
            raise

    def finish(self, remote_address: Any = None) -> Response:
        """The body is complete: the response, with its body and transfer info."""
        assert self.response is not None, "finish() before head()"
        if self._decoder is not None:
            tail = self._decoder.flush()
            if tail:
                self._sink.write(tail) if self._sink is not None else self._chunks.append(tail)
        self.response.body = b"".join(self._chunks)
        self.info["bytes_received"] = self.body_size
        self.info["remote_address"] = remote_address
        self.info["total_time"] = time.perf_counter() - self.started
        self.response.transfer_info = self.info
        return self.response

    def error(self, cls: type[TransportError], reason: object) -> TransportError:
        """A TransportError of ``cls`` in sendoff's own words: the method, the URL
        (credentials redacted), the host and port, and the cause (what the system or
        the TLS library said, never a backend's object reprs or a credential)."""
        self.info["total_time"] = time.perf_counter() - self.started
        self.info["bytes_received"] = self.body_size
        prepared = self.prepared
        url = prepared.url
        where = f"{url.host} port {url.port}"
        cause = scrub(cause_text(reason), secret_values(prepared.full_url, prepared.headers))
        if issubclass(cls, errors.TLSError):
            what = f"TLS with {where} failed: {cause}"
        elif issubclass(cls, errors.ConnectError):
            what = f"cannot connect to {where}: {cause}"
        else:
            what = f"{where}: {cause}"
        return cls(f"{prepared.method} {redact_url(prepared.full_url)}: {what}",
                   transfer_info=self.info)


#: ``SomeConnection(host='x', port=1)``, ``<urllib3.x object at 0x7f...>``: the parts of
#: a backend's message that name its own objects rather than the failure.
_BACKEND_REPR = re.compile(
    r"\b\w+\(host='[^']*', port=\d+\)(?:: )?|<[\w.]+ object at 0x[0-9a-f]+>:? ?"
)


def cause_text(reason: object) -> str:
    """The cause of a failed exchange in plain words: a text as given, else what the
    deepest system, socket or TLS error under ``reason`` says (``[Errno 111] Connection
    refused``, ``certificate verify failed: self-signed certificate``); a backend's own
    exception only when nothing under it says more, without the reprs of its objects."""
    if isinstance(reason, str):
        return reason
    if not isinstance(reason, BaseException):
        return str(reason)
    root = _root_cause(reason)
    if isinstance(root, ssl.SSLCertVerificationError):
        return f"certificate verify failed: {root.verify_message or root.reason}"
    if isinstance(root, ssl.SSLError):
        return f"TLS error: {root.reason or root.strerror or type(root).__name__}"
    if isinstance(root, socket.gaierror):
        return f"cannot resolve the host name ({root.strerror})"
    if isinstance(root, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(root, http.client.RemoteDisconnected):
        return "the server closed the connection without a response"
    if isinstance(root, http.client.IncompleteRead):
        return f"the response ended early ({root.expected} more bytes expected)"
    if isinstance(root, OSError) and root.errno is not None and root.strerror:
        return f"[Errno {root.errno}] {root.strerror}"
    text = _BACKEND_REPR.sub("", str(root)).strip()
    return text or type(root).__name__


def _root_cause(exc: BaseException) -> BaseException:
    """The deepest exception of the standard library under ``exc`` (following
    ``__cause__``, ``__context__``, urllib3's ``reason`` and exceptions held in
    ``args``), or ``exc`` itself when there is none."""
    seen: set[int] = set()
    found: BaseException | None = None
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        if isinstance(current, OSError | http.client.HTTPException) and type(
            current
        ).__module__ in ("builtins", "socket", "ssl", "http.client"):
            found = current  # keep going: a deeper one says more
        nested = [getattr(current, "reason", None), current.__cause__, current.__context__]
        nested += list(current.args)
        todo += [e for e in nested if isinstance(e, BaseException)]
    return found if found is not None else exc
