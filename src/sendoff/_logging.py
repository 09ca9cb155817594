"""The ``sendoff`` logger and the redaction rules every log line goes through."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from urllib.parse import urlsplit, urlunsplit

logger = logging.getLogger("sendoff")

#: Header names whose values never reach a log line.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})
REDACTED = "[redacted]"


def redact_url(url: str) -> str:
    """Return ``url`` without the password of its userinfo part."""
    if "@" not in url:
        return url
    parts = urlsplit(url)
    if parts.password is None and parts.username is None:
        return url
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    if parts.port is not None:
        host = f"{host}:{parts.port}"
    netloc = f"{parts.username}:{REDACTED}@{host}" if parts.username else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def redact_headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Return header pairs with the values of credential headers replaced."""
    return [(k, REDACTED if k.lower() in SECRET_HEADERS else v) for k, v in items]
