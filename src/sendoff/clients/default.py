"""Which client executes a request that was not given one (Kohana's default client).

External requests go to the process-wide default client (a blocking :class:`External`
unless :func:`set_default_client` chose another); internal requests go to the client an
application set for the current context while it serves a request. Importing this
module registers :func:`resolve_client` with :class:`~sendoff.Request`.
"""

from __future__ import annotations

import threading
from contextvars import ContextVar, Token
from typing import Any

from ..core.errors import InvalidRequest
from ..http.models import Request, use_client_resolver
from .base import Client

_lock = threading.Lock()
_default: Client[Any] | None = None
_internal: ContextVar[Client[Any] | None] = ContextVar("sendoff_internal_client", default=None)


def set_default_client(client: Client[Any] | None) -> None:
    """Make ``client`` execute every external request that has no client of its own
    (``None`` restores the built-in default, a blocking :class:`External`)."""
    if client is not None and not isinstance(client, Client):
        raise TypeError(f"the default client must be a sendoff Client, not {client!r}")
    global _default
    with _lock:
        _default = client


def get_default_client() -> Client[Any]:
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


def chosen_default_client() -> Client[Any] | None:
    """The client :func:`set_default_client` chose, or None when none was chosen."""
    return _default


def set_internal_client(client: Client[Any] | None) -> Token[Client[Any] | None]:
    """Make ``client`` execute internal requests in the current context (the HMVC App
    does this while it serves a request); reset with :func:`reset_internal_client`."""
    return _internal.set(client)


def reset_internal_client(token: Token[Client[Any] | None]) -> None:
    """Undo :func:`set_internal_client`."""
    _internal.reset(token)


def get_internal_client() -> Client[Any] | None:
    """The client executing internal requests in the current context, if any."""
    return _internal.get()


def resolve_client(request: Request[Any]) -> Client[Any]:
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


use_client_resolver(resolve_client)
