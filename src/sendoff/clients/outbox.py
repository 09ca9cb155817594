"""The Outbox client: durable, at-least-once delivery through an embedded SQLite file.

``execute()``/``fire()`` return once the request's row is committed (tens of
microseconds); a relay delivers it through the engine, with retries on a schedule that
survives restarts, the message's key sent as ``Idempotency-Key`` on every attempt, dead
letters and replay. Kill the process at any point: what ``fire()`` returned for is
delivered once a process opens the file again (a relay of any process on the file).
"""

from __future__ import annotations

import atexit
import inspect
import os
import threading
import time
import weakref
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal

from ..core.errors import InvalidRequest
from ..core.seconds import is_seconds
from ..delivery.sender import Settings
from ..delivery.wire import build_request, fire_wire
from ..http.checks import check_controls, check_token, header_value
from ..http.headers import Headers
from ..http.models import FieldInput, HeaderInput, Response
from ..outbox import schedule as _schedule
from ..outbox.relay import (
    DEFAULT_CIRCUIT,
    IDEMPOTENCY_HEADER,
    Circuit,
    Relay,
    RelayBackend,
    RelayConfig,
)
from ..outbox.schedule import DEFAULT_SCHEDULE
from ..outbox.store import MessageStatus, NewMessage, Stats, Store
from .base import Client

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import Request
    from ..http.url import URL

#: The file ``Outbox()`` opens when given no path and ``$SENDOFF_OUTBOX`` is not set: in
#: the current directory.
DEFAULT_PATH = "sendoff-outbox.sqlite3"
FINAL = ("delivered", "dead")


class OutboxReceipt:
    """What storing a message returns: its id (sent as the idempotency key unless the
    caller chose a key), its key, and whether the key was stored already (``existing``:
    then nothing new was stored). :meth:`status` reads the message's state from the file
    (as any process can); :meth:`wait` waits until it is delivered or dead."""

    __slots__ = ("created_at", "existing", "id", "key", "outbox")

    def __init__(
        self, outbox: Outbox, id: str, key: str, created_at: float, existing: bool
    ) -> None:
        self.outbox = outbox
        self.id = id
        self.key = key
        self.created_at = created_at
        self.existing = existing

    def __repr__(self) -> str:
        return f"<OutboxReceipt {self.id} key={self.key!r}{' existing' if self.existing else ''}>"

    def status(self) -> MessageStatus | None:
        """The message as the file holds it now (None once purged)."""
        return self.outbox.status(self.id)

    def wait(self, timeout: float | None = None) -> MessageStatus | None:
        """Wait until the message is delivered or dead (at most ``timeout`` seconds);
        return its status as it then is."""
        limit = None if timeout is None else time.monotonic() + timeout
        pause = 0.005
        while True:
            state = self.status()
            if state is None or state.status in FINAL:
                return state
            if limit is not None and time.monotonic() >= limit:
                return state
            time.sleep(pause)  # another process may deliver it: only the file can tell
            pause = min(pause * 2, 0.1)


class Outbox(Client[OutboxReceipt]):
    """Stores requests durably and delivers them at least once.

    ``path`` is the SQLite file (created if missing; default ``$SENDOFF_OUTBOX``, else
    ``sendoff-outbox.sqlite3`` in the current directory). Several processes may share it
    (gunicorn workers, a separate ``sendoff outbox relay PATH``): leases keep them from
    delivering the same message twice.

    ``relay="thread"`` (default) delivers from a thread of this process, started by the
    first message; ``relay=None`` only stores (run ``sendoff outbox relay PATH``); a
    relay object (a :class:`~sendoff.outbox.relay.RelayBackend`, such as
    ``sendoff.celery.CeleryRelay(app)``, which delivers on Celery workers) is bound to
    this outbox's file and settings.
    ``durability="full"`` also survives power loss (each commit is fsynced).
    ``schedule`` is the retry schedule in seconds (default: at once, 5 s, 5 min, 30 min,
    2 h, 5 h, 10 h, 10 h; ±20% jitter); 5xx, 408, 429, connect errors, timeouts and cut
    responses are retried, other 4xx are final (dead), and so is the end of the schedule.
    ``timeout`` bounds each wait of an attempt and ``deadline`` (default twice
    ``timeout``) the whole attempt. Listeners on :attr:`emitter` run on every attempt, at
    send time (attach :class:`~sendoff.subscribers.StandardWebhooks` to sign). Delivered
    rows are purged after ``keep_delivered`` seconds; ``max_rows`` bounds the file (a full
    outbox raises :class:`~sendoff.QueueFull`). Anything that keeps a message from being
    stored raises :class:`~sendoff.OutboxError`.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        relay: Literal["thread"] | RelayBackend | None = "thread",
        durability: Literal["normal", "full"] = "normal",
        timeout: float = 30.0,
        deadline: float | None = None,
        schedule: Sequence[float] = DEFAULT_SCHEDULE,
        idempotency_header: str = IDEMPOTENCY_HEADER,
        keep_delivered: float | None = 24 * 3600.0,
        max_rows: int | None = None,
        busy_timeout: float = 5.0,
        verify: bool = True,
        ca_bundle: str | None = None,
        connections_per_origin: int = 16,
        circuit: Circuit = DEFAULT_CIRCUIT,
        lease: float | None = None,
        exit_timeout: float = 5.0,
    ) -> None:
        super().__init__(timeout=timeout)
        if isinstance(relay, str):
            if relay != "thread":
                raise ValueError(f"relay must be 'thread', None or a relay object, not {relay!r}")
        elif relay is not None and not isinstance(relay, RelayBackend):
            raise TypeError(
                f"relay must be 'thread', None or a relay object (bind, wake, flush, stop,"
                f" counters), not {type(relay).__name__}"
            )
        elif relay is not None:
            _check_bind(relay)
        # checked before the file is opened: a bad option must not cost a relay thread
        # that dies on it later, nor create a file
        steps = _schedule.validate(schedule)
        check_token("idempotency_header", idempotency_header)
        _check_seconds("deadline", deadline, optional=True, positive=True)
        _check_seconds("keep_delivered", keep_delivered, optional=True, positive=False)
        _check_seconds("lease", lease, optional=True, positive=True)
        _check_seconds("exit_timeout", exit_timeout, optional=False, positive=False)
        if (
            isinstance(connections_per_origin, bool)
            or not isinstance(connections_per_origin, int)
            or connections_per_origin < 1
        ):
            raise ValueError("connections_per_origin: must be a positive integer")
        chosen = path if path is not None else os.environ.get("SENDOFF_OUTBOX") or DEFAULT_PATH
        self.store = Store(chosen, durability=durability, busy_timeout=busy_timeout,
                           max_rows=max_rows)
        self.path = self.store.path
        self.schedule = steps
        self.header = idempotency_header
        self.exit_timeout = exit_timeout
        self.relay: RelayBackend | None = None
        if relay is not None:
            backend: RelayBackend = Relay() if isinstance(relay, str) else relay
            try:
                backend.bind(self.store, RelayConfig(
                    emitter=self.emitter,
                    settings=Settings(
                        verify=verify, ca_bundle=ca_bundle,
                        connections_per_origin=connections_per_origin, max_queue=10_000_000,
                        retries=0,
                    ),
                    timeout=self.timeout,
                    deadline=deadline,
                    idempotency_header=idempotency_header,
                    per_origin=connections_per_origin,
                    circuit=circuit,
                    keep_delivered=keep_delivered,
                    lease=lease,
                ))
            except BaseException:
                self.store.close()
                raise
            self.relay = backend
        _open.add(self)

    def __repr__(self) -> str:
        kind = None if self.relay is None else type(self.relay).__name__
        return f"<Outbox {self.path!r} relay={kind}>"

    # -- storing ----------------------------------------------------------------------
    def execute(
        self, request: Request[Any], /, *, key: str | None = None, ordering_key: str | None = None
    ) -> OutboxReceipt:
        """Store ``request``; return once its row is committed.

        ``key`` is its idempotency key (default: its ``Idempotency-Key`` header, else the
        message id; given both, they must agree): storing a key the file already holds
        (pending, delivered or dead) stores nothing and returns the existing message's
        receipt (``existing=True``). Messages with the same
        ``ordering_key`` are delivered one at a time, in the order they were stored.
        """
        prepared = request.prepare()
        key = self._key(key, request.headers().get(self.header))
        return self._store(
            prepared.method, prepared.url, prepared.full_url, prepared.wire(),
            request.timeout() or self.timeout, key, ordering_key,
        )

    def _key(self, key: str | None, header: str | None) -> str | None:
        """The message's key: ``key=`` or the idempotency header, which must agree (the key
        the file deduplicates on is the one the receiver sees)."""
        if key is None:
            return header
        if header is not None and header != key:
            raise InvalidRequest(
                "key", f"differs from the request's {self.header} header; give one of them"
            )
        return key

    def _store(
        self,
        method: str,
        url: URL,
        full_url: str,
        wire: bytes,
        timeout: float,
        key: str | None,
        ordering_key: str | None,
    ) -> OutboxReceipt:
        if isinstance(key, str):  # it goes on the wire, in the idempotency header
            header_value("key", key)
            if key != key.strip(" \t"):  # HTTP drops it: the receiver would see another key
                raise InvalidRequest("key", "must not begin or end with a space or tab")
        if isinstance(ordering_key, str):
            check_controls("ordering_key", ordering_key)
        message = NewMessage(
            method, full_url, url.origin_text, wire, timeout,
            key=key, ordering_key=ordering_key, schedule=self.schedule,
        )
        stored = self.store.add(message)
        if self.relay is not None and not stored.existing:
            self.relay.wake()
        return OutboxReceipt(self, stored.id, stored.key, stored.created_at, stored.existing)

    def fire(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, FieldInput | None] | None = None,
        data: Mapping[str, FieldInput | None] | None = None,
        json: Any = None,
        headers: Mapping[str, HeaderInput] | None = None,
        timeout: float | None = None,
        key: str | None = None,
        ordering_key: str | None = None,
    ) -> OutboxReceipt:
        """Store ``method url`` (arguments as :func:`sendoff.fire`); return once committed."""
        chosen = self._key(key, Headers(headers).get(self.header) if headers else None)
        fast = fire_wire(method, url, params, data, json, headers, timeout)
        if fast is None:  # the less common shapes: the Request checks and renders them
            request = build_request(method, url, params, data, json, headers, timeout)
            return self.execute(request, key=chosen, ordering_key=ordering_key)
        parsed, wire, verb, target = fast
        return self._store(
            verb, parsed, parsed.origin_text + target, wire, timeout or self.timeout, chosen,
            ordering_key,
        )

    def transfer(self, request: Request[Any], transaction: Transaction | None) -> Response:
        raise NotImplementedError("the outbox stores requests; its relay sends them")

    # -- reading and waiting ----------------------------------------------------------
    def status(self, id: str) -> MessageStatus | None:
        """A message's state, from the file (any process's message)."""
        return self.store.status(id)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every stored message is delivered or dead (retries included: with a
        long schedule, give a timeout); False if ``timeout`` seconds passed first. Without
        a relay in this process it waits for another process's relay."""
        if self.relay is not None:
            return self.relay.flush(timeout)
        limit = None if timeout is None else time.monotonic() + timeout
        while True:
            if not self.store.unfinished():
                return True
            if limit is not None and time.monotonic() >= limit:
                return False
            time.sleep(0.05)

    def stats(self) -> dict[str, Any]:
        """The file's counts (per status and origin) and this process's relay's."""
        stored: Stats = self.store.stats()
        out: dict[str, Any] = dict(stored)
        out["relay"] = self.relay.counters() if self.relay is not None else None
        return out

    def close(self) -> None:
        """Stop the relay (in-flight messages get ``exit_timeout`` seconds; the rest are
        given back to the file) and close the file."""
        _open.discard(self)
        if self.relay is not None:
            self.relay.stop(self.exit_timeout)
        self.store.close()


def _check_seconds(field: str, value: object, *, optional: bool, positive: bool) -> None:
    if value is None and optional:
        return
    if not is_seconds(value, positive=positive):
        bound = "> 0" if positive else ">= 0"
        none = "None or " if optional else ""
        raise ValueError(f"{field}: must be {none}a finite number of seconds {bound}")


def _check_bind(backend: RelayBackend) -> None:
    """A relay object whose ``bind`` does not take ``(store, config)`` (one written for
    sendoff before the config was one object) is refused with a message saying so."""
    try:
        inspect.signature(backend.bind).bind(None, None)
    except TypeError:
        raise TypeError(
            f"relay: {type(backend).__name__}.bind must take (store, config), config being"
            " a sendoff.outbox.relay.RelayConfig"
        ) from None
    except ValueError:  # no signature to read (a builtin): let the call say
        pass


_open: weakref.WeakSet[Outbox] = weakref.WeakSet()
_exit_lock = threading.Lock()


@atexit.register
def _close_all() -> None:
    with _exit_lock:
        for outbox in list(_open):
            if outbox.relay is not None:
                outbox.relay.stop(outbox.exit_timeout)
