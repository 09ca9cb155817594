"""sendoff: talk to other HTTP services without making your own users wait.

The Kohana-style model (seed 003)::

    from sendoff import Request, External
    resp = Request("https://api.example.com/x").client(External()).execute()

See the README for fire-and-forget delivery, events, after-response tasks and HMVC.
"""

from __future__ import annotations

__version__ = "0.1.0"

from . import asgi, background, redaction, wsgi
from .clients.base import Client
from .clients.default import get_default_client, set_default_client
from .clients.external import External
from .clients.fire_and_forget import FireAndForget
from .clients.internal import Internal
from .clients.outbox import Outbox, OutboxReceipt
from .core.errors import (
    ConnectError,
    InvalidRequest,
    OutboxError,
    OutboxFull,
    ProtocolError,
    QueueFull,
    SendoffError,
    TimeoutError,
    TLSError,
    TooManyRedirects,
    TooManyTransitions,
    TransportError,
)
from .delivery.receipt import Receipt
from .http.headers import Headers
from .http.models import HttpError, Request, Response
from .shortcuts import fire, flush, stats

__all__ = [
    "Client",
    "ConnectError",
    "External",
    "FireAndForget",
    "Headers",
    "HttpError",
    "Internal",
    "InvalidRequest",
    "Outbox",
    "OutboxError",
    "OutboxFull",
    "OutboxReceipt",
    "ProtocolError",
    "QueueFull",
    "Receipt",
    "Request",
    "Response",
    "SendoffError",
    "TLSError",
    "TimeoutError",
    "TooManyRedirects",
    "TooManyTransitions",
    "TransportError",
    "__version__",
    "asgi",
    "background",
    "fire",
    "flush",
    "get_default_client",
    "redaction",
    "set_default_client",
    "stats",
    "wsgi",
]
