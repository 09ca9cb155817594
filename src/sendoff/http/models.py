"""The Request and the Response (one module, as each names the other).

The Request is Kohana's chainable getter/setter model, rendered to exact HTTP/1.1 bytes;
the Response is status, headers and body. Both are data: this module knows no client,
no transport and no application. What executes a request is anything with an
``execute(request)`` method (:class:`RequestClient`); which one a request without a
client of its own uses is decided above, by the resolver :func:`use_client_resolver`
installs.
"""

from __future__ import annotations

import base64
import json as _json
import re
from collections.abc import Callable, Mapping, Sequence
from http import HTTPStatus
from http.cookies import CookieError, SimpleCookie
from typing import Any, Generic, NamedTuple, Protocol, Self, TypeVar, overload

from ..core.display import shown
from ..core.emitter import Emitter
from ..core.errors import InvalidRequest, SendoffError
from ..core.log import redact_url
from ..core.seconds import is_seconds
from .checks import (
    check_controls,
    check_host_header,
    check_token,
    describe,
    store_field,
    utf8,
)
from .forms import FieldValue, decode_fields, encode_fields
from .frame import current_frame
from .headers import Headers, HeadersInput
from .url import URL, parse_uri

USER_AGENT = "sendoff/0.1.0"
FORM_TYPE = "application/x-www-form-urlencoded"
JSON_TYPE = "application/json"
PROTOCOLS = ("HTTP/1.1", "HTTP/1.0")
#: Methods that send Content-Length even without a body.
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
_NO_NAMES: frozenset[str] = frozenset()

_MISSING: Any = object()

#: Compact JSON, non-ASCII kept; one encoder, as json.dumps with options builds one per call.
encode_json = _json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

#: A query or form value as callers give it: one value, or a list for a repeated key.
FieldInput = str | bytes | int | Sequence[str | bytes | int]
#: A header value as callers give it.
HeaderInput = str | bytes | int

T = TypeVar("T")
ResultT = TypeVar("ResultT")
ResultT_co = TypeVar("ResultT_co", covariant=True)


class RequestClient(Protocol[ResultT_co]):
    """What executes a :class:`Request`: sendoff's clients, or anything with this method.

    ``ResultT_co`` is what :meth:`Request.execute` returns through it: a
    :class:`Response` for the blocking clients, a receipt for the others.
    """

    def execute(self, request: Request[Any], /) -> ResultT_co: ...


#: Finds the client of a request that has none; the clients package installs it.
ClientResolver = Callable[["Request[Any]"], RequestClient[Any]]
_resolver: ClientResolver | None = None


def use_client_resolver(resolver: ClientResolver) -> None:
    """Decide which client executes a request given none (``sendoff.clients`` calls this
    on import with its default-client registry)."""
    global _resolver
    _resolver = resolver


class RouteMatch(NamedTuple):
    """What routing found for an internal request: the route (an ``hmvc.Route``), the
    controller's directory, the controller, the action and the other parameters."""

    route: Any
    directory: str
    controller: str
    action: str
    params: dict[str, str]


_NO_MATCH = RouteMatch(None, "", "", "", {})


class PreparedRequest(NamedTuple):
    """A request reduced to what goes on the wire; what transports consume."""

    method: str
    url: URL
    target: str  # path and query, e.g. "/submit?a=1"
    headers: list[tuple[str, str]]
    body: bytes
    protocol: str = "HTTP/1.1"

    @property
    def full_url(self) -> str:
        return f"{self.url.scheme}://{self.url.host_header}{self.target}"

    def wire(self) -> bytes:
        """The exact request bytes: request line, headers, blank line, body."""
        lines = [f"{self.method} {self.target} {self.protocol}"]
        lines += [f"{k}: {v}" for k, v in self.headers]
        lines += ["", ""]
        head = "\r\n".join(lines).encode("latin-1")
        return head + self.body if self.body else head


#: The first segment of a URI without a scheme that names a host rather than a route:
#: ``host:port``, an IPv4 or bracketed IPv6 address, ``localhost``, or a dotted name
#: ending in a letter (``example.com``, ``hooks.slack.com``).
_HOST_LIKE = re.compile(
    r"(?:[^/?#:@]+:[0-9]{1,5}|\[[0-9A-Fa-f:.]*\](?::[0-9]*)?|[0-9]{1,3}(?:\.[0-9]{1,3}){3}"
    r"|localhost|(?:[A-Za-z0-9_-]+\.)+[A-Za-z][A-Za-z0-9-]*)\Z",
    re.IGNORECASE,
)


def request_uri(uri: str) -> URL:
    """``uri`` parsed for a Request: refused when empty, or when it has no scheme but
    starts with what looks like a host (``example.com/hook``, ``localhost:8000/x``)
    outside an App serving a request, where it could never be routed anyway."""
    url = parse_uri(uri)
    if url.scheme:
        return url
    text = uri.strip()
    if not text:
        raise InvalidRequest(
            "uri", "is empty: write '/' for the App's root, or a URL such as "
            "'https://example.com/path'"
        )
    if text.startswith("/") or current_frame() is not None:
        return url  # a path, or inside an App: Kohana's internal request, as it always was
    first = re.split(r"[/?#]", text, maxsplit=1)[0]
    if "@" in first:  # user:password@host without a scheme: never echoed
        raise InvalidRequest(
            "uri", "its first segment holds '@' (credentials?) but the URI has no scheme: write"
            " https:// (or http://) before it for an external request"
        )
    if _HOST_LIKE.match(first):
        suggestion = redact_url("https://" + text)
        raise InvalidRequest(
            "uri", f"{first!r} looks like a host but the URI has no scheme: write "
            f"{suggestion!r} (or http://) for an external request; a URI without '://' is an "
            "internal (HMVC) route, written with a leading '/' when its first segment has a dot"
        )
    return url


class Request(Generic[ResultT]):
    """An HTTP request, internal (a route path) or external (a URL with ``://``).

    Every Kohana-style method is a setter when given a value (and returns the request, so
    calls chain) and a getter without one::

        Request("http://example.com/submit").method("POST").post("foo", "bar").execute()

    ``ResultT`` is what :meth:`execute` returns: a :class:`Response` unless the request
    was given a client that returns something else (``.client(FireAndForget())`` makes
    it a ``Request[Receipt]``). Bad input raises :class:`~sendoff.InvalidRequest` at the
    call that brings it.
    """

    __slots__ = (
        "__weakref__",
        "_body",
        "_body_kind",
        "_client",
        "_client_ip",
        "_cookies",
        "_deadline",
        "_emitter",
        "_headers",
        "_match",
        "_method",
        "_post",
        "_protocol",
        "_query",
        "_timeout",
        "_url",
    )

    @overload
    def __init__(
        self: Request[Response],
        uri: str | URL,
        method: str = "GET",
        *,
        client: None = None,
        query: Mapping[str, FieldInput | None] | None = None,
        post: Mapping[str, FieldInput | None] | None = None,
        headers: HeadersInput = None,
        body: bytes | str | None = None,
        json: Any = _MISSING,
        timeout: float | None = None,
    ) -> None: ...
    @overload
    def __init__(
        self: Request[T],
        uri: str | URL,
        method: str = "GET",
        *,
        client: RequestClient[T],
        query: Mapping[str, FieldInput | None] | None = None,
        post: Mapping[str, FieldInput | None] | None = None,
        headers: HeadersInput = None,
        body: bytes | str | None = None,
        json: Any = _MISSING,
        timeout: float | None = None,
    ) -> None: ...
    def __init__(
        self,
        uri: str | URL,
        method: str = "GET",
        *,
        client: RequestClient[Any] | None = None,
        query: Mapping[str, FieldInput | None] | None = None,
        post: Mapping[str, FieldInput | None] | None = None,
        headers: HeadersInput = None,
        body: bytes | str | None = None,
        json: Any = _MISSING,
        timeout: float | None = None,
    ) -> None:
        self._method = "GET" if method == "GET" else check_token("method", method).upper()
        self._url: URL = uri if isinstance(uri, URL) else request_uri(uri)
        self._query: dict[str, FieldValue] | None = (
            decode_fields(self._url.query) if self._url.query else None
        )
        self._post: dict[str, FieldValue] | None = None
        self._headers: Headers | None = None
        self._cookies: dict[str, str] | None = None
        self._body: bytes | None = None
        self._body_kind: str | None = None  # None, "form", "raw" or "json"
        self._client = client
        self._protocol = "HTTP/1.1"
        self._emitter: Emitter | None = None
        self._timeout: float | None = None
        self._deadline: float | None = None
        self._match = _NO_MATCH
        self._client_ip: str | None = None
        if query:
            self.query(query)
        if post:
            self._post = _new_fields("post", post)
            self._body_kind = "form" if self._post else None
        if headers:
            self._headers = Headers(headers)
        if body is not None:
            self.body(body)
        if json is not _MISSING:
            self.json(json)
        if timeout is not None:
            self.timeout(timeout)

    @overload
    @classmethod
    def factory(cls, uri: str | URL, method: str = "GET") -> Request[Response]: ...
    @overload
    @classmethod
    def factory(
        cls, uri: str | URL, method: str = "GET", *, client: RequestClient[T]
    ) -> Request[T]: ...
    @classmethod
    def factory(
        cls, uri: str | URL, method: str = "GET", *, client: RequestClient[Any] | None = None
    ) -> Request[Any]:
        """Kohana's ``Request::factory($uri)``: the same as ``Request(uri)``."""
        if client is None:
            return cls(uri, method)
        return cls(uri, method, client=client)

    def __repr__(self) -> str:
        return f"<Request {self._method} {self.url(redacted=True)}>"

    # -- identity -------------------------------------------------------------------------
    @overload
    def method(self) -> str: ...
    @overload
    def method(self, value: str) -> Self: ...
    def method(self, value: str = _MISSING) -> str | Self:
        """The HTTP method (upper case); set it with ``method("POST")``."""
        if value is _MISSING:
            return self._method
        self._method = check_token("method", value).upper()
        return self

    @overload
    def uri(self) -> str: ...
    @overload
    def uri(self, value: str) -> Self: ...
    def uri(self, value: str = _MISSING) -> str | Self:
        """The URI without its query string (``"/"`` for the App's root, as in Kohana);
        setting one merges its query into query()."""
        if value is _MISSING:
            return self._url.text(query="") or "/"  # Kohana: the root is "/"
        self._url = request_uri(value)
        if self._url.query:
            self.query(decode_fields(self._url.query))
        return self

    @overload
    def protocol(self) -> str: ...
    @overload
    def protocol(self, value: str) -> Self: ...
    def protocol(self, value: str = _MISSING) -> str | Self:
        """The protocol of the request line, ``"HTTP/1.1"`` (default) or ``"HTTP/1.0"``;
        any case is accepted (``protocol("http/1.1")``, as Kohana normalises it)."""
        if value is _MISSING:
            return self._protocol
        if isinstance(value, str):
            value = value.strip().upper()
        if value not in PROTOCOLS:
            raise InvalidRequest("protocol", f"{value!r} is not one of {', '.join(PROTOCOLS)}")
        self._protocol = value
        return self

    def is_external(self) -> bool:
        """True when the URI is a URL (it contains ``://``), as in Kohana."""
        return self._url.is_external

    def secure(self) -> bool:
        """True for an https URL."""
        return self._url.scheme == "https"

    @property
    def parsed_url(self) -> URL:
        """The parsed URI (scheme, host, port, path)."""
        return self._url

    def url(self, *, redacted: bool = False) -> str:
        """The full URI with the merged query string; ``redacted`` hides its credentials
        (the :mod:`sendoff.redaction` policy: password, secret query values)."""
        text = self._url.text(query=self.query_string(), with_credentials=True)
        return redact_url(text) if redacted else text

    def retarget(self, uri: str) -> Self:
        """Point the request at ``uri``, whose query replaces the current one (what a
        redirect does; :meth:`uri` merges queries instead)."""
        self._url = parse_uri(uri)
        self._query = decode_fields(self._url.query) if self._url.query else None
        return self

    # -- parameters -----------------------------------------------------------------------
    @overload
    def query(self) -> dict[str, FieldValue]: ...
    @overload
    def query(self, key: str) -> FieldValue | None: ...
    @overload
    def query(self, key: str, value: FieldInput | None) -> Self: ...
    @overload
    def query(self, key: Mapping[str, FieldInput | None]) -> Self: ...
    def query(self, key: Any = _MISSING, value: Any = _MISSING) -> Any:
        """Query-string parameters.

        ``query()`` returns a dict copy; ``query("k")`` one value (or None);
        ``query("k", "v")`` sets one; ``query({...})`` sets several; ``query("k", None)``
        removes one. A query written in the URI is already merged in.
        """
        if key is _MISSING:
            return dict(self._query) if self._query else {}
        result = _fields("query", self._query, key, value)
        if isinstance(result, _Getter):
            return result.value
        self._query = result or None
        return self

    @overload
    def post(self) -> dict[str, FieldValue]: ...
    @overload
    def post(self, key: str) -> FieldValue | None: ...
    @overload
    def post(self, key: str, value: FieldInput | None) -> Self: ...
    @overload
    def post(self, key: Mapping[str, FieldInput | None]) -> Self: ...
    def post(self, key: Any = _MISSING, value: Any = _MISSING) -> Any:
        """Form fields, sent as ``application/x-www-form-urlencoded``; same calls as query()."""
        if key is _MISSING:
            return dict(self._post) if self._post else {}
        setting = value is not _MISSING or isinstance(key, Mapping)
        if setting and self._body_kind in ("raw", "json"):
            raise InvalidRequest("post", "form fields cannot be combined with a body()/json()")
        result = _fields("post", self._post, key, value)
        if isinstance(result, _Getter):
            return result.value
        self._post = result
        self._body_kind = "form" if self._post else None
        return self

    def query_string(self) -> str:
        """The encoded query string (without ``?``)."""
        return encode_fields(self._query) if self._query else ""

    # -- headers and cookies --------------------------------------------------------------
    @overload
    def headers(self) -> Headers: ...
    @overload
    def headers(self, key: str) -> str | None: ...
    @overload
    def headers(self, key: str, value: HeaderInput | None) -> Self: ...
    @overload
    def headers(self, key: Mapping[str, HeaderInput]) -> Self: ...
    def headers(self, key: Any = _MISSING, value: Any = _MISSING) -> Any:
        """Request headers; ``headers()`` returns the live :class:`Headers` object."""
        if self._headers is None:
            self._headers = Headers()
        if key is _MISSING:
            return self._headers
        if isinstance(key, Mapping):
            for k, v in key.items():
                self._headers[k] = v
            return self
        if value is _MISSING:
            return self._headers.get(key)
        if value is None:
            self._headers.pop(key, None)
        else:
            self._headers[key] = value
        return self

    @overload
    def cookie(self) -> dict[str, str]: ...
    @overload
    def cookie(self, key: str) -> str | None: ...
    @overload
    def cookie(self, key: str, value: str | int | None) -> Self: ...
    @overload
    def cookie(self, key: Mapping[str, str | int | None]) -> Self: ...
    def cookie(self, key: Any = _MISSING, value: Any = _MISSING) -> Any:
        """Cookies sent in the ``Cookie`` header; ``cookie()`` returns a dict copy."""
        if key is _MISSING:
            return dict(self._cookies) if self._cookies else {}
        if isinstance(key, Mapping):
            for k, v in key.items():
                self.cookie(k, v)
            return self
        if value is _MISSING:
            return self._cookies.get(key) if self._cookies else None
        if self._cookies is None:
            self._cookies = {}
        if value is None:
            self._cookies.pop(check_token("cookie name", key), None)
            return self
        self._cookies[check_token("cookie name", key)] = _cookie_value(key, value)
        return self

    # -- body -----------------------------------------------------------------------------
    @overload
    def body(self) -> bytes: ...
    @overload
    def body(self, value: bytes | str) -> Self: ...
    def body(self, value: bytes | str = _MISSING) -> bytes | Self:
        """The body bytes. Set raw bytes (a str is UTF-8 encoded); the getter returns what
        will be sent, including encoded post() fields or json()."""
        if value is _MISSING:
            return self._encoded_body()
        if self._body_kind == "form":
            raise InvalidRequest("body", "a raw body cannot be combined with post() fields")
        if isinstance(value, str):
            value = utf8("body", value)
        elif isinstance(value, bytearray | memoryview):
            value = bytes(value)
        elif not isinstance(value, bytes):
            raise InvalidRequest("body", f"must be bytes or str, not {type(value).__name__}")
        self._body = value
        self._body_kind = "raw"
        return self

    @overload
    def json(self) -> Any: ...
    @overload
    def json(self, value: Any) -> Self: ...
    def json(self, value: Any = _MISSING) -> Any:
        """Set a JSON body (``Content-Type: application/json``); get the body decoded."""
        if value is _MISSING:
            raw = self._encoded_body()
            return _json.loads(raw) if raw else None
        if self._body_kind == "form":
            raise InvalidRequest("json", "a JSON body cannot be combined with post() fields")
        try:
            encoded = encode_json(value)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest("json", f"not JSON-serialisable: {exc}") from None
        self._body = utf8("json", encoded)
        self._body_kind = "json"
        return self

    def body_kind(self) -> str | None:
        """How the body was given: ``"form"`` (post()), ``"json"``, ``"raw"`` (body()),
        or None when there is none."""
        return self._body_kind

    def drop_body(self) -> Self:
        """Forget the body, its fields and its Content-Type/Content-Length headers (a
        redirect that switches to GET)."""
        self._post = None
        self._body = None
        self._body_kind = None
        if self._headers is not None:
            for name in ("content-type", "content-length"):
                self._headers.pop(name, None)
        return self

    def _encoded_body(self) -> bytes:
        if self._body_kind == "form":
            assert self._post is not None
            return encode_fields(self._post).encode("ascii")
        return self._body or b""

    # -- execution ------------------------------------------------------------------------
    @overload
    def client(self) -> RequestClient[ResultT]: ...
    @overload
    def client(self, value: RequestClient[T]) -> Request[T]: ...
    def client(self, value: RequestClient[Any] = _MISSING) -> Any:
        """The client that executes this request; without one, the default for its kind."""
        if value is _MISSING:
            if self._client is not None:
                return self._client
            return _resolve(self)
        self._client = value
        return self

    @overload
    def timeout(self) -> float | None: ...
    @overload
    def timeout(self, value: float | None) -> Self: ...
    def timeout(self, value: float | None = _MISSING) -> float | Self | None:
        """A timeout in seconds for this request, overriding its client's."""
        if value is _MISSING:
            return self._timeout
        if value is not None and not is_seconds(value):
            raise InvalidRequest("timeout", f"must be a positive number of seconds, not {value!r}")
        self._timeout = None if value is None else float(value)
        return self

    @overload
    def deadline(self) -> float | None: ...
    @overload
    def deadline(self, value: float | None) -> Self: ...
    def deadline(self, value: float | None = _MISSING) -> float | Self | None:
        """Seconds the whole exchange may take (connect, send, the complete response),
        overriding its client's; :meth:`timeout` bounds each wait within it."""
        if value is _MISSING:
            return self._deadline
        if value is not None and not is_seconds(value):
            raise InvalidRequest("deadline", f"must be a positive number of seconds, not {value!r}")
        self._deadline = None if value is None else float(value)
        return self

    @property
    def emitter(self) -> Emitter:
        """This request's own event emitter; its listeners apply to this request only."""
        if self._emitter is None:
            self._emitter = Emitter()
        return self._emitter

    def emitter_or_none(self) -> Emitter | None:
        """This request's own emitter if one was made (by reading :attr:`emitter`)."""
        return self._emitter

    def execute(self) -> ResultT:
        """Execute through this request's client: a Response, or a Receipt for
        fire-and-forget clients."""
        client = self._client
        if client is None:
            client = _resolve(self)
        result: ResultT = client.execute(self)
        return result

    # -- wire -----------------------------------------------------------------------------
    def prepare(self) -> PreparedRequest:
        """The request as transports send it; raises InvalidRequest if it cannot be sent."""
        url = self._url
        if not url.scheme:
            raise InvalidRequest(
                "uri", f"{url.path!r} is internal (no '://'); it has no wire form"
            )
        target = f"{url.path}?{encode_fields(self._query)}" if self._query else url.path
        body = self._encoded_body()
        if not self._headers and not self._cookies and url.username is None:
            headers = [("Host", url.host_header), ("User-Agent", USER_AGENT)]  # the common case
            names: set[str] | frozenset[str] = _NO_NAMES
        else:
            headers = self._user_headers(url)
            names = {k.lower() for k, _ in headers}
        kind = self._body_kind
        if kind in ("form", "json") and "content-type" not in names:
            headers.append(("Content-Type", FORM_TYPE if kind == "form" else JSON_TYPE))
        if "transfer-encoding" in names:
            raise InvalidRequest("headers", "Transfer-Encoding is not supported; bodies are sized")
        if body or self._method in BODY_METHODS:
            size = str(len(body))
            if "content-length" in names:
                given = self._headers.get("content-length") if self._headers else None
                if given != size:
                    raise InvalidRequest(
                        "headers", f"Content-Length {given} does not match the body ({size} bytes)"
                    )
            else:
                headers.append(("Content-Length", size))
        return PreparedRequest(self._method, url, target, headers, body, self._protocol)

    def _user_headers(self, url: URL) -> list[tuple[str, str]]:
        """Host, the user's headers in order, then the defaults they did not set."""
        user = self._headers.multi_items() if self._headers else []
        names = {k.lower() for k, _ in user}
        headers: list[tuple[str, str]] = [] if "host" in names else [("Host", url.host_header)]
        cookies = self._cookies
        cookie_text = "; ".join(f"{k}={v}" for k, v in cookies.items()) if cookies else ""
        for name, value in user:
            low = name.lower()
            if low == "host":
                check_host_header(value)
            elif cookie_text and low == "cookie":
                value, cookie_text = f"{value}; {cookie_text}", ""
            headers.append((name, value))
        if "user-agent" not in names:
            headers.append(("User-Agent", USER_AGENT))
        if url.username is not None and "authorization" not in names:
            secret = f"{url.username}:{url.password or ''}".encode()
            headers.append(("Authorization", "Basic " + base64.b64encode(secret).decode()))
        if cookie_text:
            headers.append(("Cookie", cookie_text))
        return headers

    def render(self) -> bytes:
        """The exact HTTP/1.1 request bytes this request puts on the wire."""
        return self.prepare().wire()

    def copy(self) -> Request[ResultT]:
        """A copy whose fields change independently; it shares this request's own
        emitter, so listeners registered on either apply to both (redirects and retries
        rely on that)."""
        new: Request[ResultT] = Request.__new__(Request)
        new._method = self._method
        new._url = self._url
        new._query = _copy_fields(self._query)
        new._post = _copy_fields(self._post)
        new._headers = self._headers.copy() if self._headers is not None else None
        new._cookies = dict(self._cookies) if self._cookies else None
        new._body = self._body
        new._body_kind = self._body_kind
        new._client = self._client
        new._protocol = self._protocol
        new._emitter = self._emitter
        new._timeout = self._timeout
        new._deadline = self._deadline
        new._match = _NO_MATCH
        new._client_ip = None
        return new

    # -- HMVC (internal requests) ---------------------------------------------------------
    def routed(self, match: RouteMatch) -> Self:
        """Record what routing found (the HMVC App calls this when it routes the request)."""
        self._match = match
        return self

    @overload
    def param(self) -> dict[str, str]: ...
    @overload
    def param(self, key: str) -> str | None: ...
    @overload
    def param(self, key: str, default: T) -> str | T: ...
    def param(self, key: str = _MISSING, default: Any = None) -> Any:
        """A route parameter (Kohana's ``$request->param()``); without a key, a dict of
        them all. ``directory``, ``controller`` and ``action`` have methods of their own."""
        params = self._match.params
        if key is _MISSING:
            return dict(params)
        return params.get(key, default)

    def route(self) -> Any:
        """The ``hmvc.Route`` that matched this request, once an App has routed it."""
        return self._match.route

    def _matched(self, field: str, value: str) -> str | Self:
        """Get (``value`` missing) or set one string field of the route match."""
        if value is _MISSING:
            current: str = getattr(self._match, field)
            return current
        changes: dict[str, Any] = {field: value}
        self._match = self._match._replace(**changes)
        return self

    @overload
    def directory(self) -> str: ...
    @overload
    def directory(self, value: str) -> Self: ...
    def directory(self, value: str = _MISSING) -> str | Self:
        """The controller's directory (``admin`` for ``admin/users``), or ``""``."""
        return self._matched("directory", value)

    @overload
    def controller(self) -> str: ...
    @overload
    def controller(self, value: str) -> Self: ...
    def controller(self, value: str = _MISSING) -> str | Self:
        """The controller name from the route; set it in ``before()`` to re-dispatch."""
        return self._matched("controller", value)

    @overload
    def action(self) -> str: ...
    @overload
    def action(self, value: str) -> Self: ...
    def action(self, value: str = _MISSING) -> str | Self:
        """The action name; a controller's ``before()`` may change it."""
        return self._matched("action", value)

    @staticmethod
    def initial() -> Request[Any] | None:
        """The main request being served in this context (Kohana's ``Request::initial()``)."""
        frame = current_frame()
        main: Request[Any] | None = frame.initial if frame else None
        return main

    @staticmethod
    def current() -> Request[Any] | None:
        """The request executing now: the main one or a sub-request (``Request::current()``)."""
        frame = current_frame()
        now: Request[Any] | None = frame.request if frame else None
        return now

    def is_initial(self) -> bool:
        """True for the main request of the App serving this context."""
        return self is Request.initial()

    @overload
    def client_ip(self) -> str | None: ...
    @overload
    def client_ip(self, value: str) -> Self: ...
    def client_ip(self, value: str = _MISSING) -> str | Self | None:
        """The address of the client that sent the main request (Kohana's
        ``Request::$client_ip``); sub-requests report their main request's."""
        if value is not _MISSING:
            self._client_ip = value
            return self
        ip = self._client_ip
        if ip is None:
            main = Request.initial()
            if main is not None and main is not self:
                ip = main._client_ip
        return ip

    def is_ajax(self) -> bool:
        """True when ``X-Requested-With: XMLHttpRequest`` was sent (Kohana's is_ajax())."""
        value = self._headers.get("x-requested-with") if self._headers else None
        return value is not None and value.lower() == "xmlhttprequest"


def _resolve(request: Request[Any]) -> RequestClient[Any]:
    if _resolver is None:
        raise InvalidRequest("client", "no client given and no default client is registered")
    return _resolver(request)


class _Getter(NamedTuple):
    value: Any


def _fields(field: str, store: dict[str, FieldValue] | None, key: Any, value: Any) -> Any:
    """The new field dict for a setter call, or a _Getter for a getter call."""
    if isinstance(key, Mapping):
        store = dict(store) if store else {}
        for k, v in key.items():
            store_field(field, store, k, v)
        return store
    if not isinstance(key, str):
        raise InvalidRequest(field, f"keys must be str, not {type(key).__name__}")
    if value is _MISSING:
        return _Getter(store.get(key) if store else None)
    store = store if store is not None else {}
    store_field(field, store, key, value)
    return store


def _new_fields(field: str, fields: Mapping[str, Any]) -> dict[str, FieldValue] | None:
    store: dict[str, FieldValue] = {}
    for key, value in fields.items():
        store_field(field, store, key, value)
    return store or None


def _copy_fields(fields: dict[str, FieldValue] | None) -> dict[str, FieldValue] | None:
    if not fields:
        return None
    return {k: list(v) if isinstance(v, list) else v for k, v in fields.items()}


def _cookie_value(name: str, value: Any) -> str:
    """A cookie value as it goes in the ``Cookie`` header: ASCII, no ``;`` and no control
    character (C0 but HTAB, DEL); errors name the character, never the value."""
    field = f"cookie {name!r}"
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be str or int, not {type(value).__name__}")
    check_controls(field, value)
    if not value.isascii():
        position = next(i for i, ch in enumerate(value) if not ch.isascii())
        raise InvalidRequest(
            field, f"contains {describe(value[position])} at position {position}: "
            "not ASCII; encode it first"
        )
    if ";" in value:
        raise InvalidRequest(field, f"contains ';' at position {value.index(';')}")
    return value


# -- the Response ------------------------------------------------------------------------
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
        request: Request[Any] | None = None,
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
            raise HttpError(self, self.request)
        return self


class HttpError(SendoffError):
    """A 4xx or 5xx response, raised by the ``HttpError`` subscriber and
    :meth:`Response.raise_for_status`."""

    def __init__(self, response: Response, request: Request[Any] | None = None) -> None:
        self.response = response
        self.request = request
        where = f" for {request.method()} {request.url(redacted=True)}" if request else ""
        # the server chose the reason: escape what a terminal or log viewer would act on
        super().__init__(f"HTTP {response.status} {shown(response.reason)}{where}")
