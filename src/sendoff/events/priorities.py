"""Named priorities for request lifecycle listeners (Guzzle's RequestEvents)."""

from __future__ import annotations


class RequestEvents:
    """Priorities to place a listener relative to the built-in subscribers.

    Add to or subtract from them: ``RequestEvents.VERIFY_RESPONSE + 1`` runs just before
    the HttpError check.
    """

    EARLY = 10000
    LATE = -10000
    PREPARE_REQUEST = -100
    SIGN_REQUEST = -10000
    VERIFY_RESPONSE = 100
    REDIRECT_RESPONSE = 200
