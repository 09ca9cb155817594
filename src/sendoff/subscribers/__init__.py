"""Built-in subscribers, each attachable on its own: ``client.emitter.attach(Redirect())``."""

from .http_error import HttpError
from .mock import Mock
from .prepare import Prepare
from .redirect import Redirect

__all__ = [
    "HttpError",
    "Mock",
    "Prepare",
    "Redirect",
]
