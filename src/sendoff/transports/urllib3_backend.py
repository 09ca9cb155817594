"""The urllib3 backend: pooled keep-alive connections, the default without pycurl."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import urllib3
from urllib3 import exceptions as u3
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

from ..core import errors
from .backend import Backend
from .exchange import CHUNK, Exchange
from .informational import FinalResponse
from .tls import ssl_context

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest, Response


class Urllib3Backend(Backend):
    name = "urllib3"

    def __init__(self, *, verify: bool = True, ca_bundle: str | None = None) -> None:
        super().__init__(verify=verify, ca_bundle=ca_bundle)
        self.pool = skip_informational(
            urllib3.PoolManager(
                num_pools=64,
                maxsize=16,
                cert_reqs="CERT_REQUIRED" if verify else "CERT_NONE",
                ssl_context=ssl_context(verify, ca_bundle),
            )
        )

    def send(
        self, prepared: PreparedRequest, timeout: float, txn: Transaction | None
    ) -> Response:
        ex = Exchange(self.name, prepared, txn)
        headers = urllib3.HTTPHeaderDict()
        for name, value in prepared.headers:
            headers.add(name, value)
        try:
            resp = self.pool.urlopen(
                prepared.method,
                prepared.full_url,
                body=prepared.body or None,
                headers=headers,
                redirect=False,
                retries=False,
                preload_content=False,
                decode_content=False,
                assert_same_host=False,
                timeout=urllib3.Timeout(connect=timeout, read=timeout),
            )
        except Exception as exc:
            raise ex.error(*_classify(exc)) from exc
        try:
            ex.head(resp.status, resp.reason or "", list(resp.headers.items()), _version(resp))
            peer = _peer(resp)
            for chunk in resp.stream(CHUNK, decode_content=False):
                ex.feed(chunk)
        except Exception as exc:
            resp.drain_conn()
            if exc is ex.listener_error:
                raise
            raise ex.error(*_classify(exc)) from exc
        finally:
            resp.release_conn()
        return ex.finish(peer)

    def close(self) -> None:
        self.pool.clear()


class _Connection(HTTPConnection):
    response_class = FinalResponse


class _TLSConnection(HTTPSConnection):
    response_class = FinalResponse


class _Pool(HTTPConnectionPool):
    ConnectionCls = _Connection


class _TLSPool(HTTPSConnectionPool):
    ConnectionCls = _TLSConnection


def skip_informational(manager: urllib3.PoolManager) -> urllib3.PoolManager:
    """Make ``manager``'s connections skip 1xx responses (see FinalResponse)."""
    manager.pool_classes_by_scheme = {"http": _Pool, "https": _TLSPool}
    return manager


def _classify(exc: BaseException) -> tuple[type[errors.TransportError], object]:
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2: test it first
    if isinstance(exc, u3.NewConnectionError | u3.NameResolutionError):
        return errors.ConnectError, exc
    if isinstance(exc, u3.ConnectTimeoutError):
        return errors.TimeoutError, "timed out connecting"
    if isinstance(exc, u3.ReadTimeoutError):
        return errors.TimeoutError, "timed out waiting for the response"
    if isinstance(exc, u3.SSLError):
        return errors.TLSError, exc
    if isinstance(exc, u3.ProtocolError | u3.DecodeError | u3.ResponseError):
        for inner in (exc, *exc.args):
            if isinstance(inner, u3.IncompleteRead):  # its text is a repr of itself
                return errors.ProtocolError, (
                    f"the response ended early ({inner.partial} bytes read,"
                    f" {inner.expected} more expected)"
                )
        return errors.ProtocolError, exc
    return errors.TransportError, exc


def _version(resp: Any) -> str:
    return {10: "HTTP/1.0", 11: "HTTP/1.1"}.get(getattr(resp, "version", 11), "HTTP/1.1")


def _peer(resp: Any) -> Any:
    try:
        return resp.connection.sock.getpeername()[:2]
    except Exception:  # the connection is already gone; the address is a nicety
        return None
