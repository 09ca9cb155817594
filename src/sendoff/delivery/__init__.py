"""Fire-and-forget delivery: the engine, its receipts, and the process-wide shortcuts.

``sendoff.fire()`` sends on a process-wide default :class:`~sendoff.FireAndForget`
(the default client, if it is one); ``sendoff.flush()`` drains every FireAndForget in
the process; ``sendoff.stats()`` returns the counters. Nothing here starts a thread
until the first request is fired.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, cast

from ..clients import default as _defaults
from .receipt import Receipt
from .stats import stats

if TYPE_CHECKING:
    from ..clients.fire_and_forget import FireAndForget

_lock = threading.Lock()
_default: FireAndForget | None = None
_cls: Any = None  # FireAndForget, imported at first use (it imports this package)


def default_fire_client() -> FireAndForget:
    """The client ``fire()`` uses: the default client if it is a FireAndForget, else a
    process-wide ``FireAndForget()``."""
    global _default, _cls
    if _cls is None:
        from ..clients.fire_and_forget import FireAndForget

        _cls = FireAndForget
    chosen = _defaults._default
    if chosen is not None and isinstance(chosen, _cls):
        return cast("FireAndForget", chosen)
    if _default is None:
        with _lock:
            if _default is None:
                _default = _cls()
    assert _default is not None
    return _default


def fire(
    method: str,
    url: str,
    *,
    params: Mapping[str, Any] | None = None,
    data: Mapping[str, Any] | None = None,
    json: Any = None,
    headers: Mapping[str, Any] | None = None,
    timeout: float | None = None,
) -> Receipt:
    """Send a request without waiting for it; return its :class:`Receipt` at once.

    ``params`` go in the query string, ``data`` in a form body, ``json`` in a JSON body,
    ``headers`` are sent as given, ``timeout`` overrides the client's. Bad input raises
    :class:`~sendoff.InvalidRequest`; network failures are logged, counted and put on
    the receipt, never raised.
    """
    return default_fire_client().fire(
        method, url, params=params, data=data, json=json, headers=headers, timeout=timeout
    )


def flush(timeout: float | None = None) -> bool:
    """Wait until every request fired in this process has ended (delivered, failed or
    dropped); False if ``timeout`` seconds passed first."""
    from . import engine

    if engine._engine is None:
        return True
    return engine._engine.flush(None, timeout)


__all__ = ["Receipt", "default_fire_client", "fire", "flush", "stats"]
