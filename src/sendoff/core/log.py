"""The ``sendoff`` logger; every line it logs goes through the redaction policy of
:mod:`sendoff.core.redaction` (re-exported here for the modules that log)."""

from __future__ import annotations

import logging

from .redaction import (
    REDACTED,
    SECRET_HEADERS,
    is_secret_header,
    is_secret_name,
    redact_fields,
    redact_headers,
    redact_url,
    scrub,
    secret_values,
)

logger = logging.getLogger("sendoff")

__all__ = [
    "REDACTED",
    "SECRET_HEADERS",
    "is_secret_header",
    "is_secret_name",
    "logger",
    "redact_fields",
    "redact_headers",
    "redact_url",
    "scrub",
    "secret_values",
]
