"""Built-in subscribers, each attachable on its own: ``client.emitter.attach(Redirect())``."""

from .cookies import Cookies
from .history import Entry, History
from .http_error import HttpError
from .log import Log
from .mock import Mock
from .prepare import Prepare
from .redirect import Redirect
from .retry import Retry
from .webhooks import StandardWebhooks

__all__ = [
    "Cookies",
    "Entry",
    "History",
    "HttpError",
    "Log",
    "Mock",
    "Prepare",
    "Redirect",
    "Retry",
    "StandardWebhooks",
]
