"""The Request: Kohana's chainable getter/setter model, rendered to exact HTTP/1.1 bytes."""

from __future__ import annotations

import base64
import json as _json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from .._logging import redact_url
from ..errors import InvalidRequest
from .checks import check_text, check_token, field_value, utf8
from .forms import FieldValue, decode_fields, encode_fields
from .headers import Headers, HeadersInput
from .url import URL, parse_uri

if TYPE_CHECKING:
    from ..clients.base import Client
    from ..events.emitter import Emitter
    from ..hmvc.routes import Route

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

#: Slots of the HMVC block at the end of Request; only the App sets them.
_HMVC_SLOTS = ("_action", "_client_ip", "_controller", "_directory", "_params", "_route")


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


class Request:
    """An HTTP request, internal (a route path) or external (a URL with ``://``).

    Every Kohana-style method is a setter when given a value (and returns the request, so
    calls chain) and a getter without one::

        Request("http://example.com/submit").method("POST").post("foo", "bar").execute()

    Bad input raises :class:`~sendoff.InvalidRequest` at the call that brings it.
    """

    __slots__ = (
        "__weakref__",
        "_body",
        "_body_kind",
        "_client",
        "_cookies",
        "_emitter",
        "_headers",
        "_method",
        "_post",
        "_protocol",
        "_query",
        "_timeout",
        "_url",
        *_HMVC_SLOTS,
    )

    def __init__(
        self,
        uri: str = "",
        method: str = "GET",
        *,
        client: Client | None = None,
        query: Mapping[str, Any] | None = None,
        post: Mapping[str, Any] | None = None,
        headers: HeadersInput = None,
        body: bytes | str | None = None,
        json: Any = _MISSING,
        timeout: float | None = None,
    ) -> None:
        self._method = "GET" if method == "GET" else check_token("method", method).upper()
        self._url: URL = parse_uri(uri)
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

    @classmethod
    def factory(cls, uri: str = "", **kwargs: Any) -> Request:
        """Kohana's ``Request::factory($uri)``: the same as ``Request(uri)``."""
        return cls(uri, **kwargs)

    def __repr__(self) -> str:
        return f"<Request {self._method} {self.url(redacted=True)}>"

    # -- identity -------------------------------------------------------------------------
    def method(self, value: str = _MISSING) -> Any:
        """The HTTP method (upper case); set it with ``method("POST")``."""
        if value is _MISSING:
            return self._method
        self._method = check_token("method", value).upper()
        return self

    def uri(self, value: str = _MISSING) -> Any:
        """The URI without its query string; setting one merges its query into query()."""
        if value is _MISSING:
            return self._url.text(query="")
        self._url = parse_uri(value)
        if self._url.query:
            self.query(decode_fields(self._url.query))
        return self

    def protocol(self, value: str = _MISSING) -> Any:
        """The protocol of the request line, ``"HTTP/1.1"`` (default) or ``"HTTP/1.0"``."""
        if value is _MISSING:
            return self._protocol
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
        """The full URI with the merged query string; ``redacted`` hides the password."""
        text = self._url.text(query=self.query_string(), with_credentials=True)
        return redact_url(text) if redacted else text

    # -- parameters -----------------------------------------------------------------------
    def query(self, key: Any = _MISSING, value: Any = _MISSING) -> Any:
        """Query-string parameters.

        ``query()`` returns a dict copy; ``query("k")`` one value (or None);
        ``query("k", "v")`` sets one; ``query({...})`` sets several; ``query("k", None)``
        removes one. A query written in the URI is already merged in.
        """
        if key is _MISSING:
            return dict(self._query) if self._query else {}
        result = self._fields("query", self._query, key, value)
        if isinstance(result, _Getter):
            return result.value
        self._query = result or None
        return self

    def post(self, key: Any = _MISSING, value: Any = _MISSING) -> Any:
        """Form fields, sent as ``application/x-www-form-urlencoded``; same calls as query()."""
        if key is _MISSING:
            return dict(self._post) if self._post else {}
        setting = value is not _MISSING or isinstance(key, Mapping)
        if setting and self._body_kind in ("raw", "json"):
            raise InvalidRequest("post", "form fields cannot be combined with a body()/json()")
        result = self._fields("post", self._post, key, value)
        if isinstance(result, _Getter):
            return result.value
        self._post = result
        self._body_kind = "form" if self._post else None
        return self

    def _fields(
        self, field: str, store: dict[str, FieldValue] | None, key: Any, value: Any
    ) -> Any:
        if isinstance(key, Mapping):
            store = dict(store) if store else {}
            for k, v in key.items():
                _store_field(field, store, k, v)
            return store
        if not isinstance(key, str):
            raise InvalidRequest(field, f"keys must be str, not {type(key).__name__}")
        if value is _MISSING:
            return _Getter(store.get(key) if store else None)
        store = store if store is not None else {}
        _store_field(field, store, key, value)
        return store

    def query_string(self) -> str:
        """The encoded query string (without ``?``)."""
        return encode_fields(self._query) if self._query else ""

    # -- headers and cookies --------------------------------------------------------------
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
    def body(self, value: bytes | str = _MISSING) -> Any:
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

    def _encoded_body(self) -> bytes:
        if self._body_kind == "form":
            assert self._post is not None
            return encode_fields(self._post).encode("ascii")
        return self._body or b""

    # -- execution ------------------------------------------------------------------------
    def client(self, value: Client = _MISSING) -> Any:
        """The client that executes this request; without one, the default for its kind."""
        if value is _MISSING:
            if self._client is not None:
                return self._client
            from ..clients.default import resolve_client

            return resolve_client(self)
        self._client = value
        return self

    def timeout(self, value: float | None = _MISSING) -> Any:
        """A timeout in seconds for this request, overriding its client's."""
        if value is _MISSING:
            return self._timeout
        if value is not None and (not isinstance(value, int | float) or value <= 0):
            raise InvalidRequest("timeout", f"must be a positive number of seconds, not {value!r}")
        self._timeout = None if value is None else float(value)
        return self

    @property
    def emitter(self) -> Emitter:
        """This request's own event emitter; its listeners apply to this request only."""
        if self._emitter is None:
            from ..events.emitter import Emitter

            self._emitter = Emitter()
        return self._emitter

    def execute(self) -> Any:
        """Execute through this request's client: a Response, or a Receipt for
        fire-and-forget clients."""
        client = self._client
        if client is None:
            from ..clients.default import resolve_client

            client = resolve_client(self)
        return client.execute(self)

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
        user = self._headers._items if self._headers else []
        names = {k.lower() for k, _ in user}
        headers: list[tuple[str, str]] = [] if "host" in names else [("Host", url.host_header)]
        cookies = self._cookies
        cookie_text = "; ".join(f"{k}={v}" for k, v in cookies.items()) if cookies else ""
        for name, value in user:
            if cookie_text and name.lower() == "cookie":
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

    def copy(self) -> Request:
        """A copy whose fields change independently; it shares this request's own
        emitter, so listeners registered on either apply to both (redirects and retries
        rely on that)."""
        new = Request.__new__(Request)
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
        return new

    def _set_url(self, uri: str) -> None:
        """Point the request at ``uri``, whose query replaces the current one (redirects)."""
        self._url = parse_uri(uri)
        self._query = decode_fields(self._url.query) if self._url.query else None

    def _drop_body(self) -> None:
        """Forget the body and its fields (a redirect that switches to GET)."""
        self._post = None
        self._body = None
        self._body_kind = None
        if self._headers is not None:
            for name in ("content-type", "content-length"):
                self._headers.pop(name, None)

    # -- HMVC (internal requests) ---------------------------------------------------------
    # The App sets these slots when it routes a request; they stay unset otherwise, so an
    # external request pays nothing for them (getattr() with a default reads them).
    _action: str
    _client_ip: str
    _controller: str
    _directory: str
    _params: dict[str, str]
    _route: Route

    def param(self, key: str = _MISSING, default: Any = None) -> Any:
        """A route parameter (Kohana's ``$request->param()``); without a key, a dict of
        them all. ``directory``, ``controller`` and ``action`` have methods of their own."""
        params: dict[str, str] | None = getattr(self, "_params", None)
        if key is _MISSING:
            return dict(params) if params else {}
        return params.get(key, default) if params else default

    def route(self) -> Route | None:
        """The route that matched this request, once the App has routed it."""
        return getattr(self, "_route", None)

    def directory(self, value: str = _MISSING) -> Any:
        """The controller's directory (``admin`` for ``admin/users``), or ``""``."""
        if value is _MISSING:
            return getattr(self, "_directory", "")
        self._directory = value
        return self

    def controller(self, value: str = _MISSING) -> Any:
        """The controller name from the route; set it in ``before()`` to re-dispatch."""
        if value is _MISSING:
            return getattr(self, "_controller", "")
        self._controller = value
        return self

    def action(self, value: str = _MISSING) -> Any:
        """The action name; a controller's ``before()`` may change it."""
        if value is _MISSING:
            return getattr(self, "_action", "")
        self._action = value
        return self

    @staticmethod
    def initial() -> Request | None:
        """The main request being served in this context (Kohana's ``Request::initial()``)."""
        from ..hmvc.context import current_frame

        frame = current_frame()
        return frame.initial if frame else None

    @staticmethod
    def current() -> Request | None:
        """The request executing now: the main one or a sub-request (``Request::current()``)."""
        from ..hmvc.context import current_frame

        frame = current_frame()
        return frame.request if frame else None

    def is_initial(self) -> bool:
        """True for the main request of the App serving this context."""
        return self is Request.initial()

    def client_ip(self, value: str = _MISSING) -> Any:
        """The address of the client that sent the main request (Kohana's
        ``Request::$client_ip``); sub-requests report their main request's."""
        if value is not _MISSING:
            self._client_ip = value
            return self
        ip: str | None = getattr(self, "_client_ip", None)
        if ip is None:
            main = Request.initial()
            if main is not None and main is not self:
                ip = getattr(main, "_client_ip", None)
        return ip

    def is_ajax(self) -> bool:
        """True when ``X-Requested-With: XMLHttpRequest`` was sent (Kohana's is_ajax())."""
        value = self._headers.get("x-requested-with") if self._headers else None
        return value is not None and value.lower() == "xmlhttprequest"


class _Getter(NamedTuple):
    value: Any


def _new_fields(field: str, fields: Mapping[str, Any]) -> dict[str, FieldValue] | None:
    store: dict[str, FieldValue] = {}
    for key, value in fields.items():
        _store_field(field, store, key, value)
    return store or None


def _store_field(field: str, store: dict[str, FieldValue], key: Any, value: Any) -> None:
    if type(key) is not str or not key.isascii():
        if not isinstance(key, str):
            raise InvalidRequest(field, f"keys must be str, not {type(key).__name__}")
        utf8(field, key)
    if value is None:
        store.pop(key, None)
    elif type(value) is str and value.isascii():
        store[key] = value  # the common case, checked inline
    else:
        store[key] = field_value(f"{field} {key!r}", value)


def _copy_fields(fields: dict[str, FieldValue] | None) -> dict[str, FieldValue] | None:
    if not fields:
        return None
    return {k: list(v) if isinstance(v, list) else v for k, v in fields.items()}


def _cookie_value(name: str, value: Any) -> str:
    if isinstance(value, int):
        value = str(value)
    if not isinstance(value, str):
        raise InvalidRequest(f"cookie {name!r}", f"must be str or int, not {type(value).__name__}")
    check_text(f"cookie {name!r}", value)
    if not value.isascii():
        raise InvalidRequest(f"cookie {name!r}", f"{value!r} is not ASCII; encode it first")
    if ";" in value:
        raise InvalidRequest(f"cookie {name!r}", f"{value!r} contains ';'")
    return value
