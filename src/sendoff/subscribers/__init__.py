"""Built-in subscribers, each attachable on its own: ``client.emitter.attach(Redirect())``."""

from .redirect import Redirect

__all__ = ["Redirect"]
