"""Text from outside (a server's reason phrase, a stored error, an id) made safe to show
on a terminal or in a log viewer."""

from __future__ import annotations

import re

# C0, DEL, C1; the bidirectional controls and line/paragraph separators (they reorder or
# break what follows); the backslash, so that a literal "\x1b" in the text shows as "\\x1b"
_UNSAFE = re.compile(
    r"[\x00-\x1f\x7f-\x9f\\\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]"
)
_ESCAPES = {"\t": "\\t", "\n": "\\n", "\r": "\\r", "\\": "\\\\"}


def _escape(char: str) -> str:
    code = ord(char)
    return _ESCAPES.get(char) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}")


def shown(text: str) -> str:
    """``text`` for a terminal: control and bidirectional characters, and the backslash,
    as Python-style escapes."""
    return _UNSAFE.sub(lambda m: _escape(m[0]), text)
