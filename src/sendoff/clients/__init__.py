"""Clients execute requests: External (network, blocking), FireAndForget (network,
returns a receipt at once), Internal (in-process), and the default-client registry."""

from .base import Client
from .default import get_default_client, resolve_client, set_default_client
from .external import External
from .fire_and_forget import FireAndForget
from .internal import Internal
from .outbox import Outbox, OutboxReceipt

__all__ = [
    "Client",
    "External",
    "FireAndForget",
    "Internal",
    "Outbox",
    "OutboxReceipt",
    "get_default_client",
    "resolve_client",
    "set_default_client",
]
