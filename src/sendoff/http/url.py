"""Parsing and validation of request URIs.

A URI with ``://`` is external (an HTTP URL); anything else is internal (a route path for
the HMVC side). External URLs are checked at once: scheme http/https, a host (IDNA-encoded
when internationalised, IPv6 literals in brackets), a port in 1-65535, no CR/LF/NUL.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache
from typing import NamedTuple
from urllib.parse import quote, unquote

from ..core.errors import InvalidRequest
from .checks import check_text, utf8

DEFAULT_PORTS = {"http": 80, "https": 443}

_REG_NAME = re.compile(r"[A-Za-z0-9._~-]+\Z")
_PATH_UNSAFE = re.compile(r"[^A-Za-z0-9\-._~!$&'()*+,;=:@/%]|%(?![0-9A-Fa-f]{2})")


class URL(NamedTuple):
    """A parsed request URI. Internal URIs have an empty scheme and host.

    A named tuple: immutable, and cheap to make (a parse that misses the cache builds one
    per fire)."""

    scheme: str
    host: str
    port: int
    path: str
    query: str
    username: str | None = None
    password: str | None = None
    #: the Host header: the port only when it is not the scheme's default
    host_header: str = ""
    #: (scheme, host, port): the key of a connection pool
    origin: tuple[str, str, int] = ("", "", 0)
    #: ``scheme://host[:port]``, as logs and counters name the origin
    origin_text: str = ""

    def __repr__(self) -> str:
        password = None if self.password is None else "[redacted]"
        return (
            f"URL(scheme={self.scheme!r}, host={self.host!r}, port={self.port!r}, "
            f"path={self.path!r}, query={self.query!r}, username={self.username!r}, "
            f"password={password!r})"
        )

    @property
    def is_external(self) -> bool:
        return bool(self.scheme)

    def text(self, query: str | None = None, *, with_credentials: bool = False) -> str:
        """The URI as text, with ``query`` (or its own) as the query string."""
        q = self.query if query is None else query
        tail = f"{self.path}?{q}" if q else self.path
        if not self.scheme:
            return tail
        auth = ""
        if with_credentials and self.username is not None:
            # encoded again: decoded, a '#', '/', '?' or '@' in a password would end the
            # userinfo early (and redaction with it)
            auth = quote(self.username, safe=_USERINFO_SAFE)
            if self.password is not None:
                auth += ":" + quote(self.password, safe=_USERINFO_SAFE)
            auth += "@"
        return f"{self.scheme}://{auth}{self.host_header}{tail}"


#: what userinfo may hold unencoded besides letters and digits (RFC 3986, less ':')
_USERINFO_SAFE = "-._~!$&'()*+,;="

#: URLs parsed so far, by their text. A plain dict, not an LRU: a hit must touch as little
#: memory as possible (``fire()`` to thousands of origins finds its entry cold in the CPU
#: caches, and an LRU would also relink two neighbours on every hit). When full it starts
#: afresh.
_PARSED: dict[str, URL] = {}
_PARSED_MAX = 16384


def parse_uri(uri: str) -> URL:
    """Parse ``uri`` (cached: the same text always yields the same URL)."""
    try:
        return _PARSED[uri]
    except KeyError:
        pass
    except TypeError:  # not a str (nor hashable): _parse_uri says what is wrong
        return _parse_uri(uri)
    url = _parse_uri(uri)
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[uri] = url
    return url


def _parse_uri(uri: str) -> URL:
    if not isinstance(uri, str):
        raise InvalidRequest("uri", f"must be str, not {type(uri).__name__}")
    check_text("uri", uri)
    uri = uri.strip()
    if "://" not in uri:
        path, _, query = uri.partition("#")[0].partition("?")
        return URL("", "", 0, path.strip("/"), query)

    scheme, _, rest = uri.partition("://")
    scheme = scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise InvalidRequest("uri", f"scheme {scheme!r} is not supported; use http or https")
    rest = rest.partition("#")[0]
    cut = len(rest)
    for mark in ("/", "?"):
        at = rest.find(mark, 0, cut)
        if at >= 0:
            cut = at
    authority, target = rest[:cut], rest[cut:]
    path, _, query = target.partition("?")

    username, password, host, port, host_header = _authority(scheme, authority)
    return URL(
        scheme,
        host,
        port,
        quote_path(path or "/"),
        query,
        username,
        password,
        host_header,
        (scheme, host, port),
        f"{scheme}://{host_header}",
    )


@lru_cache(maxsize=16384)
def _authority(scheme: str, authority: str) -> tuple[str | None, str | None, str, int, str]:
    """(username, password, host, port, Host header) of ``authority``: cached apart from
    the whole URI, so that many paths to one origin (or many origins) parse it once."""
    userinfo, _, hostport = authority.rpartition("@")
    username = password = None
    if userinfo:
        user, has_password, secret = userinfo.partition(":")
        username = unquote(user)
        password = unquote(secret) if has_password else None
    host, port_text = _split_host_port(hostport)
    port = DEFAULT_PORTS[scheme]
    if port_text:
        if not (port_text.isascii() and port_text.isdigit()):
            # never quoted: a password holding an unencoded '/', '?' or '#' ends up here
            raise InvalidRequest(
                "uri", "the port is not a number (in a password, '/', '?' and '#' must be"
                " percent-encoded)"
            )
        port = int(port_text)
        if not 1 <= port <= 65535:
            raise InvalidRequest("uri", f"port {port} is outside 1-65535")
    host_header = f"[{host}]" if ":" in host else host
    if port != DEFAULT_PORTS[scheme]:
        host_header = f"{host_header}:{port}"
    return username, password, host, port, host_header


def _split_host_port(hostport: str) -> tuple[str, str]:
    if hostport.startswith("["):
        end = hostport.find("]")
        if end < 0:
            raise InvalidRequest("uri", "the IPv6 literal of the host has no closing ']'")
        literal, after = hostport[1:end], hostport[end + 1 :]
        try:
            ipaddress.IPv6Address(literal)
        except ValueError:
            raise InvalidRequest("uri", f"{literal!r} is not an IPv6 address") from None
        if after and not after.startswith(":"):
            raise InvalidRequest("uri", "only ':port' may follow a bracketed IPv6 host")
        return literal.lower(), after[1:]
    if hostport.count(":") > 1:
        raise InvalidRequest("uri", "IPv6 addresses need brackets: http://[::1]:8080/")
    host, _, port_text = hostport.partition(":")
    if not host:
        raise InvalidRequest("uri", "no host after '://'")
    return encode_host(host), port_text


def encode_host(host: str) -> str:
    """The ASCII form of a host name; internationalised names are IDNA-encoded."""
    if not host.isascii():
        try:
            import idna  # IDNA 2008 with UTS 46 mapping, as browsers and requests do

            host = idna.encode(host, uts46=True).decode("ascii")
        except ImportError:
            try:
                host = host.encode("idna").decode("ascii")
            except UnicodeError as exc:
                raise InvalidRequest("uri", f"host {host!r} is not a valid IDNA name") from exc
        except idna.IDNAError as exc:
            raise InvalidRequest("uri", f"host {host!r} is not a valid IDNA name: {exc}") from None
    if _REG_NAME.match(host) is None:
        raise InvalidRequest("uri", f"host {host!r} contains characters not allowed in a host")
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    if len(host) > 253 or any(not label or len(label) > 63 for label in labels):
        raise InvalidRequest(
            "uri", f"host {host!r} is not a valid name (empty label, or one over 63 characters)"
        )
    return host.lower()


def quote_path(path: str) -> str:
    """Percent-encode what may not appear in a path; existing %XX escapes are kept."""
    if _PATH_UNSAFE.search(path) is None:
        return path
    utf8("uri", path)
    return _PATH_UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), path)
