"""Routes: Kohana's URI patterns, compiled once to regular expressions, and reversed.

A pattern is literal text with ``<param>`` segments and ``( … )`` optional parts, as in
Kohana 3.3's ``Route::set()``::

    (<controller>(/<action>(/<id>)))      # Kohana's default route
    blog/<year>/<slug>(.<format>)

A parameter matches one segment (no ``/ . , ; ?``) unless the route gives it a regex of
its own. Parameters a URI leaves out take the route's defaults; ``action`` defaults to
``index``. ``Route.uri(**params)`` builds a URI back (Kohana's ``Route::uri``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import quote

if TYPE_CHECKING:
    from ..http.models import Request

#: What a parameter matches unless the route says otherwise (Kohana's REGEX_SEGMENT).
SEGMENT = r"[^/.,;?\n]++"
DEFAULT_ACTION = "index"

_KEY = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")
_MISSING: Any = object()

#: ``callback(route, params, request)`` -> params, or None for "no match".
Filter = Callable[["Route", dict[str, str], "Request[Any]"], "dict[str, str] | None"]


class _Param:
    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


class _Group(list["_Part"]):
    """An optional part: ``( … )``."""


_Part = Union[str, _Param, _Group]  # noqa: UP007 - a runtime alias used by _Group's base


class Route:
    """One named route: a pattern, its defaults and per-parameter regexes.

    Build routes with :meth:`App.route`; ``defaults()`` chains as Kohana's does::

        app.route("default", "(<controller>(/<action>(/<id>)))").defaults(
            {"controller": "welcome", "action": "index"})
    """

    __slots__ = (
        "_defaults",
        "_expression",
        "_filters",
        "_tree",
        "keys",
        "name",
        "pattern",
        "regex",
    )

    def __init__(
        self,
        name: str,
        pattern: str,
        defaults: Mapping[str, str] | None = None,
        regex: Mapping[str, str] | None = None,
    ) -> None:
        if not isinstance(pattern, str):
            kind = type(pattern).__name__
            raise TypeError(f"route {name!r}: the pattern must be str, not {kind}")
        self.name = name
        self.pattern = pattern
        self._tree, self.keys = _parse(name, pattern.strip("/"))
        self.regex: dict[str, str] = dict(regex or {})
        unknown = sorted(set(self.regex) - set(self.keys))
        if unknown:
            raise ValueError(f"route {name!r}: regex for unknown parameter(s) {unknown}")
        source = "".join(_regex_of(part, self.regex) for part in self._tree)
        try:
            self._expression = re.compile(source + r"\Z")
        except re.error as exc:
            raise ValueError(f"route {name!r}: bad regex ({exc}) in {source!r}") from None
        self._defaults: dict[str, str] = {}
        self._filters: list[Filter] = []
        if defaults:
            self.defaults(defaults)

    def __repr__(self) -> str:
        return f"<Route {self.name!r} {self.pattern!r}>"

    def defaults(self, value: Mapping[str, Any] = _MISSING) -> Any:
        """The parameters a URI may leave out; set with ``defaults({...})`` (chains)."""
        if value is _MISSING:
            return dict(self._defaults)
        self._defaults = {str(k): str(v) for k, v in value.items()}
        return self

    def filter(self, callback: Filter) -> Route:
        """Add a filter (Kohana's ``Route::filter``), called as ``callback(route, params,
        request)`` after the pattern matched: it returns the params (changed or not), or
        None to make the route not match, e.g. to route by HTTP method. Chains."""
        self._filters.append(callback)
        return self

    def matches(self, uri: str, request: Request[Any] | None = None) -> dict[str, str] | None:
        """The parameters of ``uri`` (no leading or trailing slash), or None; filters
        are applied when ``request`` is given."""
        found = self._expression.match(uri)
        if found is None:
            return None
        params = dict(self._defaults)
        for key, value in found.groupdict().items():
            if value:
                params[key] = value
        if "action" not in params:
            params["action"] = DEFAULT_ACTION
        if self._filters and request is not None:
            for callback in self._filters:
                filtered = callback(self, params, request)
                if filtered is None:
                    return None
                params = filtered
        return params

    def uri(self, **params: Any) -> str:
        """The URI this route gives for ``params`` (Kohana's ``Route::uri``).

        Optional parts appear when they hold a parameter given with a value other than
        its default; a required parameter that is neither given nor defaulted raises
        ``ValueError``, and so does a value its regex does not match. Values are
        percent-encoded as Kohana encodes them (``rawurlencode``, then ``/`` and ``\\``
        put back), so ``#``, ``?`` or a space in a value stay part of the path.
        """
        values = {k: str(v) for k, v in params.items() if v is not None}
        for key, value in values.items():
            if key in self.keys and re.fullmatch(self.regex.get(key, SEGMENT), value) is None:
                raise ValueError(f"route {self.name!r}: {key}={value!r} does not match its regex")
        encoded = {k: quote(v, safe="/\\") for k, v in values.items()}
        text, _ = _build(self, self._tree, encoded, required=True, raw=values)
        return re.sub(r"//+", "/", text).strip("/")


def _parse(name: str, pattern: str) -> tuple[list[_Part], tuple[str, ...]]:
    """The pattern as a tree of literals, parameters and optional groups."""
    root: list[_Part] = []
    stack: list[list[_Part]] = [root]
    keys: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "(":
            group = _Group()
            stack[-1].append(group)
            stack.append(group)
        elif char == ")":
            if len(stack) == 1:
                raise ValueError(f"route {name!r}: unbalanced ')' at {i} in {pattern!r}")
            stack.pop()
        elif char == "<":
            key = _KEY.match(pattern, i)
            if key is None:
                raise ValueError(f"route {name!r}: bad parameter at {i} in {pattern!r}")
            if key.group(1) in keys:
                raise ValueError(f"route {name!r}: parameter <{key.group(1)}> appears twice")
            keys.append(key.group(1))
            stack[-1].append(_Param(key.group(1)))
            i = key.end()
            continue
        elif char == ">":
            raise ValueError(f"route {name!r}: stray '>' at {i} in {pattern!r}")
        else:
            stack[-1].append(char)
        i += 1
    if len(stack) != 1:
        raise ValueError(f"route {name!r}: unclosed '(' in {pattern!r}")
    return root, tuple(keys)


def _regex_of(part: _Part, regex: Mapping[str, str]) -> str:
    if isinstance(part, str):
        return re.escape(part)
    if isinstance(part, _Param):
        return f"(?P<{part.name}>{regex.get(part.name, SEGMENT)})"
    return "(?:" + "".join(_regex_of(p, regex) for p in part) + ")?"


def _build(
    route: Route,
    parts: list[_Part],
    values: dict[str, str],
    required: bool,
    raw: dict[str, str],
) -> tuple[str, bool]:
    """Kohana's compile step of ``Route::uri``: (text, whether this portion is required).
    ``values`` are the encoded parameters, ``raw`` the same as given (compared with the
    defaults)."""
    out: list[str] = []
    missing: list[str] = []
    for part in parts:
        if isinstance(part, str):
            out.append(part)
        elif isinstance(part, _Param):
            default = route._defaults.get(part.name)
            if default is None and part.name == "action":
                default = DEFAULT_ACTION
            if part.name in values:
                value = values[part.name]
                required = required or default is None or raw[part.name] != default
                out.append(value)
            elif default is not None:
                out.append(quote(default, safe="/\\"))
            else:
                missing.append(part.name)
        else:
            text, needed = _build(route, part, values, required=False, raw=raw)
            if needed:
                required = True
                out.append(text)
    if required and missing:
        raise ValueError(
            f"route {route.name!r}: required parameter(s) not given: {', '.join(missing)}"
        )
    return "".join(out), required
