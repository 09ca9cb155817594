"""Validation of everything that reaches the wire; each failure names its field."""

from __future__ import annotations

import re
from typing import Any

from ..errors import InvalidRequest

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_FORBIDDEN_NAMES = {"\r": "CR", "\n": "LF", "\x00": "NUL"}


def check_token(field: str, value: object) -> str:
    """``value`` as an HTTP token (a method or header name), or InvalidRequest."""
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be str, not {type(value).__name__}")
    if _TOKEN.match(value) is None:
        bad = _FORBIDDEN.search(value)
        if bad:
            raise InvalidRequest(field, f"{value!r} contains {_FORBIDDEN_NAMES[bad.group()]}")
        raise InvalidRequest(field, f"{value!r} is not a valid HTTP token")
    return value


def check_text(field: str, value: str) -> str:
    """``value`` unchanged, or InvalidRequest if it holds CR, LF or NUL."""
    bad = _FORBIDDEN.search(value)
    if bad:
        raise InvalidRequest(field, f"{value!r} contains {_FORBIDDEN_NAMES[bad.group()]}")
    return value


def header_value(field: str, value: object) -> str:
    """A header value as wire-safe str: str, bytes (latin-1) or int; no CR/LF/NUL."""
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
    elif isinstance(value, int):
        return str(value)
    else:
        raise InvalidRequest(field, f"must be str, bytes or int, not {type(value).__name__}")
    check_text(field, text)
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidRequest(field, f"{text!r} is not latin-1; encode it first") from None
    return text


def field_value(field: str, value: Any) -> str | bytes | list[str | bytes]:
    """A query or form value: str, bytes, int, or a list/tuple of those (repeated keys)."""
    if isinstance(value, str | bytes):
        return value
    if isinstance(value, int):
        return str(value)
    if isinstance(value, list | tuple):
        out: list[str | bytes] = []
        for item in value:
            single = field_value(field, item)
            if isinstance(single, list):
                raise InvalidRequest(field, "nested lists are not supported")
            out.append(single)
        return out
    raise InvalidRequest(field, f"must be str, bytes or int, not {type(value).__name__}")
