"""The event system: an emitter with priorities and the request lifecycle events.

:class:`Emitter` and :class:`Event` live in :mod:`sendoff.core.emitter` (every request
carries an emitter); they are re-exported here, beside the lifecycle.
"""

from ..core.emitter import Emitter, Event, Listener, Priority, Subscriber, emit_merged
from .lifecycle import (
    DONE,
    MAX_TRANSITIONS,
    SEND,
    BeforeEvent,
    CompleteEvent,
    EndEvent,
    ErrorEvent,
    HeadersEvent,
    LifecycleClient,
    ProgressEvent,
    RequestEvent,
    Transaction,
)
from .priorities import RequestEvents

__all__ = [
    "DONE",
    "MAX_TRANSITIONS",
    "SEND",
    "BeforeEvent",
    "CompleteEvent",
    "Emitter",
    "EndEvent",
    "ErrorEvent",
    "Event",
    "HeadersEvent",
    "LifecycleClient",
    "Listener",
    "Priority",
    "ProgressEvent",
    "RequestEvent",
    "RequestEvents",
    "Subscriber",
    "Transaction",
    "emit_merged",
]
