"""Built-in subscribers, each attachable on its own: ``client.emitter.attach(Redirect())``."""

from .mock import Mock
from .prepare import Prepare
from .redirect import Redirect

__all__ = [
    "Mock",
    "Prepare",
    "Redirect",
]
