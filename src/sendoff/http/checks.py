"""Validation of everything that reaches the wire; each failure names its field."""

from __future__ import annotations

import re
from typing import Any

from ..core.errors import InvalidRequest

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FORBIDDEN = re.compile(r"[\r\n\x00]")
_FORBIDDEN_NAMES = {"\r": "CR", "\n": "LF", "\x00": "NUL"}
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")  # what a header value may not hold
# RFC 9110 section 7.2: uri-host [ ":" port ]; a reg-name, an IPv4 or a bracketed IPv6
_HOST_HEADER = re.compile(
    r"(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?\Z"
)


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
    """A header value as wire-safe str: str, bytes (latin-1) or int.

    Control characters (CR, LF, NUL and the others but HTAB) are refused; surrounding
    spaces and tabs are dropped, as every parser would drop them.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
    elif isinstance(value, int):
        return str(value)
    else:
        raise InvalidRequest(field, f"must be str, bytes or int, not {type(value).__name__}")
    bad = _CONTROL.search(text)
    if bad:
        char = bad.group()
        name = _FORBIDDEN_NAMES.get(char, f"the control character {char!r}")
        raise InvalidRequest(field, f"{text!r} contains {name}")
    text = text.strip(" \t")
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        raise InvalidRequest(field, f"{text!r} is not latin-1; encode it first") from None
    return text


def check_host_header(value: str) -> str:
    """``value`` if it is a valid ``Host`` header (``host[:port]``), else InvalidRequest."""
    found = _HOST_HEADER.match(value)
    port = found.group(1) if found is not None else None
    if found is None or (port is not None and not 0 < int(port) <= 65535):
        raise InvalidRequest("headers", f"Host {value!r} is not a valid host[:port]")
    return value


def utf8(field: str, text: str) -> bytes:
    """``text`` as UTF-8, or InvalidRequest (a lone surrogate cannot be encoded)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidRequest(field, f"{text!r} cannot be encoded as UTF-8: {exc.reason}") from None


def field_value(field: str, value: Any) -> str | bytes | list[str | bytes]:
    """A query or form value: str, bytes, int, or a list/tuple of those (repeated keys)."""
    if isinstance(value, str):
        if not value.isascii():
            utf8(field, value)
        return value
    if isinstance(value, bytes):
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


def store_field(field: str, store: dict[str, Any], key: Any, value: Any) -> None:
    """Check one query or form field and put it in ``store`` (``None`` removes it)."""
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
