"""The httpx backend, for applications that already standardise on httpx."""

from __future__ import annotations

import ssl
from typing import TYPE_CHECKING

import httpx

from ..core import errors
from .backend import Backend
from .exchange import CHUNK, Exchange
from .tls import ssl_context

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest, Response


class HttpxBackend(Backend):
    name = "httpx"

    def __init__(self, *, verify: bool = True, ca_bundle: str | None = None) -> None:
        super().__init__(verify=verify, ca_bundle=ca_bundle)
        self.client = httpx.Client(
            verify=ssl_context(verify, ca_bundle), trust_env=False, follow_redirects=False
        )
        for name in list(self.client.headers):  # send exactly the rendered headers
            del self.client.headers[name]

    def send(
        self, prepared: PreparedRequest, timeout: float, txn: Transaction | None
    ) -> Response:
        ex = Exchange(self.name, prepared, txn)
        request = self.client.build_request(
            prepared.method,
            prepared.full_url,
            headers=prepared.headers,
            content=prepared.body or None,
            timeout=httpx.Timeout(timeout),
        )
        try:
            resp = self.client.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise ex.error(*_classify(exc)) from exc
        try:
            headers = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in resp.headers.raw]
            ex.head(resp.status_code, resp.reason_phrase, headers, resp.http_version)
            stream = resp.extensions.get("network_stream")
            peer = stream.get_extra_info("server_addr") if stream is not None else None
            for chunk in resp.iter_raw(CHUNK):
                ex.feed(chunk)
        except httpx.HTTPError as exc:
            raise ex.error(*_classify(exc)) from exc
        finally:
            resp.close()
        return ex.finish(peer)

    def close(self) -> None:
        self.client.close()


def _classify(exc: BaseException) -> tuple[type[errors.TransportError], object]:
    if isinstance(exc, httpx.TimeoutException):
        return errors.TimeoutError, f"timed out ({type(exc).__name__})"
    if isinstance(exc, httpx.ConnectError):
        cause: BaseException | None = exc
        while cause is not None:
            if isinstance(cause, ssl.SSLError | ssl.CertificateError):
                return errors.TLSError, cause
            cause = cause.__cause__ or cause.__context__
        return errors.ConnectError, exc
    if isinstance(exc, httpx.RemoteProtocolError | httpx.ReadError | httpx.WriteError):
        return errors.ProtocolError, exc
    return errors.TransportError, exc
