"""The outbox's exceptions (to move into :mod:`sendoff.errors` with the package layering)."""

from __future__ import annotations

from ..errors import QueueFull, SendoffError


class OutboxError(SendoffError):
    """The outbox could not store or read a message; nothing was half-written.

    ``cause`` is a short, stable token for programs (``"disk_full"``, ``"read_only"``,
    ``"corrupt"``, ``"locked"``, ``"cannot_open"``, ``"io"``, ``"newer_schema"``,
    ``"not_an_outbox"``, ``"closed"``, ``"full"``, ``"error"``); the message says the same in
    plain words and names the file.
    """

    def __init__(self, message: str, *, cause: str = "error", path: str = "") -> None:
        super().__init__(message)
        self.cause = cause
        self.path = path


class OutboxFull(OutboxError, QueueFull):
    """``max_rows`` messages are stored (delivered ones count until they are purged)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message, cause="full", path=path)
