"""What sendoff never shows: the one redaction policy behind every log line, error
message, repr, CLI output and process-helper log.

::

    from sendoff import redaction

    redaction.add_secret_names("shop_hmac", "X-Shop-Hmac")   # your own credentials
    redaction.redact_url("https://u:pw@api.example.com/x?api_key=abc&page=2")
    # 'https://u:[redacted]@api.example.com/x?api_key=[redacted]&page=2'

Headers ``Authorization``, ``Proxy-Authorization``, ``Cookie``, ``Set-Cookie`` and any
whose name contains ``api-key``, ``token``, ``secret``, ``auth``, ``signature``,
``password``, ``credential``, ``session`` or ``cookie``; URL passwords (and a userinfo
without one, often a token); query parameters named ``key``, ``sig``, ``code``, ``auth``,
``pass``, ``pwd`` or containing ``api_key``, ``access_key``, ``private_key``, ``token``,
``secret``, ``password``, ``signature``, ``credential``, ``session``... (case-insensitive,
``-`` read as ``_``). See :mod:`sendoff.core.redaction` for the exact lists.
"""

from __future__ import annotations

from .core.redaction import (
    REDACTED,
    SECRET_FRAGMENTS,
    SECRET_HEADER_PATTERN,
    SECRET_HEADERS,
    SECRET_NAMES,
    add_secret_names,
    is_secret_header,
    is_secret_name,
    redact_fields,
    redact_headers,
    redact_url,
    scrub,
    secret_names,
    secret_values,
)

__all__ = [
    "REDACTED",
    "SECRET_FRAGMENTS",
    "SECRET_HEADERS",
    "SECRET_HEADER_PATTERN",
    "SECRET_NAMES",
    "add_secret_names",
    "is_secret_header",
    "is_secret_name",
    "redact_fields",
    "redact_headers",
    "redact_url",
    "scrub",
    "secret_names",
    "secret_values",
]
