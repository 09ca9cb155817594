"""The one redaction policy: what sendoff never shows in a log line, an error message, a
repr, CLI output or the process helper's log.

- **Headers**: the values of ``Authorization``, ``Proxy-Authorization``, ``Cookie`` and
  ``Set-Cookie``, and of every header whose name looks like a credential: it contains
  ``api-key`` (or ``apikey``, ``access-key``, ``private-key``, ``secret-key``, ``client-key``),
  ``token``, ``secret``, ``auth``, ``signature``, ``password``/``passwd``, ``credential``,
  ``session`` or ``cookie`` (``X-Api-Key``, ``X-Auth-Token``, ``X-Hub-Signature-256``,
  ``webhook-signature``...), case-insensitively.
- **URLs**: the password of the userinfo part (``https://user:[redacted]@host/``); a
  userinfo without a password is a token more often than a name
  (``https://<token>@host/``), so it goes as a whole (``https://[redacted]@host/``).
- **Query parameters** (and ``key=value`` pairs of a fragment) whose name, compared
  case-insensitively with ``-`` read as ``_``, is one of :data:`SECRET_NAMES` (``key``,
  ``sig``, ``code``, ``auth``...) or contains one of :data:`SECRET_FRAGMENTS` (``api_key``,
  ``access_key``, ``private_key``, ``token``, ``secret``, ``password``, ``signature``...):
  ``?api_key=[redacted]&page=2``.

Extend it with :func:`add_secret_names` (an application's own ``?shop_hmac=`` or
``X-Shop-Hmac``); nothing can be taken out of it. The public face of this module is
:mod:`sendoff.redaction`.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable
from urllib.parse import unquote_plus, urlsplit, urlunsplit

REDACTED = "[redacted]"

#: Headers whose values are always credentials.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie"})

#: A header whose name matches this (searched, case-insensitively) holds a credential.
SECRET_HEADER_PATTERN = re.compile(
    r"(?:api|access|private|secret|client)[-_]?key|token|secret|auth|signature|passw(?:or)?d"
    r"|credential|session|cookie",
    re.IGNORECASE,
)

#: Query parameter names that are credentials when they are the whole name.
SECRET_NAMES = frozenset({
    "key", "sig", "code", "auth", "pass", "pwd", "access_token", "client_secret", "api_key",
    "access_key", "private_key", "token", "secret", "password", "signature",
})

#: A query parameter whose name contains one of these is a credential.
SECRET_FRAGMENTS = (
    "password", "passwd", "passphrase", "secret", "token", "api_key", "apikey", "access_key",
    "private_key", "signature", "credential", "session",
)

_lock = threading.Lock()
#: (the names added by add_secret_names, the verdicts computed with them): replaced as a
#: whole, so a thread never caches a verdict made before a name was added
_state: tuple[frozenset[str], dict[str, bool]] = (frozenset(), {})


def add_secret_names(*names: str) -> None:
    """Treat ``names`` as secrets too: query parameters, form fields and headers of these
    names (compared case-insensitively, ``-`` and ``_`` alike) are redacted everywhere
    sendoff shows them. Call it once at start-up, e.g.
    ``add_secret_names("shop_hmac", "X-Shop-Hmac")``."""
    global _state
    for name in names:
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"a secret name must be a non-empty str, not {name!r}")
    with _lock:
        _state = (_state[0] | {_normal(n) for n in names}, {})


def secret_names() -> frozenset[str]:
    """The names added with :func:`add_secret_names` (normalised: lower case, ``_``)."""
    return _state[0]


def _normal(name: str) -> str:
    return name.strip().lower().replace("-", "_")


def is_secret_name(name: str) -> bool:
    """True when a query parameter or form field called ``name`` holds a credential."""
    extra, cache = _state
    known = cache.get(name)
    if known is not None:
        return known
    normal = _normal(unquote_plus(name))
    secret = (
        normal in SECRET_NAMES
        or normal in extra
        or any(fragment in normal for fragment in SECRET_FRAGMENTS)
    )
    if len(cache) < 4096:
        cache[name] = secret
    return secret


def is_secret_header(name: str) -> bool:
    """True when the value of a header called ``name`` is a credential."""
    low = name.lower()
    return (
        low in SECRET_HEADERS
        or SECRET_HEADER_PATTERN.search(low) is not None
        or _normal(low) in _state[0]
    )


def redact_url(url: str) -> str:
    """``url`` with its userinfo password (or a password-less userinfo) and the values of
    credential-like query parameters replaced by ``[redacted]``."""
    if "@" not in url and "?" not in url and "#" not in url:
        return url
    try:
        parts = urlsplit(url)
        netloc = parts.netloc
        if "@" in netloc:
            userinfo, _, host = netloc.rpartition("@")
            user, has_password, _ = userinfo.partition(":")
            netloc = f"{user}:{REDACTED}@{host}" if has_password else f"{REDACTED}@{host}"
    except ValueError:  # not a URL urlsplit can read (a bad IPv6 literal): redact as text
        return _redact_text(url)
    query = _redact_query(parts.query) if parts.query else parts.query
    fragment = _redact_query(parts.fragment) if "=" in parts.fragment else parts.fragment
    if (netloc, query, fragment) == (parts.netloc, parts.query, parts.fragment):
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, fragment))


def _redact_text(url: str) -> str:
    """:func:`redact_url` for a text urlsplit cannot read: the same parts, cut by hand."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        scheme, rest = "", url
    cut = min((i for i in map(rest.find, "/?#") if i >= 0), default=len(rest))
    authority, tail = rest[:cut], rest[cut:]
    if sep and "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        has_password = ":" in userinfo
        user = userinfo.partition(":")[0]
        authority = f"{user}:{REDACTED}@{host}" if has_password else f"{REDACTED}@{host}"
    tail, hash_, fragment = tail.partition("#")
    path, mark, query = tail.partition("?")
    if mark:
        path = f"{path}?{_redact_query(query)}"
    if hash_:
        path = f"{path}#{_redact_query(fragment) if '=' in fragment else fragment}"
    return f"{scheme}{sep}{authority}{path}"


def _redact_query(query: str) -> str:
    return "&".join(_redact_param(p) for p in query.split("&"))


def _redact_param(pair: str) -> str:
    name, eq, _value = pair.partition("=")
    return f"{name}={REDACTED}" if eq and is_secret_name(name) else pair


def redact_headers(items: Iterable[tuple[str, str]]) -> list[tuple[str, str]]:
    """Header pairs with the values of credential headers replaced by ``[redacted]``."""
    return [(k, REDACTED if is_secret_header(k) else v) for k, v in items]


def redact_fields(fields: Iterable[tuple[str, object]]) -> list[tuple[str, object]]:
    """Query or form fields with the values of credential-like names replaced."""
    return [(k, REDACTED if is_secret_name(k) else v) for k, v in fields]


def secret_values(
    url: str = "",
    headers: Iterable[tuple[str, str]] = (),
    fields: Iterable[tuple[str, object]] = (),
) -> list[str]:
    """The credential values in a URL, header pairs and query/form fields, longest
    first: what :func:`scrub` removes from a text that may quote them (an exception
    message from a library, say). Values shorter than 4 characters are left out, as
    replacing them would mangle the text more than it protects."""
    found: set[str] = set()
    if url:
        try:
            parts = urlsplit(url)
            if parts.password:
                found.add(parts.password)
            elif parts.username and "@" in parts.netloc:
                found.add(parts.username)
        except ValueError:
            pass
        for source in (_query_of(url), _fragment_of(url)):
            for pair in source.split("&"):
                name, eq, value = pair.partition("=")
                if eq and value and is_secret_name(name):
                    found.update((value, unquote_plus(value)))
    for name, value in headers:
        if is_secret_header(name):
            found.add(value)
            found.update(value.split()[1:])  # the credentials of "Bearer xyz"
            for part in value.split(";"):  # cookies: "a=b; c=d"
                found.update((part.strip(), part.partition("=")[2].strip()))
    for name, given in fields:
        if is_secret_name(name):
            items: list[object] = given if isinstance(given, list) else [given]
            found.update(v if isinstance(v, str) else str(v) for v in items)
    return sorted((s for s in found if len(s) >= 4), key=len, reverse=True)


def _query_of(url: str) -> str:
    return url.partition("?")[2].partition("#")[0]


def _fragment_of(url: str) -> str:
    return url.partition("#")[2]


def scrub(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each of ``secrets`` replaced by ``[redacted]``."""
    for secret in secrets:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text
