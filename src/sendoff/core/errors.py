"""The exceptions sendoff raises.

Programmer errors (bad input) raise :class:`InvalidRequest` at once, in the caller.
Network failures of blocking clients raise a :class:`TransportError` subclass; those of
fire-and-forget requests are logged, counted and put on the receipt instead.
"""

from __future__ import annotations

import builtins
from typing import Any


class SendoffError(Exception):
    """Base class of every exception sendoff raises."""


class InvalidRequest(SendoffError, ValueError):
    """A request that cannot be sent as given; the message names the field at fault."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        super().__init__(f"{field}: {message}")


class TransportError(SendoffError):
    """The request could not be exchanged with the server."""

    def __init__(
        self,
        message: str,
        *,
        transfer_info: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.transfer_info: dict[str, Any] = transfer_info if transfer_info is not None else {}


class ConnectError(TransportError):
    """The connection could not be opened (refused, unreachable, DNS failure)."""


class TimeoutError(TransportError, builtins.TimeoutError):
    """The server did not connect, accept or answer within the timeout.

    It is also the builtin ``TimeoutError``, so ``except TimeoutError`` catches it either way.
    """


class TLSError(ConnectError):
    """The TLS handshake failed (untrusted or mismatched certificate, protocol error)."""


class ProtocolError(TransportError):
    """The server broke the HTTP protocol or closed the connection mid-response."""


class TooManyTransitions(SendoffError):
    """A request's lifecycle looped (intercept/retry) more often than the bound allows."""


class TooManyRedirects(SendoffError):
    """A request was redirected more often than its client allows."""


class QueueFull(SendoffError):
    """The fire-and-forget queue is full and the client's ``on_full`` policy is ``"raise"``."""


class OutboxError(SendoffError):
    """The outbox could not store or read a message; nothing was half-written.

    ``cause`` is a short, stable token for programs (``"disk_full"``, ``"read_only"``,
    ``"corrupt"``, ``"locked"``, ``"cannot_open"``, ``"io"``, ``"newer_schema"``,
    ``"not_an_outbox"``, ``"unsupported_sqlite"``, ``"closed"``, ``"full"``, ``"error"``); the
    message says the same in plain words and names the file.
    """

    def __init__(self, message: str, *, cause: str = "error", path: str = "") -> None:
        super().__init__(message)
        self.cause = cause
        self.path = path


class OutboxFull(OutboxError, QueueFull):
    """``max_rows`` messages are stored (delivered ones count until they are purged)."""

    def __init__(self, message: str, *, path: str = "") -> None:
        super().__init__(message, cause="full", path=path)
