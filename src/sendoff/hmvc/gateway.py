"""What the WSGI and ASGI boundaries share: the main request built from what a server
received, and the status line and headers a server sends back."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from ..core.errors import InvalidRequest
from ..http.forms import decode_fields
from ..http.models import FORM_TYPE, Request, Response, reason_phrase
from ..http.url import URL


def build_request(
    method: str,
    path: str,
    query_string: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    peer: str | None,
    trusted_proxies: Collection[str] = (),
) -> Request[Any]:
    """A Request for the main request; InvalidRequest if the server passed something
    that cannot be one (the App answers 400)."""
    # The path is already percent-decoded and may hold '?' or '#': it must not be parsed
    # again as a URI.
    request = Request(URL("", "", 0, path.strip("/"), ""), method, headers=list(headers))
    if query_string:
        request.query(decode_fields(query_string))
    head = request.headers()
    cookie_header = head.get("cookie")
    if cookie_header:
        _read_cookies(request, cookie_header)
    if body:
        ctype = head.get("content-type", "")
        if ctype.partition(";")[0].strip().lower() == FORM_TYPE:
            request.post(decode_fields(body.decode("utf-8", errors="replace")))
        else:
            request.body(body)
    if peer is not None:
        request.client_ip(client_address(peer, head.get("x-forwarded-for"), trusted_proxies))
    return request


def _read_cookies(request: Request[Any], header: str) -> None:
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if not name:
            continue
        try:
            request.cookie(name, value.strip().strip('"'))
        except InvalidRequest:
            continue  # a cookie no server could have set for us; ignore it as browsers do


def client_address(peer: str, forwarded_for: str | None, trusted: Collection[str]) -> str:
    """The client's address: the peer's, or, when the peer is a trusted proxy, the
    nearest untrusted hop of ``X-Forwarded-For`` (Kohana's ``Request::$trusted_proxies``)."""
    if not forwarded_for or peer not in trusted:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop
    return hops[0] if hops else peer


def status_line(status: int) -> str:
    """``"404 Not Found"``: the status and its standard phrase."""
    return f"{status} {reason_phrase(status) or 'Unknown'}"


def outgoing_headers(response: Response, body: bytes) -> list[tuple[str, str]]:
    """The headers a server sends: the response's own, with Content-Type (Kohana's
    ``text/html; charset=utf-8``) and Content-Length filled in when missing."""
    headers = response.headers.multi_items()
    if body and "content-type" not in response.headers:
        headers.append(("Content-Type", "text/html; charset=utf-8"))
    if "content-length" not in response.headers:
        headers.append(("Content-Length", str(len(body))))
    return headers
