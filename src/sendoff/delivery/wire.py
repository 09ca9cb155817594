"""Request wire bytes: the fast snapshot ``sendoff.fire()`` takes, and the way back.

:func:`fire_wire` renders the same bytes as ``Request(...).render()`` for the common
shapes of a fire (a URL, form fields or JSON, plain headers) without building a Request;
anything less common goes through :class:`~sendoff.Request` itself. A test holds the two
byte for byte equal.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..core.errors import InvalidRequest
from ..core.seconds import is_seconds
from ..http.checks import check_token, store_field, utf8
from ..http.forms import encode_fields
from ..http.headers import Headers
from ..http.models import BODY_METHODS, FORM_TYPE, JSON_TYPE, USER_AGENT, Request, encode_json
from ..http.url import URL, parse_uri

#: Header names whose presence changes what prepare() adds: those fires take the slow way.
_SPECIAL = frozenset(
    {"host", "user-agent", "content-type", "content-length", "transfer-encoding", "cookie"}
)
_METHODS = {m: m for m in ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")}
_UA_LINE = f"User-Agent: {USER_AGENT}\r\n"


def build_request(
    method: str,
    url: str,
    params: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    json: Any,
    headers: Mapping[str, Any] | None,
    timeout: float | None,
) -> Request[Any]:
    """The Request that ``fire()``'s arguments describe (``json=None``: no JSON body)."""
    return Request(
        url, method, query=params, post=data, headers=headers, timeout=timeout,
        **({} if json is None else {"json": json}),
    )


def fire_wire(
    method: str,
    url: str,
    params: Mapping[str, Any] | None,
    data: Mapping[str, Any] | None,
    json: Any,
    headers: Mapping[str, Any] | None,
    timeout: float | None = None,
) -> tuple[URL, bytes, str, str] | None:
    """(parsed URL, wire bytes, method, request target) for a common fire, or None to take
    the Request path (also for a ``timeout`` that is not a positive number: Request says
    what is wrong).

    Raises InvalidRequest for bad input, exactly as Request would.
    """
    if timeout is not None and not is_seconds(timeout):
        return None
    parsed = parse_uri(url)
    if parsed.query or parsed.username is not None or not parsed.scheme:
        return None
    verb = _METHODS.get(method)
    if verb is None:
        verb = check_token("method", method).upper()
    extra = ""
    if headers:
        items = Headers(headers).multi_items()  # validates names and values
        for name, value in items:
            if name.lower() in _SPECIAL:
                return None
            extra += f"{name}: {value}\r\n"
    target = parsed.path
    query = _fields("query", params) if params else None
    if query:
        target += "?" + encode_fields(query)
    if data is not None and json is not None:
        return None  # Request raises the error that names the conflict
    form = _fields("post", data) if data else None
    if form:
        body = encode_fields(form).encode("ascii")
        kind = f"Content-Type: {FORM_TYPE}\r\n"
    elif json is not None:
        try:
            text = encode_json(json)
        except (TypeError, ValueError) as exc:
            raise InvalidRequest("json", f"not JSON-serialisable: {exc}") from None
        body = utf8("json", text)
        kind = f"Content-Type: {JSON_TYPE}\r\n"
    else:
        body, kind = b"", ""
    length = f"Content-Length: {len(body)}\r\n" if body or verb in BODY_METHODS else ""
    head = (
        f"{verb} {target} HTTP/1.1\r\nHost: {parsed.host_header}\r\n{extra}"
        f"{_UA_LINE}{kind}{length}\r\n"
    )
    return parsed, head.encode("latin-1") + body, verb, target


def _fields(field: str, values: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise InvalidRequest(field, f"must be a mapping, not {type(values).__name__}")
    out: dict[str, Any] = {}
    for key, value in values.items():
        store_field(field, out, key, value)  # the checks Request makes
    return out


def split_wire(wire: bytes) -> tuple[str, str, list[tuple[str, str]], bytes]:
    """(method, target, header pairs, body) of request wire bytes."""
    head, _, body = wire.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    method, target, _ = lines[0].split(" ", 2)
    pairs = []
    for line in lines[1:]:
        name, _, value = line.partition(":")
        pairs.append((name, value.strip()))
    return method, target, pairs, body


def request_from_wire(wire: bytes, url: URL) -> Request[Any]:
    """A Request to ``url``'s origin that renders to ``wire`` again (headers, a custom
    Host header included, and body as sent)."""
    method, target, pairs, body = split_wire(wire)
    request = Request(f"{url.origin_text}{target}", method, headers=pairs)
    if body:
        request.body(body)
    return request
