"""The event system: an emitter with priorities and the request lifecycle events."""

from .emitter import Emitter, Listener, Priority, Subscriber, emit_merged
from .event import Event
from .lifecycle import (
    BeforeEvent,
    CompleteEvent,
    EndEvent,
    ErrorEvent,
    HeadersEvent,
    ProgressEvent,
    RequestEvent,
)
from .priorities import RequestEvents
from .transaction import DONE, MAX_TRANSITIONS, SEND, Transaction

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
    "Listener",
    "Priority",
    "ProgressEvent",
    "RequestEvent",
    "RequestEvents",
    "Subscriber",
    "Transaction",
    "emit_merged",
]
