"""Clients execute requests: External (network), and the default-client registry."""

from .base import Client
from .default import get_default_client, resolve_client, set_default_client
from .external import External

__all__ = ["Client", "External", "get_default_client", "resolve_client", "set_default_client"]
