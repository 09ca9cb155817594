"""Which request is executing: the frame behind Kohana's ``Request::initial()`` and
``Request::current()``.

An application that serves requests in-process (the HMVC ``App``) pushes a frame for
every request it executes and pops it when the request ends. Frames live in a
:class:`~contextvars.ContextVar`, so each thread and each asyncio task sees its own main
and current request, a task started inside a handler inherits the frame it was started
from, and the parent is current again once a sub-request returns.
"""

from __future__ import annotations

from contextvars import ContextVar, Token
from typing import Any, NamedTuple


class Frame(NamedTuple):
    """One executing request: itself, the main request above it (both
    :class:`~sendoff.Request`; this module sits below the one that defines it), the
    application serving it (whatever object pushed the frame) and how deep it is nested."""

    request: Any
    initial: Any
    app: object
    depth: int


_frame: ContextVar[Frame | None] = ContextVar("sendoff_frame", default=None)


def current_frame() -> Frame | None:
    """The frame of the request executing in this context, if any."""
    return _frame.get()


def push_frame(request: Any, app: object) -> Token[Frame | None]:
    """Make ``request`` current (the initial one when nothing is executing yet); undo
    with :func:`pop_frame`."""
    parent = _frame.get()
    if parent is None:
        return _frame.set(Frame(request, request, app, 0))
    return _frame.set(Frame(request, parent.initial, app, parent.depth + 1))


def pop_frame(token: Token[Frame | None]) -> None:
    """Restore the frame that was current before :func:`push_frame`."""
    _frame.reset(token)
