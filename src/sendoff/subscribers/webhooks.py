"""The StandardWebhooks subscriber: signs every attempt as the Standard Webhooks spec says.

Each attempt of a request gets ``webhook-id`` (the message id: the same on every attempt),
``webhook-timestamp`` (now, in seconds: fresh on every attempt, so that a receiver can
reject stale or replayed deliveries) and ``webhook-signature``: ``v1,`` and the base64
HMAC-SHA256 of ``"{id}.{timestamp}.{body}"`` under each secret (space-separated, so that
secrets can be rotated: sign with the new and the old one for a while).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from ..events.lifecycle import BeforeEvent
from ..events.priorities import RequestEvents

SECRET_PREFIX = "whsec_"
#: Where the message id comes from when the request does not carry ``webhook-id``.
ID_HEADERS = ("webhook-id", "idempotency-key")


class StandardWebhooks:
    """Sign requests in ``before``, at ``SIGN_REQUEST`` (after everything that changes
    the body)::

        client.emitter.attach(StandardWebhooks("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"))

    ``secrets`` is one secret or several (``whsec_`` followed by base64, as the spec and
    Svix give them; raw ``bytes`` are taken as the key itself). The ``webhook-id`` is the
    request's own ``webhook-id`` header, else its ``Idempotency-Key`` (the outbox sends
    the message id there), else a new id kept for the request's retries.
    """

    def __init__(
        self,
        secrets: str | bytes | Iterable[str | bytes],
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        given = [secrets] if isinstance(secrets, str | bytes) else list(secrets)
        if not given:
            raise ValueError("secrets: give at least one secret")
        self.keys = [_key(secret) for secret in given]
        self.clock = clock

    def __repr__(self) -> str:
        return f"<StandardWebhooks {len(self.keys)} secret(s)>"

    def get_events(self) -> dict[str, Any]:
        return {"before": ("on_before", RequestEvents.SIGN_REQUEST)}

    def on_before(self, event: BeforeEvent) -> None:
        request = event.request
        headers = request.headers()
        message_id = next((headers[name] for name in ID_HEADERS if name in headers), None)
        if message_id is None:
            message_id = event.transaction.meta.setdefault("webhook-id", f"msg_{uuid.uuid4().hex}")
        timestamp = str(int(self.clock()))
        headers["webhook-id"] = message_id
        headers["webhook-timestamp"] = timestamp
        headers["webhook-signature"] = self.signature(message_id, timestamp, request.body())

    def signature(self, message_id: str, timestamp: str, body: bytes) -> str:
        """The ``webhook-signature`` value for one attempt."""
        signed = f"{message_id}.{timestamp}.".encode() + body
        return " ".join(
            "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
            for key in self.keys
        )


def _key(secret: str | bytes) -> bytes:
    if isinstance(secret, bytes):
        if not secret:
            raise ValueError("secrets: a secret may not be empty")
        return secret
    if not isinstance(secret, str) or not secret.startswith(SECRET_PREFIX):
        raise ValueError("secrets: a secret is 'whsec_' followed by base64 (or raw bytes)")
    try:
        key = base64.b64decode(secret[len(SECRET_PREFIX) :], validate=True)
    except ValueError:
        raise ValueError("secrets: the part after 'whsec_' is not base64") from None
    if not key:
        raise ValueError("secrets: a secret may not be empty")
    return key
