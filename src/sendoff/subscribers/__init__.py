"""Built-in subscribers, each attachable on its own: ``client.emitter.attach(Redirect())``."""

from .mock import Mock
from .redirect import Redirect

__all__ = [
    "Mock",
    "Redirect",
]
