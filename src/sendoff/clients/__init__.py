"""Clients execute requests: External (network), Internal (in-process), and the
default-client registry."""

from .base import Client
from .default import get_default_client, resolve_client, set_default_client
from .external import External
from .internal import Internal

__all__ = [
    "Client",
    "External",
    "Internal",
    "get_default_client",
    "resolve_client",
    "set_default_client",
]
