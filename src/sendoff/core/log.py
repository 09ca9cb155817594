"""The ``sendoff`` logger and the redaction rules every log line goes through."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

logger = logging.getLogger("sendoff")

#: Header names whose values never reach a log line.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
REDACTED = "[redacted]"

#: Query parameters whose values are credentials (``?api_key=...``, ``?access_token=...``).
SECRET_PARAM = re.compile(
    r"pass(word|wd)?|secret|token|api[-_]?key|credential|signature|session|^(key|sig|auth)$",
    re.IGNORECASE,
)


def redact_url(url: str) -> str:
    """Return ``url`` without the password of its userinfo part and without the values of
    query parameters named like credentials (token, secret, password, api_key, ...)."""
    if "@" not in url and "?" not in url:
        return url
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if parts.password is not None or parts.username is not None:
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        if parts.port is not None:
            host = f"{host}:{parts.port}"
        netloc = f"{parts.username}:{REDACTED}@{host}" if parts.username else host
    if query:
        query = "&".join(_redact_param(p) for p in query.split("&"))
    if (netloc, query) == (parts.netloc, parts.query):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def _redact_param(pair: str) -> str:
    name, eq, _ = pair.partition("=")
    return f"{name}={REDACTED}" if eq and SECRET_PARAM.search(unquote_plus(name)) else pair


def redact_headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return header pairs with the values of credential headers replaced."""
    return [(k, REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in items]
