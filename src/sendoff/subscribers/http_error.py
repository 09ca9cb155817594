"""The HttpError subscriber: a 4xx or 5xx response raises :class:`sendoff.HttpError`."""

from __future__ import annotations

from typing import Any

from ..events.lifecycle import CompleteEvent
from ..events.priorities import RequestEvents
from ..http import models


class HttpError:
    """Raise :class:`sendoff.HttpError` in ``complete`` for a 4xx or 5xx response.

    It runs at ``VERIFY_RESPONSE``, so a listener above that priority (a cache, the
    Retry subscriber) may still replace the response or retry. The exception turns the
    ``complete`` into an ``error`` event whose ``response`` is the failed response; if no
    ``error`` listener intercepts it, the caller gets the exception.
    """

    def __repr__(self) -> str:
        return "<HttpError subscriber>"

    def get_events(self) -> dict[str, Any]:
        return {"complete": ("on_complete", RequestEvents.VERIFY_RESPONSE)}

    def on_complete(self, event: CompleteEvent) -> None:
        response = event.response
        if response is not None and response.status >= 400:
            raise models.HttpError(response, event.request)
