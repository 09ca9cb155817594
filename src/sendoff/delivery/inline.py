"""``mode="inline"``: the seeds' raw socket, in the caller's thread.

Connect (and TLS handshake, verified), write the request, close; never read. The caller
pays the connect; nothing confirms delivery. Failures are logged and counted, never
raised.
"""

from __future__ import annotations

import socket
import ssl
from typing import TYPE_CHECKING

from ..core import errors
from ..transports.tls import ssl_context
from .logwindow import log_failure
from .receipt import Receipt, settled
from .stats import mode_counters

if TYPE_CHECKING:
    from ..http.url import URL


def with_connection_close(wire: bytes) -> bytes:
    """``wire`` with ``Connection: close`` added (unless it names a Connection already),
    as the seed writes it: the server need not keep the socket for us."""
    head, sep, body = wire.partition(b"\r\n\r\n")
    if b"\r\nconnection:" in head.lower():
        return wire
    return head + b"\r\nConnection: close" + sep + body


def send_inline(
    url: URL, wire: bytes, timeout: float, verify: bool, ca_bundle: str | None
) -> Receipt:
    """Write ``wire`` to ``url``'s origin and close; the receipt is done on return."""
    counters = mode_counters("inline")
    receipt = settled(wire, url)
    error = _write(url, with_connection_close(wire), timeout, verify, ca_bundle)
    if error is None:
        counters.add("sent")
    else:
        counters.add("failed")
        failure = _classify(error)(f"{receipt.method} {receipt.url}: {error}")
        receipt.settle(None, failure)
        log_failure(receipt.method, receipt.url, failure)
    return receipt


def _classify(error: BaseException) -> type[errors.TransportError]:
    if isinstance(error, ssl.SSLError | ssl.CertificateError):
        return errors.TLSError
    if isinstance(error, TimeoutError):
        return errors.TimeoutError
    return errors.ConnectError


def _write(
    url: URL, wire: bytes, timeout: float, verify: bool, ca_bundle: str | None
) -> BaseException | None:
    try:
        sock = socket.create_connection((url.host, url.port), timeout=timeout)
    except OSError as exc:
        return exc
    try:
        if url.scheme == "https":
            sock = ssl_context(verify, ca_bundle).wrap_socket(sock, server_hostname=url.host)
        sock.sendall(wire)
    except (OSError, ssl.SSLError) as exc:
        return exc
    finally:
        sock.close()
    return None
