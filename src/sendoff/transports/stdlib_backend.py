"""The standard-library backend (http.client): Kohana's "streams", always available."""

from __future__ import annotations

import http.client
import socket
import ssl
from typing import TYPE_CHECKING

from ..core import errors
from .backend import Backend
from .exchange import CHUNK, Exchange
from .informational import FinalResponse
from .tls import ssl_context

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest, Response


class StdlibBackend(Backend):
    """One connection per request, closed afterwards; no third-party code at all."""

    name = "stdlib"

    def send(
        self, prepared: PreparedRequest, timeout: float, txn: Transaction | None
    ) -> Response:
        ex = Exchange(self.name, prepared, txn)
        url = prepared.url
        conn: http.client.HTTPConnection
        if url.scheme == "https":
            ctx = ssl_context(self.verify, self.ca_bundle)
            conn = http.client.HTTPSConnection(url.host, url.port, timeout=timeout, context=ctx)
        else:
            conn = http.client.HTTPConnection(url.host, url.port, timeout=timeout)
        conn.response_class = FinalResponse
        try:
            try:
                conn.connect()
            except Exception as exc:
                raise ex.error(*_classify(exc, connecting=True)) from exc
            try:
                conn.putrequest(prepared.method, prepared.target, True, True)
                for name, value in prepared.headers:
                    conn.putheader(name, value)
                conn.endheaders(prepared.body or None)
                resp = conn.getresponse()
                version = "HTTP/1.0" if resp.version == 10 else "HTTP/1.1"
                ex.head(resp.status, resp.reason, resp.getheaders(), version)
                peer = conn.sock.getpeername()[:2] if conn.sock else None
                while chunk := resp.read(CHUNK):
                    ex.feed(chunk)
                if resp.length:  # read(amt) returns b"" at an early close, raising nothing
                    raise http.client.IncompleteRead(b"", resp.length)
            except Exception as exc:
                if exc is ex.listener_error:
                    raise
                raise ex.error(*_classify(exc, connecting=False)) from exc
            return ex.finish(peer)
        finally:
            conn.close()


def _classify(exc: BaseException, connecting: bool) -> tuple[type[errors.TransportError], object]:
    if isinstance(exc, socket.timeout | TimeoutError):
        return errors.TimeoutError, ("timed out connecting" if connecting else
                                     "timed out waiting for the response")
    if isinstance(exc, ssl.SSLError | ssl.CertificateError):
        return errors.TLSError, exc
    if isinstance(exc, http.client.HTTPException):
        return errors.ProtocolError, exc or type(exc).__name__
    if connecting and isinstance(exc, OSError):
        return errors.ConnectError, exc
    if isinstance(exc, ConnectionError):
        return errors.ProtocolError, exc
    return errors.TransportError, exc
