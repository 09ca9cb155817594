"""The Redirect subscriber: follows redirects by retrying with the new location."""

from __future__ import annotations

from typing import Any
from urllib.parse import urljoin

from ..core.errors import TooManyRedirects
from ..events.lifecycle import CompleteEvent
from ..events.priorities import RequestEvents

#: Kohana's rules, plus 308 (the permanent twin of 307).
REDIRECT_CODES = frozenset({201, 301, 302, 303, 307, 308})
#: Statuses after which the new request is a GET without a body.
SWITCH_TO_GET = frozenset({201, 303})
_ORIGIN_BOUND = ("authorization", "cookie", "proxy-authorization", "host")


class Redirect:
    """Follow 201/301/302/303/307/308 responses that carry a ``Location``.

    303 and 201 switch to GET; 302 keeps the method (Kohana's strict redirects). More
    than ``max_redirects`` in one request raises :class:`~sendoff.TooManyRedirects`.
    Credentials (Authorization, Cookie, userinfo) are not carried to another origin.
    """

    def __init__(self, max_redirects: int = 5) -> None:
        self.max_redirects = max_redirects

    def get_events(self) -> dict[str, Any]:
        return {"complete": ("on_complete", RequestEvents.REDIRECT_RESPONSE)}

    def on_complete(self, event: CompleteEvent) -> None:
        response = event.response
        if response is None or response.status not in REDIRECT_CODES:
            return
        location = response.headers.get("location")
        if not location:
            return
        txn = event.transaction
        count = txn.meta.get("redirects", 0)
        if count >= self.max_redirects:
            raise TooManyRedirects(
                f"{txn.original.method()} {txn.original.url(redacted=True)}: more than "
                f"{self.max_redirects} redirects"
            )
        current = event.request
        target = urljoin(current.url(), location.strip())
        follow = current.copy()
        follow.retarget(target)
        if response.status in SWITCH_TO_GET and follow.method() != "HEAD":
            follow.method("GET")
            follow.drop_body()
        if follow.parsed_url.origin != current.parsed_url.origin:
            for name in _ORIGIN_BOUND:
                follow.headers(name, None)
            for name in follow.cookie():  # request.cookie() values are credentials too
                follow.cookie(name, None)
        txn.meta["redirects"] = count + 1
        txn.meta.setdefault("redirect_history", []).append(response)
        txn.request = follow
        event.retry()
