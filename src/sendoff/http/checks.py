"""Validation of everything that reaches the wire; each failure names its field and the
offending character with its position, never the value (it may be a credential)."""

from __future__ import annotations

import re
from typing import Any

from ..core.errors import InvalidRequest

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+\Z")
_FORBIDDEN = re.compile(r"[\r\n\x00]")  # what no text that reaches the wire may hold
#: What a header value (and a cookie) may not hold, per RFC 9110 section 5.5: the C0
#: controls but HTAB, DEL, and the C1 controls (0x80-0x9F, which latin-1 decodes to
#: U+0080-U+009F: a byte 0x85 given in a bytes value is refused as U+0085).
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
_NOT_LATIN1 = re.compile(r"[^\x00-\xff]")
_C0_NAMES = (
    "NUL", "SOH", "STX", "ETX", "EOT", "ENQ", "ACK", "BEL", "BS", "HTAB", "LF", "VT", "FF",
    "CR", "SO", "SI", "DLE", "DC1", "DC2", "DC3", "DC4", "NAK", "SYN", "ETB", "CAN", "EM",
    "SUB", "ESC", "FS", "GS", "RS", "US",
)
_C1_NAMES = {0x85: "NEL", 0x9B: "CSI", 0x9C: "ST", 0x9D: "OSC"}
# RFC 9110 section 7.2: uri-host [ ":" port ]; a reg-name, an IPv4 or a bracketed IPv6
_HOST_HEADER = re.compile(
    r"(?:[A-Za-z0-9._~!$&'()*+,;=%-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?\Z"
)


def describe(char: str) -> str:
    """How an error message names one character without quoting the text around it:
    ``CR``, ``DEL``, ``U+0085 (NEL)``, ``' '``, ``U+2603``."""
    code = ord(char)
    if code < 0x20:
        return _C0_NAMES[code]
    if code == 0x7F:
        return "DEL"
    if 0x80 <= code <= 0x9F:
        name = _C1_NAMES.get(code)
        return f"U+{code:04X} (C1 control{' ' + name if name else ''})"
    if code > 0x7E and not char.isprintable():
        return f"U+{code:04X}"
    return repr(char) if code < 0x80 else f"{char!r} (U+{code:04X})"


def _refuse(field: str, value: str, position: int, what: str = "") -> InvalidRequest:
    """An InvalidRequest naming the field, the character and its position, never the
    value (which may be a credential)."""
    tail = f": {what}" if what else ""
    return InvalidRequest(
        field, f"contains {describe(value[position])} at position {position}{tail}"
    )


def check_token(field: str, value: object) -> str:
    """``value`` as an HTTP token (a method or header name), or InvalidRequest."""
    if not isinstance(value, str):
        raise InvalidRequest(field, f"must be str, not {type(value).__name__}")
    if _TOKEN.match(value) is None:
        if not value:
            raise InvalidRequest(field, "is empty; it must be an HTTP token")
        position = next(i for i, ch in enumerate(value) if _TOKEN.match(ch) is None)
        raise _refuse(field, value, position, "not allowed in an HTTP token")
    return value


def check_text(field: str, value: str) -> str:
    """``value`` unchanged, or InvalidRequest if it holds CR, LF or NUL."""
    bad = _FORBIDDEN.search(value)
    if bad:
        raise _refuse(field, value, bad.start())
    return value


def check_controls(field: str, value: str) -> str:
    """``value`` unchanged, or InvalidRequest if it holds a control character that may
    not reach the wire in a header: C0 but HTAB, DEL, C1."""
    bad = _CONTROL.search(value)
    if bad:
        raise _refuse(field, value, bad.start())
    return value


def header_value(field: str, value: object) -> str:
    """A header value as wire-safe str: str, bytes (latin-1) or int.

    Control characters (C0 but HTAB, DEL and C1, so CR, LF and NUL among them) are
    refused; surrounding spaces and tabs are dropped, as every parser would drop them.
    """
    if isinstance(value, str):
        text = value
    elif isinstance(value, bytes | bytearray):
        text = bytes(value).decode("latin-1")
    elif isinstance(value, int):
        return str(value)
    else:
        raise InvalidRequest(field, f"must be str, bytes or int, not {type(value).__name__}")
    check_controls(field, text)
    if not text.isascii():
        wide = _NOT_LATIN1.search(text)
        if wide:
            raise _refuse(field, text, wide.start(), "not latin-1; encode it first")
    return text.strip(" \t")


def check_host_header(value: str) -> str:
    """``value`` if it is a valid ``Host`` header (``host[:port]``), else InvalidRequest."""
    found = _HOST_HEADER.match(value)
    port = found.group(1) if found is not None else None
    if found is None or (port is not None and not 0 < int(port) <= 65535):
        raise InvalidRequest("headers", "the Host header is not a valid host[:port]")
    return value


def utf8(field: str, text: str) -> bytes:
    """``text`` as UTF-8, or InvalidRequest (a lone surrogate cannot be encoded)."""
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError as exc:
        why = f"cannot be encoded as UTF-8 ({exc.reason})"
        raise _refuse(field, text, exc.start, why) from None


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
