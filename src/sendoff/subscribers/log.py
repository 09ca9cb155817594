"""The Log subscriber: one structured line per request on the ``sendoff`` logger."""

from __future__ import annotations

import json
import logging
import time
from typing import TYPE_CHECKING, Any

from ..core.log import logger as sendoff_logger
from ..core.log import redact_headers, scrub, secret_values
from ..events.lifecycle import BeforeEvent, EndEvent
from ..events.priorities import RequestEvents

if TYPE_CHECKING:
    from ..http.models import Request

#: ``txn.meta`` key: when the request's first ``before`` ran (``time.perf_counter()``).
META_KEY = "log.started"


class Log:
    """Log every request once, at ``end``, as ``key=value`` pairs::

        method=GET url=https://api.example.com/x status=200 elapsed_ms=12.5 retries=0 redirects=0

    with ``error=...`` instead of ``status`` when it failed. A success is logged at INFO,
    a 4xx/5xx at WARNING, a failure at ERROR; the same fields are on the record as
    ``record.sendoff`` (a dict) for structured handlers. With DEBUG enabled, the request
    and response headers follow on their own lines. Credentials are never logged: the
    :mod:`sendoff.redaction` policy applies (the values of Authorization, Cookie,
    ``X-Api-Key``-style headers, URL passwords and secret query values become
    ``[redacted]``), and so does any of those secrets quoted in an error message.
    ``logger`` must be the ``sendoff`` logger (the default) or a child of it.
    """

    def __init__(self, logger: logging.Logger | None = None) -> None:
        logger = logger if logger is not None else sendoff_logger
        if logger.name != "sendoff" and not logger.name.startswith("sendoff."):
            raise ValueError(f"log on 'sendoff' or a child of it, not {logger.name!r}")
        self.logger = logger

    def __repr__(self) -> str:
        return f"<Log to {self.logger.name!r}>"

    def get_events(self) -> dict[str, Any]:
        return {
            "before": ("on_before", RequestEvents.EARLY),
            "end": ("on_end", RequestEvents.LATE),
        }

    def on_before(self, event: BeforeEvent) -> None:
        event.transaction.meta.setdefault(META_KEY, time.perf_counter())

    def on_end(self, event: EndEvent) -> None:
        txn = event.transaction
        response, exception = txn.response, txn.exception
        if exception is not None:
            level = logging.ERROR
        elif response is not None and response.status >= 400:
            level = logging.WARNING
        else:
            level = logging.INFO
        log = self.logger
        if log.isEnabledFor(level):
            fields = self.fields(event)
            log.log(level, "%s", _logfmt(fields), extra={"sendoff": fields})
        if log.isEnabledFor(logging.DEBUG):
            log.debug("request headers: %s", _header_dump(txn.request))
            if response is not None:
                log.debug("response headers: %s", redact_headers(response.headers.multi_items()))

    def fields(self, event: EndEvent) -> dict[str, Any]:
        """The fields of the line logged for the request ``event`` ends."""
        txn = event.transaction
        started = txn.meta.get(META_KEY)
        if started is not None:
            elapsed = time.perf_counter() - started
        else:
            elapsed = float(txn.transfer_info.get("total_time", 0.0))
        redirects: int = txn.meta.get("redirects", 0)
        fields: dict[str, Any] = {
            "method": txn.original.method(),
            "url": txn.original.url(redacted=True),
        }
        if txn.request is not txn.original and txn.request.url() != txn.original.url():
            fields["final_url"] = txn.request.url(redacted=True)
        if txn.exception is not None:
            secrets = _secrets(txn.original, txn.request)
            fields["error"] = scrub(f"{type(txn.exception).__name__}: {txn.exception}", secrets)
        else:
            fields["status"] = txn.response.status if txn.response is not None else None
        fields["elapsed_ms"] = round(elapsed * 1000, 3)
        fields["retries"] = txn.retry_count - redirects
        fields["redirects"] = redirects
        return fields


def _header_dump(request: Request[Any]) -> list[tuple[str, str]]:
    try:
        sent = request.prepare().headers  # what went on the wire, derived ones included
    except Exception:  # a request that could not be rendered failed for that reason
        sent = request.headers().multi_items()
    return redact_headers(sent)


def _secrets(*requests: Request[Any]) -> list[str]:
    """Credential values of ``requests`` that must not appear in any log line: the
    values of credential headers and cookies, the URL password, secret query values."""
    found: set[str] = set()
    for request in requests:
        headers = request.headers().multi_items()
        headers += [("cookie", f"{k}={v}") for k, v in request.cookie().items()]
        found.update(secret_values(request.url(), headers, request.query().items()))
    return sorted(found, key=len, reverse=True)


def _logfmt(fields: dict[str, Any]) -> str:
    return " ".join(f"{key}={_value(value)}" for key, value in fields.items())


def _value(value: Any) -> str:
    text = "-" if value is None else str(value)
    if not text or any(ch in text for ch in ' "=\\') or not text.isprintable():
        return json.dumps(text, ensure_ascii=False)  # quoted; newlines cannot forge lines
    return text
