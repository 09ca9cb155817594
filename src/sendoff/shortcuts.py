"""The process-wide shortcuts: ``sendoff.fire()``, ``sendoff.flush()``, ``sendoff.stats()``.

``fire()`` sends on the default client when it is a :class:`~sendoff.FireAndForget`,
else on a process-wide ``FireAndForget()``; ``flush()`` drains every FireAndForget in the
process; ``stats()`` returns the counters. Nothing here starts a thread until the first
request is fired.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any

from .clients.default import chosen_default_client
from .clients.fire_and_forget import FireAndForget
from .delivery.engine import current_engine
from .delivery.receipt import Receipt
from .delivery.stats import stats
from .http.models import FieldInput, HeaderInput

_lock = threading.Lock()
_default: FireAndForget | None = None


def default_fire_client() -> FireAndForget:
    """The client ``fire()`` uses: the default client if it is a FireAndForget, else a
    process-wide ``FireAndForget()``."""
    global _default
    chosen = chosen_default_client()
    if isinstance(chosen, FireAndForget):
        return chosen
    if _default is None:
        with _lock:
            if _default is None:
                _default = FireAndForget()
    return _default


def fire(
    method: str,
    url: str,
    *,
    params: Mapping[str, FieldInput | None] | None = None,
    data: Mapping[str, FieldInput | None] | None = None,
    json: Any = None,
    headers: Mapping[str, HeaderInput] | None = None,
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
    engine = current_engine()
    if engine is None:
        return True
    return engine.flush(None, timeout)


__all__ = ["default_fire_client", "fire", "flush", "stats"]
