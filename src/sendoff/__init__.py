"""sendoff: talk to other HTTP services without making your own users wait."""

from __future__ import annotations

from . import asgi, background, wsgi
from .errors import (
    ConnectError,
    HttpError,
    InvalidRequest,
    ProtocolError,
    QueueFull,
    SendoffError,
    TimeoutError,
    TLSError,
    TooManyTransitions,
    TransportError,
)

__version__ = "0.1.0"

__all__ = [
    "ConnectError",
    "HttpError",
    "InvalidRequest",
    "ProtocolError",
    "QueueFull",
    "SendoffError",
    "TLSError",
    "TimeoutError",
    "TooManyTransitions",
    "TransportError",
    "__version__",
    "asgi",
    "background",
    "wsgi",
]
