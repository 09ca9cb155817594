"""The Response: status, headers and body of an HTTP answer (or an internal one)."""

from __future__ import annotations

import json as _json
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import TYPE_CHECKING, Any

from .headers import Headers, HeadersInput

if TYPE_CHECKING:
    from .request import Request


def reason_phrase(status: int) -> str:
    """The standard reason phrase of ``status`` ("" when there is none)."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


class Response:
    """An HTTP response.

    ``body`` is bytes; assigning a str stores its UTF-8 encoding, and an object with a
    ``render()`` method (such as a View) is rendered. ``text`` decodes with the charset
    of ``Content-Type`` (UTF-8 when none), ``json()`` parses the body.
    """

    __slots__ = ("_body", "headers", "http_version", "reason", "request", "status", "transfer_info")

    def __init__(
        self,
        status: int = 200,
        headers: HeadersInput | Headers = None,
        body: bytes | str | Any = b"",
        *,
        reason: str | None = None,
        request: Request | None = None,
        http_version: str = "HTTP/1.1",
    ) -> None:
        self.status = int(status)
        self.reason = reason_phrase(self.status) if reason is None else reason
        self.headers = headers if isinstance(headers, Headers) else Headers(headers)
        self._body = b""
        self.body = body
        self.request = request
        self.http_version = http_version
        self.transfer_info: dict[str, Any] = {}

    def __repr__(self) -> str:
        return f"<Response [{self.status} {self.reason}]>"

    @property
    def body(self) -> bytes:
        return self._body

    @body.setter
    def body(self, value: bytes | str | Any) -> None:
        if isinstance(value, bytes):
            self._body = value
        elif isinstance(value, str):
            self._body = value.encode("utf-8")
        elif isinstance(value, bytearray | memoryview):
            self._body = bytes(value)
        elif callable(getattr(value, "render", None)):
            self._body = str(value.render()).encode("utf-8")
        else:
            raise TypeError(f"body must be bytes, str or renderable, not {type(value).__name__}")

    @property
    def charset(self) -> str:
        """The charset named in ``Content-Type``, or ``"utf-8"``."""
        ctype = self.headers.get("content-type", "")
        for part in ctype.split(";")[1:]:
            key, _, value = part.strip().partition("=")
            if key.lower() == "charset" and value:
                return value.strip("\"'")
        return "utf-8"

    @property
    def text(self) -> str:
        """The body decoded with :attr:`charset` (undecodable bytes replaced)."""
        try:
            return self._body.decode(self.charset, errors="replace")
        except LookupError:
            return self._body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        """The body parsed as JSON."""
        return _json.loads(self._body)

    @property
    def cookies(self) -> dict[str, str]:
        """Cookies set by this response (``Set-Cookie``), name to value."""
        out: dict[str, str] = {}
        for header in self.headers.get_all("set-cookie"):
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(header)
            except CookieError:
                continue
            for name, morsel in jar.items():
                out[name] = morsel.value
        return out

    @property
    def ok(self) -> bool:
        """True for statuses below 400."""
        return self.status < 400

    @property
    def is_redirect(self) -> bool:
        return self.status in (301, 302, 303, 307, 308) and "location" in self.headers

    def raise_for_status(self) -> Response:
        """Raise :class:`~sendoff.HttpError` for a 4xx or 5xx status; else return self."""
        if self.status >= 400:
            from ..errors import HttpError

            raise HttpError(self, self.request)
        return self
