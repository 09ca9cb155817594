"""Headers: a case-insensitive, multi-valued, mutable mapping."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, MutableMapping
from typing import Any

from ..core.log import redact_headers
from .checks import check_token, header_value

HeadersInput = Mapping[str, Any] | Iterable[tuple[str, Any]] | None


class Headers(MutableMapping[str, str]):
    """HTTP headers: lookups ignore case, names keep the case they were given in.

    ``headers[name]`` joins repeated values with ``", "``; :meth:`get_all` returns them
    one by one (use it for ``Set-Cookie``). Setting a name replaces every value it had;
    :meth:`add` appends one more. Names must be HTTP tokens and values may not contain
    CR, LF or NUL: anything else raises :class:`~sendoff.InvalidRequest` at once.
    """

    __slots__ = ("_items",)

    def __init__(self, headers: HeadersInput = None) -> None:
        self._items: list[tuple[str, str]] = []
        if headers:
            pairs = headers.items() if isinstance(headers, Mapping) else headers
            for name, value in pairs:
                self.add(name, value)

    @classmethod
    def from_wire(cls, pairs: list[tuple[str, str]]) -> Headers:
        """Headers parsed off the wire, taken as they are (no validation)."""
        new = cls.__new__(cls)
        new._items = pairs
        return new

    def __getitem__(self, name: str) -> str:
        key = name.lower()
        values = [v for k, v in self._items if k.lower() == key]
        if not values:
            raise KeyError(name)
        return values[0] if len(values) == 1 else ", ".join(values)

    def __setitem__(self, name: str, value: Any) -> None:
        name = check_token("header name", name)
        value = header_value(f"header {name!r}", value)
        key = name.lower()
        self._items = [(k, v) for k, v in self._items if k.lower() != key]
        self._items.append((name, value))

    def __delitem__(self, name: str) -> None:
        key = name.lower()
        kept = [(k, v) for k, v in self._items if k.lower() != key]
        if len(kept) == len(self._items):
            raise KeyError(name)
        self._items = kept

    def __iter__(self) -> Iterator[str]:
        seen: set[str] = set()
        for k, _ in self._items:
            low = k.lower()
            if low not in seen:
                seen.add(low)
                yield k

    def __len__(self) -> int:
        return len({k.lower() for k, _ in self._items})

    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        key = name.lower()
        return any(k.lower() == key for k, _ in self._items)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Headers):
            theirs = other._items
        elif isinstance(other, Mapping):
            theirs = list(other.items())
        else:
            return NotImplemented
        return sorted((k.lower(), v) for k, v in self._items) == sorted(
            (str(k).lower(), str(v)) for k, v in theirs
        )

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        return f"Headers({redact_headers(self._items)!r})"

    def add(self, name: str, value: Any) -> None:
        """Append a value for ``name``, keeping the ones it has."""
        name = check_token("header name", name)
        self._items.append((name, header_value(f"header {name!r}", value)))

    def get_all(self, name: str) -> list[str]:
        """Every value of ``name``, in order; ``[]`` if it is absent."""
        key = name.lower()
        return [v for k, v in self._items if k.lower() == key]

    def multi_items(self) -> list[tuple[str, str]]:
        """Every (name, value) pair in order, repeated names included."""
        return list(self._items)

    def copy(self) -> Headers:
        """An independent copy."""
        return Headers.from_wire(list(self._items))
