"""Which request is executing: Kohana's ``Request::initial()`` and ``Request::current()``.

The App pushes a frame for every request it executes and pops it when the request
ends, in a :class:`~contextvars.ContextVar`. So each thread and each asyncio task sees
its own main and current request, a task started inside a controller inherits the
frame it was started from, and the parent is current again once a sub-request returns.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import TYPE_CHECKING, NamedTuple

from .exceptions import RecursionLimit

if TYPE_CHECKING:
    from ..http.request import Request
    from .app import App

#: How deeply sub-requests may nest before :class:`RecursionLimit` is raised.
MAX_DEPTH = 20


class Frame(NamedTuple):
    """One executing request: itself, the main request above it, its App and depth."""

    request: Request
    initial: Request
    app: App
    depth: int


_frame: ContextVar[Frame | None] = ContextVar("sendoff_hmvc_frame", default=None)


def current_frame() -> Frame | None:
    """The frame of the request executing in this context, if any."""
    return _frame.get()


def enter(request: Request, app: App, max_depth: int) -> Token[Frame | None]:
    """Make ``request`` current (the initial one when nothing is executing yet)."""
    parent = _frame.get()
    if parent is None:
        return _frame.set(Frame(request, request, app, 0))
    depth = parent.depth + 1
    if depth > max_depth:
        chain = f"{parent.request.uri()!r} -> {request.uri()!r}"
        raise RecursionLimit(
            f"sub-requests nested more than {max_depth} deep ({chain}); "
            "does a controller request its own URI?"
        )
    return _frame.set(Frame(request, parent.initial, app, depth))


def leave(token: Token[Frame | None]) -> None:
    """Restore the frame that was current before :func:`enter`."""
    _frame.reset(token)
