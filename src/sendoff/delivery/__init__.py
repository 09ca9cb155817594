"""The fire-and-forget delivery engine, its receipts, and the modes without an engine.

Inside, ownership is a tree (urllib3's PoolManager -> pool -> connection): the engine
runs one background thread per process; per-origin pools own their queue, counters and
settling; connections speak HTTP/1.1 and report to their pool. Nothing here imports
the clients: :class:`~sendoff.FireAndForget` drives it from above.
"""

from .receipt import Receipt
from .stats import stats

__all__ = ["Receipt", "stats"]
