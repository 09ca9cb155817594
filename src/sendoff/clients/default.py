"""Which client executes a request that was not given one (Kohana's default client)."""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from typing import TYPE_CHECKING

from ..errors import InvalidRequest

if TYPE_CHECKING:
    from ..http.request import Request
    from .base import Client

_lock = threading.Lock()
_default: Client | None = None
_internal: ContextVar[Client | None] = ContextVar("sendoff_internal_client", default=None)


def set_default_client(client: Client | None) -> None:
    """Make ``client`` execute every external request that has no client of its own
    (``None`` restores the built-in default, a blocking :class:`External`)."""
    from .base import Client

    if client is not None and not isinstance(client, Client):
        raise TypeError(f"the default client must be a sendoff Client, not {client!r}")
    global _default
    with _lock:
        _default = client


def get_default_client() -> Client:
    """The client that executes external requests without a client of their own."""
    global _default
    client = _default
    if client is None:
        with _lock:
            if _default is None:
                from .external import External

                _default = External()
            client = _default
    return client


def set_internal_client(client: Client | None) -> Token[Client | None]:
    """Make ``client`` execute internal requests in the current context (the HMVC App
    does this while it serves a request); reset with :func:`reset_internal_client`."""
    return _internal.set(client)


def reset_internal_client(token: Token[Client | None]) -> None:
    _internal.reset(token)


def resolve_client(request: Request) -> Client:
    """The client for a request that has none: the default for external URLs, the
    serving App's for internal ones."""
    if request.is_external():
        return get_default_client()
    client = _internal.get()
    if client is None:
        raise InvalidRequest(
            "uri",
            f"{request.uri()!r} is an internal request (no '://') and no App is serving; "
            "give it a client: .client(Internal(app))",
        )
    return client
