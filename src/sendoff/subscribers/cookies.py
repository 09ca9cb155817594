"""The Cookies subscriber: a cookie jar shared by every request of a client."""

from __future__ import annotations

import urllib.request
from http.cookiejar import CookieJar
from typing import TYPE_CHECKING, Any

from ..events.lifecycle import BeforeEvent, CompleteEvent
from ..events.priorities import RequestEvents

if TYPE_CHECKING:
    from ..http.models import Response

#: ``txn.meta`` key: the Cookie header this subscriber set, and the caller's part of it.
META_KEY = "cookies.header"


class Cookies:
    """Keep the cookies responses set and send them back, across requests.

    The jar is a standard :class:`http.cookiejar.CookieJar` (pass your own, e.g. a
    ``MozillaCookieJar`` to persist it), so domain, path, expiry and ``Secure`` rules are
    the standard library's. ``Set-Cookie`` is read at ``EARLY`` in ``complete``, before
    the Redirect subscriber follows a redirect, so cookies set by a redirect are sent to
    its target. The request you pass is not changed: the Cookie header goes on a copy.
    A Cookie header you set yourself is kept and sent first.
    """

    def __init__(self, jar: CookieJar | None = None) -> None:
        self.jar = jar if jar is not None else CookieJar()

    def __repr__(self) -> str:
        return f"<Cookies {len(self.jar)} cookie(s)>"

    def __len__(self) -> int:
        return len(self.jar)

    def get(self, name: str, default: str | None = None) -> str | None:
        """The value of the first cookie called ``name`` in the jar (any domain)."""
        for cookie in self.jar:
            if cookie.name == name:
                return cookie.value
        return default

    def clear(self) -> None:
        """Forget every cookie."""
        self.jar.clear()

    def get_events(self) -> dict[str, Any]:
        return {
            "before": ("on_before", 0),
            "complete": ("on_complete", RequestEvents.EARLY),
        }

    def on_before(self, event: BeforeEvent) -> None:
        txn = event.transaction
        request = txn.request
        probe = urllib.request.Request(request.uri())
        self.jar.add_cookie_header(probe)
        from_jar = probe.get_header("Cookie")
        ours = txn.meta.get(META_KEY)  # (the header it set, the caller's part of it)
        if from_jar is None and ours is None:
            return
        current = request.headers("Cookie")
        if ours is not None and current == ours[0]:
            current = ours[1]  # set here for an earlier try: start again from the caller's
        value = "; ".join(v for v in (current, from_jar) if v) or None
        if request is txn.original:
            request = request.copy()
            txn.request = request
        request.headers("Cookie", value)
        txn.meta[META_KEY] = (value, current)

    def on_complete(self, event: CompleteEvent) -> None:
        response = event.response
        if response is None or "set-cookie" not in response.headers:
            return
        self.jar.extract_cookies(
            _ResponseInfo(response),  # type: ignore[arg-type]
            urllib.request.Request(event.request.uri()),
        )


class _ResponseInfo:
    """What :meth:`CookieJar.extract_cookies` reads of a response: ``info().get_all``."""

    __slots__ = ("_response",)

    def __init__(self, response: Response) -> None:
        self._response = response

    def info(self) -> _ResponseInfo:
        return self

    def get_all(self, name: str, default: Any = None) -> Any:
        return self._response.headers.get_all(name) or default
