"""The relay: delivers an outbox's messages through the engine, many in flight.

A relay claims due rows in batches with a lease (so that several relays on one file,
in several processes, never deliver the same row twice while the lease holds), hands
each to the delivery engine, and writes the outcomes back in batches: delivered, retry
at the next step of the message's schedule (``Retry-After`` honoured within bounds), or
dead. Every attempt carries the message's key as its idempotency key; listeners on the
relay's emitter (a :class:`~sendoff.subscribers.StandardWebhooks` signer) run on each
attempt, so a signature is made with a fresh timestamp every time.

Per origin, at most ``QUEUED_PER_CONNECTION x per_origin`` messages are in the engine's
hands (its pool sends them over ``per_origin`` connections), and an origin that keeps
failing opens a circuit: its messages wait (a probe half-opens it after a cool-down)
while the other origins keep flowing.

:class:`RelayBackend` is what an :class:`~sendoff.Outbox` needs of a relay: this module's
:class:`Relay` (a thread of the producer's process) is one, ``sendoff.celery``'s
``CeleryRelay`` (Celery workers on many machines) another. :func:`send_attempt` and
:func:`judge` are one attempt and its verdict, shared by every relay and worker.
"""

from __future__ import annotations

import logging
import os
import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, Protocol, runtime_checkable

from ..core import errors
from ..core.emitter import Emitter
from ..delivery.engine import get_engine
from ..delivery.logwindow import BURST, LogWindow
from ..delivery.receipt import Receipt
from ..delivery.sender import Sender, Settings
from ..delivery.wire import request_from_wire
from ..events.lifecycle import DONE, Transaction
from ..http.checks import header_value
from ..http.url import parse_uri
from .schedule import ErrorKind, classify, plan_retry, retry_after
from .store import Claimed, Outcome, Store, new_owner

log = logging.getLogger("sendoff.outbox")

#: Messages per connection an origin may have in the engine's hands (queued behind the
#: ones on the wire), so that claims come in batches while its connections stay busy.
QUEUED_PER_CONNECTION = 8
#: Request bytes (stored wires) a relay has in the engine's hands at most, by default: a
#: claim stops before the message that would pass it (the first is always taken), so that
#: large messages cannot fill the memory whatever the batch size.
MAX_BYTES_IN_FLIGHT = 32 * 2**20
#: The header every attempt carries the message's key in.
IDEMPOTENCY_HEADER = "Idempotency-Key"
#: Seconds between two looks at the file when nothing was enqueued in this process
#: (another process may have enqueued, or a retry may have come due).
POLL_EVERY = 0.25
#: Seconds the relay lets outcomes gather while many are in flight (one transaction then
#: records them all).
GATHER = 0.005
#: Seconds between two purges of old delivered rows.
PURGE_EVERY = 60.0
#: While the due messages are held back (their origins at their cap), how often the relay
#: looks for messages stored meanwhile (a new one may be for an origin with room).
HELD_WAKE = 0.05


@dataclass(frozen=True)
class Circuit:
    """When an origin's circuit opens and how long it stays open."""

    #: consecutive failed attempts (that are retried) before it opens
    failures: int = 5
    #: seconds it first stays open; doubled each time a probe fails, up to ``longest``
    cooldown: float = 5.0
    longest: float = 300.0


DEFAULT_CIRCUIT = Circuit()


@dataclass(frozen=True)
class RelayConfig:
    """What an :class:`~sendoff.Outbox` gives the relay it binds (:meth:`RelayBackend.bind`):
    the listeners run on every attempt and the outbox's delivery settings.

    ``settings`` configure the engine's connections (TLS, pools); ``timeout`` and
    ``deadline`` (default twice ``timeout``) bound each attempt when the message does not
    say otherwise; every attempt carries the message's key in ``idempotency_header``;
    ``per_origin`` is the connections per origin, ``circuit`` when a failing origin's
    messages wait; delivered rows are purged after ``keep_delivered`` seconds; ``lease``
    is how long a claimed message is the relay's (``None``: the relay's own default)."""

    emitter: Emitter = field(default_factory=Emitter)
    settings: Settings = field(default_factory=lambda: Settings(max_queue=10_000_000))
    timeout: float = 30.0
    deadline: float | None = None
    idempotency_header: str = IDEMPOTENCY_HEADER
    per_origin: int = 16
    circuit: Circuit = DEFAULT_CIRCUIT
    keep_delivered: float | None = 24 * 3600.0
    lease: float | None = None

    def resolved(self, lease_floor: float, lease_deadlines: float) -> RelayConfig:
        """This config with ``deadline`` (default twice ``timeout``) and ``lease`` filled
        in: a lease defaults to ``lease_deadlines`` attempt deadlines, at least
        ``lease_floor`` seconds, well above an attempt (the relay renews it meanwhile)."""
        deadline = self.attempt_deadline
        lease = self.lease
        if lease is None:
            lease = max(lease_floor, lease_deadlines * deadline)
        return replace(self, deadline=deadline, lease=lease)

    @property
    def attempt_deadline(self) -> float:
        """``deadline``, or twice ``timeout`` when it is not set."""
        return self.deadline if self.deadline is not None else 2 * self.timeout

    @property
    def lease_seconds(self) -> float:
        """``lease`` of a :meth:`resolved` config."""
        if self.lease is None:
            raise ValueError("lease: resolve the config first")
        return self.lease


class _Unknown:
    """Not read yet (a value None cannot stand for: None means nothing is due)."""


_UNKNOWN = _Unknown()


class _OriginState:
    __slots__ = ("cooldown", "dead_lines", "failures", "in_flight", "open_until")

    def __init__(self) -> None:
        self.in_flight = 0
        self.failures = 0
        self.open_until = 0.0
        self.cooldown = 0.0
        #: caps the "is dead" warnings of its messages (made at the first)
        self.dead_lines: LogWindow | None = None


@runtime_checkable
class RelayBackend(Protocol):
    """What an :class:`~sendoff.Outbox` needs of the relay that delivers its messages.

    ``Outbox(path, relay=backend)`` calls :meth:`bind` once, with its store and its
    settings, then :meth:`wake` after each message it stored; :meth:`flush` and
    :meth:`stop` back ``outbox.flush()`` and ``outbox.close()`` (and the exit handler),
    :meth:`counters` is ``outbox.stats()["relay"]``. :class:`Relay` (a thread of this
    process) and ``sendoff.celery.CeleryRelay`` (Celery workers) implement it.
    """

    def bind(self, store: Store, config: RelayConfig) -> None:
        """Serve ``store`` with the outbox's settings (once; a relay serves one outbox)."""

    def wake(self) -> None:
        """A message was just stored: look at the file soon (starting if need be)."""

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until no message is due or being delivered; False if ``timeout`` passed."""

    def stop(self, timeout: float = 5.0) -> None:
        """Stop (in-flight work gets at most ``timeout`` seconds); the file keeps the rest."""

    def counters(self) -> dict[str, Any]:
        """What the relay did so far (for ``outbox.stats()``)."""


class Relay:
    """Delivers the messages of ``store`` from a thread of this process.

    ``emitter`` holds the listeners run around every attempt; ``timeout`` and
    ``deadline`` bound each attempt when the message does not say otherwise;
    ``settings`` configure the engine's connections (TLS, pools). ``keep_delivered``
    seconds after delivery a row is purged. ``lease`` is how long a claimed message is
    this relay's without a renewal (default two deadlines, at least 30 s): the relay renews
    the leases of what is in flight; when it dies, the file hands its messages to another
    relay once their leases run out. At most ``max_bytes`` of request bytes are in flight
    (one message larger than that goes out alone).

    ``Outbox(path)`` makes one and binds it (:meth:`bind`) to its store with its own settings;
    ``Outbox(path, relay=Relay(batch=64))`` binds one made by hand (then the outbox's
    settings replace the constructor's, except a ``lease`` the outbox leaves ``None``).
    """

    def __init__(
        self,
        store: Store | None = None,
        *,
        emitter: Emitter | None = None,
        settings: Settings | None = None,
        timeout: float = 30.0,
        deadline: float | None = None,
        idempotency_header: str = IDEMPOTENCY_HEADER,
        batch: int = 256,
        max_bytes: int = MAX_BYTES_IN_FLIGHT,
        per_origin: int = 16,
        circuit: Circuit = DEFAULT_CIRCUIT,
        keep_delivered: float | None = 24 * 3600.0,
        lease: float | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if max_bytes < 1:
            raise ValueError("max_bytes: must be at least 1")
        self._store = store
        self.batch = batch
        self.max_bytes = max_bytes
        self.clock = clock
        self.rng = rng or random.Random()
        self._lease_given = lease
        self._configure(RelayConfig(
            emitter=emitter if emitter is not None else Emitter(),
            settings=settings if settings is not None else Settings(max_queue=10_000_000),
            timeout=timeout, deadline=deadline, idempotency_header=idempotency_header,
            per_origin=per_origin, circuit=circuit, keep_delivered=keep_delivered, lease=lease,
        ))
        self.owner = new_owner()
        self._pid = os.getpid()
        self._origins: dict[str, _OriginState] = {}
        self._outcomes: deque[tuple[Claimed, Receipt]] = deque()
        #: the receipts in flight (the engine holds its jobs' receipts weakly); a set, not
        #: a dict by message id: a message whose lease ran out may be in flight twice
        self._receipts: dict[Receipt, str] = {}  # the receipt in flight -> its message id
        self._bytes = 0  # the wires of the messages in flight
        self._renewed_at = 0.0
        self._wake = threading.Event()
        self._idle = threading.Event()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._running = False
        self._sender: Sender | None = None
        self._purged_at = 0.0
        #: due messages are held back (their origins at their cap, or circuits open): an
        #: outcome wakes the relay; a message stored is only noted (``_stored``), and the
        #: held relay looks at those every HELD_WAKE seconds
        self._held = False
        self._stored = False
        #: when the next message is due, as this turn's claim read it (_pause reads the
        #: file when no claim did)
        self._due: float | _Unknown | None = _UNKNOWN
        #: origins whose "is dead" warnings are held back, to be summed up (_report_lines)
        self._held_lines: dict[str, LogWindow] = {}
        self.delivered = self.retried = self.dead = 0

    def _configure(self, config: RelayConfig) -> None:
        #: the outbox's settings; a claimed message is this relay's for ``lease`` seconds
        #: (renewed every third of it while in flight; when the relay dies another one may
        #: send the message again once the lease has run out)
        self.config = config.resolved(lease_floor=30.0, lease_deadlines=2)

    @property
    def store(self) -> Store:
        """The store this relay serves."""
        if self._store is None:
            raise RuntimeError("this relay serves no outbox yet: pass it a store or bind() it")
        return self._store

    def bind(self, store: Store, config: RelayConfig) -> None:
        """Serve ``store`` with an outbox's settings (see :class:`RelayBackend`)."""
        with self._lock:
            if self._store is not None and self._store is not store:
                raise ValueError("this relay already serves another outbox")
            if self._thread is not None:
                raise RuntimeError("bind() the relay before it starts")
            self._store = store
            if config.lease is None:
                config = replace(config, lease=self._lease_given)
            self._configure(config)

    def __repr__(self) -> str:
        return f"<Relay {self.owner} in_flight={self.in_flight()}>"

    # -- any thread -------------------------------------------------------------------
    def start(self) -> None:
        """Start the relay thread (once per process; again in a forked child); never
        for a closed store (OutboxError)."""
        self.store.check_open()  # the store raises if the relay serves none yet
        with self._lock:
            if self._pid != os.getpid():  # forked: the parent's thread and leases are its own
                self._pid = os.getpid()
                self.owner = new_owner()
                self._origins.clear()
                self._held_lines.clear()
                self._outcomes.clear()
                self._receipts.clear()
                self._bytes = 0
                self._renewed_at = 0.0
                self._due = _UNKNOWN
                self._thread = None
                self._sender = None
            if self._thread is not None:
                return
            self._running = True
            self._thread = threading.Thread(target=self._run, name="sendoff-relay", daemon=True)
            self._thread.start()

    def wake(self) -> None:
        """Look at the file now (a message was just stored)."""
        if self._thread is None or self._pid != os.getpid():
            self.start()
        if self._held:
            # held back: an outcome frees room; a new message may be for an origin with
            # room, but one claim (a write transaction) per message stored would be a spin
            self._stored = True
            return
        self._wake.set()

    def in_flight(self) -> int:
        """Messages handed to the engine and not yet written back."""
        return sum(state.in_flight for state in list(self._origins.values()))

    def counters(self) -> dict[str, Any]:
        """What this relay did: delivered, retried, dead, in flight, open circuits."""
        now = self.clock()
        return {
            "in_flight": self.in_flight(),
            "bytes_in_flight": self._bytes,
            "delivered": self.delivered,
            "retried": self.retried,
            "dead": self.dead,
            "open_circuits": sorted(
                origin for origin, state in list(self._origins.items()) if state.open_until > now
            ),
        }

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every message of the file is delivered or dead (retries included:
        with a long schedule, give a timeout); False if ``timeout`` passed first."""
        limit = None if timeout is None else time.monotonic() + timeout
        self.wake()
        while True:
            self._idle.clear()
            if self._caught_up():
                return True
            left = None if limit is None else limit - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._wake.set()
            self._idle.wait(POLL_EVERY if left is None else min(POLL_EVERY, left))

    def _caught_up(self) -> bool:
        if self.in_flight() or self._outcomes:
            return False
        return not self.store.unfinished()  # not stats(): it counts every pending row

    def stop(self, timeout: float = 5.0) -> None:
        """Finish what is in flight (at most ``timeout`` seconds), write it back, give
        the leases of what is left back to the file, and stop."""
        thread = self._thread
        if thread is None or self._pid != os.getpid():
            return
        self._running = False
        self._wake.set()
        thread.join(timeout)
        self._thread = None
        self._write_back()
        try:
            released = self.store.release(self.owner)
        except errors.OutboxError:
            log.warning("could not give the outbox leases of %s back", self.owner, exc_info=True)
        else:
            if released:
                log.info("gave %d unfinished message lease(s) back to the outbox", released)

    # -- the relay thread -------------------------------------------------------------
    def _run(self) -> None:
        try:
            while self._running or self.in_flight():
                self._gather()
                done = self._judged()
                room = self._room()
                claimed: list[Claimed] = []
                if room and self._running:
                    self._stored = False  # this claim sees every message stored so far
                    claimed = self._claim(room, done)  # done is written back first
                    for message in claimed:
                        self._send(message)
                elif done:
                    self._record(done)
                if not self.in_flight() and not self._outcomes:
                    self._idle.set()
                self._renew()
                self._report_lines()
                if self._running:
                    self._maybe_purge()
                if claimed and len(claimed) == room:
                    continue  # more may be due: go on at once
                pause = self._pause(bool(claimed))
                if self._held:
                    self._wait_held(pause)
                else:
                    self._wake.wait(pause)
                self._wake.clear()
        except Exception:
            log.critical("the outbox relay stopped on an error", exc_info=True)
        finally:
            self._idle.set()

    def _gather(self) -> None:
        """Let outcomes gather for one write-back (a transaction): until a quarter of a
        batch has come, none is still out, or ``GATHER`` seconds have passed."""
        outcomes = self._outcomes
        if not outcomes:
            return
        enough = self._gathered_enough()
        limit = time.monotonic() + GATHER
        while len(outcomes) < enough and len(outcomes) < self.in_flight():
            left = limit - time.monotonic()
            if left <= 0:
                return
            self._wake.clear()
            if len(outcomes) >= enough:  # came between the test and the clear
                return
            self._wake.wait(left)

    def _gathered_enough(self) -> int:
        """Outcomes worth a write-back at once: _gather waits for this many, and the
        engine thread wakes the relay when they have come (_answered)."""
        return self.batch // 4

    def _wait_held(self, pause: float) -> None:
        """Held back: wait up to ``pause`` seconds; an outcome (or stop, or flush) ends the
        wait at once, messages stored meanwhile at the next HELD_WAKE step."""
        limit = time.monotonic() + pause
        while True:
            left = limit - time.monotonic()
            if left <= 0 or self._wake.wait(min(HELD_WAKE, left)) or self._stored:
                return

    def _origin_cap(self) -> int:
        return self.config.per_origin * QUEUED_PER_CONNECTION

    def _room(self) -> int:
        """How many to claim now: none until a good part of a batch is free (each claim
        is a transaction), unless nothing is in flight."""
        if self._bytes >= self.max_bytes:
            return 0
        in_flight = self.in_flight()
        room = min(self.batch, 4 * self.batch - in_flight)
        if in_flight and room < self.batch // 4:
            return 0
        return max(0, room)

    def _pause(self, claimed: bool) -> float:
        known, self._due = self._due, _UNKNOWN
        due: float | None = None
        if not isinstance(known, _Unknown):
            due = known
        else:  # no claim read it this turn
            try:
                due = self.store.next_due()
            except errors.OutboxError:
                log.warning("the outbox relay cannot read the file", exc_info=True)
        if due is None:
            self._held = False
            return POLL_EVERY * 4
        left = due - self.clock()
        self._held = left <= 0 and not claimed
        if self._held:
            # due, yet nothing could be claimed: the origins are at their cap or their
            # circuit is open. An outcome wakes the relay, a message stored within
            # HELD_WAKE (see _wait_held); no claim (a write transaction) every instant.
            return POLL_EVERY
        return max(0.0, min(POLL_EVERY, left))

    def _claim(self, room: int, done: list[Outcome]) -> list[Claimed]:
        """Write ``done`` back and claim up to ``room`` messages, in one transaction."""
        now = self.clock()
        paused = []
        in_flight = {}
        cap = self._origin_cap()
        for origin, state in self._origins.items():
            # an origin more than half full waits for room for a good batch: claims of a
            # few rows each cost a transaction apiece
            in_flight[origin] = state.in_flight if state.in_flight <= cap // 2 else cap
            if state.open_until > now:
                paused.append(origin)
            elif state.failures >= self.config.circuit.failures:  # half-open: one probe at a time
                in_flight[origin] = max(in_flight[origin], cap - 1)
        try:
            _, claimed, self._due = self.store.finish_and_claim(
                self.owner, done, room, self.config.lease_seconds, now,
                per_origin_limit=cap, in_flight=in_flight, paused=paused,
                max_bytes=self.max_bytes - self._bytes,
            )
        except errors.OutboxError:
            log.warning("the outbox relay could not claim messages", exc_info=True)
            if done:  # the claim may be what failed: the outcomes go in on their own
                self._record(done)
            return []
        return claimed

    def _send(self, message: Claimed) -> None:
        state = self._origins.get(message.origin)
        if state is None:
            state = self._origins[message.origin] = _OriginState()
        state.in_flight += 1
        self._bytes += len(message.wire)
        sender = self._sender
        if sender is None:
            sender = self._sender = get_engine().sender(self.config.settings)
        try:
            receipt = self._submit(sender, message)
        except Exception as exc:  # the stored request cannot be sent any more
            receipt = Receipt(message.wire, parse_uri(message.url))
            receipt.settle(None, exc)
        self._receipts[receipt] = message.id
        receipt.add_done_callback(lambda done: self._answered(message, done))

    def _submit(self, sender: Sender, message: Claimed) -> Receipt:
        deadline = max(self.config.attempt_deadline, 2 * message.timeout)
        return send_attempt(
            sender, self.config.emitter, self.config.idempotency_header, message.key,
            message.wire, message.url, message.timeout, deadline,
        )

    def _answered(self, message: Claimed, receipt: Receipt) -> None:
        """On the engine thread: hand the outcome to the relay thread.

        Wakes it for the first outcome since its last write-back and when a batch has
        gathered, not for each one: a wake-up per outcome cost both threads a futex call
        and a turn of the GIL per message."""
        outcomes = self._outcomes
        outcomes.append((message, receipt))
        gathered = len(outcomes)
        if gathered == 1 or gathered == self._gathered_enough():
            self._wake.set()

    def _write_back(self) -> None:
        """Turn the outcomes that came in into rows' next states, in one transaction."""
        done = self._judged()
        if done:
            self._record(done)

    def _judged(self) -> list[Outcome]:
        """The outcomes that came in, judged (each message's next state)."""
        now = self.clock()
        done: list[Outcome] = []
        outcomes = self._outcomes
        while outcomes:
            message, receipt = outcomes.popleft()
            done.append(self._outcome(message, receipt, now))
        return done

    def _record(self, done: list[Outcome]) -> None:
        try:
            self.store.finish(self.owner, done, self.clock())
        except errors.OutboxError:
            # the leases expire and the messages are sent again: at least once still holds
            log.error(
                "could not write %d outcome(s) back to the outbox", len(done), exc_info=True
            )

    def _outcome(self, message: Claimed, receipt: Receipt, now: float) -> Outcome:
        self._receipts.pop(receipt, None)
        state = self._origins[message.origin]
        state.in_flight -= 1
        self._bytes -= len(message.wire)
        result = judge(receipt, now)
        if result.verdict == "delivered":
            self.delivered += 1
            state.failures = 0
            state.cooldown = 0.0
            return Outcome(message.id, "delivered", result.status)
        reason = result.reason
        if result.verdict == "dead":
            state.failures = 0
            return self._dead(state, message, result.status, reason, f"is dead: {reason}")
        self._failed(state, message.origin, now)
        when = plan_retry(
            message.schedule, message.attempt, now, rng=self.rng,
            retry_after_delay=result.retry_after,
        )
        if when is None:
            return self._dead(
                state, message, result.status, reason,
                f"is dead after {message.attempts} attempt(s): {reason}",
            )
        self.retried += 1
        return Outcome(message.id, "retry", result.status, reason, when)

    def _dead(
        self, state: _OriginState, message: Claimed, status: int | None, reason: str, why: str
    ) -> Outcome:
        """Count a message that ends dead and log it: the first of an origin at once, the
        others of the same LOG_EVERY window summed up in one line (a receiver answering
        400 to everything would otherwise log a line per message)."""
        self.dead += 1
        window = state.dead_lines
        if window is None:
            window = state.dead_lines = LogWindow(to=log)
        window.line(
            time.monotonic(),
            f"outbox message {message.id} ({message.method} {message.origin}) {why}",
        )
        if window.pending:
            self._held_lines[message.origin] = window
        return Outcome(message.id, "dead", status, reason)

    def _report_lines(self) -> None:
        """Sum up the "is dead" warnings held back, once their window has passed."""
        if not self._held_lines:
            return
        now = time.monotonic()
        for origin, window in list(self._held_lines.items()):
            window.report(now, origin)
            if not window.pending:
                del self._held_lines[origin]

    def _failed(self, state: _OriginState, origin: str, now: float) -> None:
        state.failures += 1
        if state.failures >= self.config.circuit.failures:
            longer = state.cooldown * 2 if state.cooldown else self.config.circuit.cooldown
            state.cooldown = min(self.config.circuit.longest, longer)
            state.open_until = now + state.cooldown
            if state.failures == self.config.circuit.failures:
                text = (
                    f"outbox: {origin} failed {state.failures} times in a row; its messages"
                    f" wait {state.cooldown:.0f} s"
                )
                # many origins failing at once: the first few say so, a line sums up the rest
                BURST.warn(time.monotonic(), text, log)

    def _renew(self) -> None:
        """Keep the leases of what is still in flight (queued in the engine behind a slow
        origin, say), so that no other relay sends it meanwhile."""
        now = self.clock()
        if not self._receipts or now - self._renewed_at < self.config.lease_seconds / 3:
            return
        self._renewed_at = now
        try:
            self.store.renew(
                self.owner, set(self._receipts.values()), self.config.lease_seconds, now
            )
        except errors.OutboxError:
            log.warning("could not renew the outbox leases of %s", self.owner, exc_info=True)

    def _maybe_purge(self) -> None:
        if self.config.keep_delivered is None:
            return
        now = self.clock()
        if now - self._purged_at < PURGE_EVERY:
            return
        self._purged_at = now
        try:
            self.store.purge(now - self.config.keep_delivered)
        except errors.OutboxError:
            log.warning("could not purge delivered messages", exc_info=True)


class _Attempt:
    """The client side of one attempt's lifecycle: the relay's listeners and timeout."""

    __slots__ = ("emitter", "timeout")

    def __init__(self, emitter: Emitter, timeout: float) -> None:
        self.emitter = emitter
        self.timeout = timeout


def send_attempt(
    sender: Sender,
    emitter: Emitter,
    header: str,
    key: str,
    wire: bytes,
    url: str,
    timeout: float,
    deadline: float,
) -> Receipt:
    """Make one attempt of a stored message through ``sender``; its receipt at once.

    The attempt carries ``key`` in ``header`` (unless the stored request has that header);
    the ``emitter``'s listeners run on it (a ``before`` listener signs it at send time,
    or answers it without sending). A request that cannot be sent any more ends its
    receipt with the error at once.
    """
    try:
        target = parse_uri(url)
        if not emitter.has_listeners():
            return sender.submit(target, with_header(wire, header, key), timeout, deadline)
        request = request_from_wire(wire, target)
        request.headers(header, key)
        txn = Transaction(_Attempt(emitter, timeout), request)
        if txn.start() is DONE:  # a listener answered or refused it
            receipt = Receipt(wire, target)
            receipt.attach(txn, None)
            receipt.settle(None if txn.exception else txn.response, txn.exception)
            return receipt
        prepared = txn.request.prepare()
        return sender.submit(prepared.url, prepared.wire(), timeout, deadline, txn, prepared)
    except Exception as exc:  # the stored request cannot be sent any more
        receipt = Receipt(wire, parse_uri(url))
        receipt.settle(None, exc)
        return receipt


AttemptVerdict = Literal["delivered", "retry", "dead"]


@dataclass(frozen=True, slots=True)
class Judgement:
    """What one attempt's ending means for its message (see :func:`judge`)."""

    verdict: AttemptVerdict
    status: int | None
    error: str | None
    #: seconds the server asked us to wait (``Retry-After`` of a 429 or 503), else None
    retry_after: float | None = None

    @property
    def reason(self) -> str:
        """Why the attempt failed, in words (the error, else the status it answered)."""
        return self.error or f"answered {self.status}"


def judge(receipt: Receipt, now: float) -> Judgement:
    """The verdict on a finished attempt: delivered, retry (when the schedule allows) or
    dead, with the status, the error text and a ``Retry-After`` delay from ``now``."""
    status = receipt.status
    error = receipt.error
    if error is None and status is not None:
        known = _PLAIN.get(status)
        if known is not None:
            return known
    verdict = classify(status, None if status is not None else error_kind(error))
    text = None if error is None else str(error)
    later = None
    reads_header = verdict == "retry" and status in (429, 503)
    if reads_header:
        response = receipt.response
        if response is not None:
            later = retry_after(response.headers.get("retry-after"), now)
    result = Judgement(verdict, status, text, later)
    if error is None and status is not None and not reads_header and status < 1000:
        _PLAIN[status] = result  # then the status alone always means the same
    return result


#: the judgement of an answer with no error and no Retry-After to read, by status (at
#: most a thousand: judgements are immutable, and a relay judges one per message)
_PLAIN: dict[int, Judgement] = {}


def with_header(wire: bytes, name: str, value: str) -> bytes:
    """``wire`` with ``name: value`` among its headers, unless it has that header.

    ``value`` is checked as any header value is (InvalidRequest naming ``name``): a key an
    older sendoff stored unchecked must not inject a header at send time."""
    head_end = wire.find(b"\r\n\r\n")
    head = wire[:head_end]
    if f"\r\n{name.lower()}:".encode("latin-1") in head.lower():
        return wire
    header_value(name, value)
    return b"".join((head, f"\r\n{name}: {value}".encode("latin-1"), wire[head_end:]))


def error_kind(error: BaseException | None) -> ErrorKind:
    """How an attempt without a response failed, as :func:`~.schedule.classify` takes it."""
    if isinstance(error, errors.TimeoutError):
        return "timeout"
    if isinstance(error, errors.TLSError):
        return "tls"
    if isinstance(error, errors.ConnectError):
        return "connect"
    if isinstance(error, errors.ProtocolError):
        return "protocol"
    if isinstance(error, errors.InvalidRequest):
        return "invalid"
    return "other"
