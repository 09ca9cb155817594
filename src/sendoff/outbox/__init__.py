"""The durable outbox: messages stored in SQLite until a relay has delivered them.

This package holds the store (:class:`Store`) and the retry schedule
(:mod:`sendoff.outbox.schedule`); the relay that delivers through the engine builds on them.
"""

from __future__ import annotations

from ..core.errors import OutboxError, OutboxFull
from .schedule import (
    DEFAULT_SCHEDULE,
    ErrorKind,
    classify,
    next_delay,
    plan_retry,
    retry_after,
)
from .store import (
    MIGRATIONS,
    SCHEMA_VERSION,
    Claimed,
    Enqueued,
    MessageStatus,
    NewMessage,
    Outcome,
    Stats,
    Status,
    Store,
    Turn,
    new_id,
    new_owner,
    origin_of,
)

__all__ = [
    "DEFAULT_SCHEDULE",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "Claimed",
    "Enqueued",
    "ErrorKind",
    "MessageStatus",
    "NewMessage",
    "OutboxError",
    "OutboxFull",
    "Outcome",
    "Stats",
    "Status",
    "Store",
    "Turn",
    "classify",
    "new_id",
    "new_owner",
    "next_delay",
    "origin_of",
    "plan_retry",
    "retry_after",
]
