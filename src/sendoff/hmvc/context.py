"""Entering and leaving a request's frame, with the bound on nested sub-requests.

The frame itself (what ``Request.initial()`` and ``Request.current()`` read) lives in
:mod:`sendoff.http.frame`; the App enters one for every request it executes.
"""

from __future__ import annotations

from contextvars import Token
from typing import TYPE_CHECKING, Any

from ..http.frame import Frame, current_frame, pop_frame, push_frame
from .exceptions import RecursionLimit

if TYPE_CHECKING:
    from ..http.models import Request

#: How deeply sub-requests may nest before :class:`RecursionLimit` is raised.
MAX_DEPTH = 20


def enter(request: Request[Any], app: object, max_depth: int) -> Token[Frame | None]:
    """Make ``request`` current (the initial one when nothing is executing yet)."""
    parent = current_frame()
    if parent is not None and parent.depth + 1 > max_depth:
        chain = f"{parent.request.uri()!r} -> {request.uri()!r}"
        raise RecursionLimit(
            f"sub-requests nested more than {max_depth} deep ({chain}); "
            "does a controller request its own URI?"
        )
    return push_frame(request, app)


def leave(token: Token[Frame | None]) -> None:
    """Restore the frame that was current before :func:`enter`."""
    pop_frame(token)
