"""The pycurl backend (libcurl): the fastest blocking backend, first choice of "auto"."""

from __future__ import annotations

import math
import threading
from typing import TYPE_CHECKING, Any

import pycurl

from ..core import errors
from .backend import Backend
from .exchange import Exchange

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest, Response

_TIMEOUT = {28}
_CONNECT = {5, 6, 7}
_TLS = {35, 51, 53, 54, 58, 59, 60, 64, 66, 77, 80, 82, 83, 90, 91}
_PROTOCOL = {8, 18, 52, 55, 56}

# Headers curl adds unless told not to; an empty value removes them, so that every
# backend sends exactly the headers the request renders.
_SUPPRESSED = ("Accept", "Expect", "Content-Type", "Transfer-Encoding")


class PycurlBackend(Backend):
    """One curl handle per thread, reused so that libcurl keeps connections alive.

    libcurl has no per-read timeout: ``timeout`` bounds the connect, and a transfer that
    moves no byte for ``timeout`` seconds (rounded up to whole seconds) is aborted.
    """

    name = "pycurl"

    def __init__(self, *, verify: bool = True, ca_bundle: str | None = None) -> None:
        super().__init__(verify=verify, ca_bundle=ca_bundle)
        self._local = threading.local()
        self._handles: list[Any] = []
        self._lock = threading.Lock()

    def _handle(self) -> Any:
        curl = getattr(self._local, "curl", None)
        if curl is None:
            curl = pycurl.Curl()
            self._local.curl = curl
            with self._lock:
                self._handles.append(curl)
        else:
            curl.reset()
        return curl

    def send(
        self, prepared: PreparedRequest, timeout: float, txn: Transaction | None
    ) -> Response:
        ex = Exchange(self.name, prepared, txn)
        curl = self._handle()
        names = {name.lower() for name, _ in prepared.headers}
        lines = [f"{name}: {value}" for name, value in prepared.headers]
        lines += [f"{h}:" for h in _SUPPRESSED if h.lower() not in names]
        curl.setopt(pycurl.URL, prepared.full_url)
        curl.setopt(pycurl.HTTP_VERSION, pycurl.CURL_HTTP_VERSION_1_1)
        curl.setopt(pycurl.HTTPHEADER, lines)
        curl.setopt(pycurl.NOSIGNAL, 1)
        curl.setopt(pycurl.CONNECTTIMEOUT_MS, max(1, int(timeout * 1000)))
        curl.setopt(pycurl.LOW_SPEED_LIMIT, 1)
        curl.setopt(pycurl.LOW_SPEED_TIME, max(1, math.ceil(timeout)))
        if prepared.method == "HEAD":
            curl.setopt(pycurl.NOBODY, 1)
        elif prepared.body or prepared.method in ("POST", "PUT", "PATCH"):
            curl.setopt(pycurl.POSTFIELDS, prepared.body)
            curl.setopt(pycurl.POSTFIELDSIZE, len(prepared.body))
        if prepared.method not in ("GET", "HEAD"):
            curl.setopt(pycurl.CUSTOMREQUEST, prepared.method)
        if not self.verify:
            curl.setopt(pycurl.SSL_VERIFYPEER, 0)
            curl.setopt(pycurl.SSL_VERIFYHOST, 0)
        elif self.ca_bundle:
            curl.setopt(pycurl.CAINFO, self.ca_bundle)

        head = _HeadParser(ex)
        curl.setopt(pycurl.HEADERFUNCTION, head.line)
        curl.setopt(pycurl.WRITEFUNCTION, head.body)
        try:
            curl.perform()
        except pycurl.error as exc:
            if head.error is not None:  # a listener or sink raised inside a callback
                raise head.error from None
            code, message = exc.args[0], exc.args[1] if len(exc.args) > 1 else ""
            raise ex.error(_classify(code), f"{message} (curl error {code})") from exc
        if ex.response is None:
            raise ex.error(errors.ProtocolError, "no response head received")
        peer = (curl.getinfo(pycurl.PRIMARY_IP), curl.getinfo(pycurl.PRIMARY_PORT))
        return ex.finish(peer)

    def close(self) -> None:
        with self._lock:
            for curl in self._handles:
                curl.close()
            self._handles.clear()
        self._local = threading.local()


class _HeadParser:
    """Collects curl's header lines; the head is complete at the blank line that ends a
    final (non-1xx) status block."""

    __slots__ = ("error", "ex", "headers", "reason", "status", "version")

    def __init__(self, ex: Exchange) -> None:
        self.ex = ex
        self.status = 0
        self.reason = ""
        self.version = "HTTP/1.1"
        self.headers: list[tuple[str, str]] = []
        self.error: BaseException | None = None

    def line(self, raw: bytes) -> int | None:
        text = raw.decode("latin-1").rstrip("\r\n")
        if text.startswith("HTTP/"):
            version, _, rest = text.partition(" ")
            code, _, reason = rest.partition(" ")
            self.status, self.reason, self.version = int(code), reason, version
            self.headers = []
        elif text and text[0] in " \t" and self.headers:  # obsolete line folding
            name, value = self.headers[-1]
            self.headers[-1] = (name, f"{value} {text.strip()}")
        elif text:
            name, _, value = text.partition(":")
            self.headers.append((name.strip(), value.strip()))
        elif self.status >= 200:
            try:
                self.ex.head(self.status, self.reason, self.headers, self.version)
            except Exception as exc:  # a listener raised; abort the transfer with it
                self.error = exc
                return -1
        return None

    def body(self, chunk: bytes) -> int | None:
        # pycurl would only print an exception raised here; keep it and abort instead
        try:
            self.ex.feed(chunk)
        except Exception as exc:
            self.error = exc
            return 0
        return None


def _classify(code: int) -> type[errors.TransportError]:
    if code in _TIMEOUT:
        return errors.TimeoutError
    if code in _TLS:
        return errors.TLSError
    if code in _CONNECT:
        return errors.ConnectError
    if code in _PROTOCOL:
        return errors.ProtocolError
    return errors.TransportError
