"""Counters: the engine's per-origin ones, and those of the modes without an engine."""

from __future__ import annotations

import threading
from typing import Any


class ModeCounters:
    """Thread-safe counters of one mode (``inline`` or ``process``)."""

    def __init__(self, *names: str) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(names, 0)

    def add(self, name: str, n: int = 1) -> None:
        with self._lock:
            self._values[name] += n

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._values)

    def reset(self) -> None:
        with self._lock:
            self._values = dict.fromkeys(self._values, 0)


_MODES = {
    "inline": ModeCounters("sent", "failed"),
    "process": ModeCounters("handed_off", "failed"),
}


def mode_counters(mode: str) -> ModeCounters:
    return _MODES[mode]


def stats() -> dict[str, Any]:
    """Process-wide counters of fire-and-forget delivery.

    ``queued`` (waiting for a connection), ``in_flight`` (written, awaiting the response),
    ``delivered`` (a response arrived, whatever its status), ``failed`` (logged with a
    reason), ``dropped`` (by ``on_full``), ``retried`` (sent again: connect retries,
    re-sends after a keep-alive close, listener retries), ``abandoned`` (left at exit),
    the same per origin under ``origins``, and the counters of the ``inline`` and
    ``process`` modes.
    """
    from .engine import current_engine
    from .pool import COUNTERS

    engine = current_engine()
    if engine is None:
        totals: dict[str, Any] = dict.fromkeys(COUNTERS, 0)
        totals.update(abandoned=0, origins={})
    else:
        totals = engine.stats()
    totals["inline"] = _MODES["inline"].snapshot()
    totals["process"] = _MODES["process"].snapshot()
    return totals
