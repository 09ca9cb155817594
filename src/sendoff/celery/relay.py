"""The publisher side: :class:`CeleryRelay` hands an outbox's messages to Celery workers.

It runs in the producer's process, beside the SQLite file, in two threads:

* the **publisher** claims due rows with a lease (each claim its own lease owner, the
  *lease token*), groups them by origin into batches of ``batch`` messages and publishes
  each batch as one ``sendoff.deliver`` task (publisher confirms on RabbitMQ: the publish
  returns once the broker has the message). A publish that fails gives the leases of the
  unpublished messages back to the file (no attempt counted) and backs off.
* the **outcome consumer** reads the reply queue, where workers report every outcome,
  and writes them to the file with ``store.finish`` under the report's lease token:
  delivered, dead, or retried at the next step of the message's schedule
  (:func:`~sendoff.outbox.schedule.plan_retry`, ``Retry-After`` honoured). A report is
  acknowledged only after its transaction committed.

Why a reply queue and not a result backend: outcomes must reach the file that owns the
messages, exactly once applied and never lost. A reply queue on the broker the tasks
already use needs nothing else to run; it is durable and its messages persistent, so
outcomes wait there while the producer is down and are applied when it comes back (the
report carries the lease token, so any relay on the file can apply it); the relay acks a
report after the commit, so a crash in between only replays it (applying an outcome
twice is a no-op: the lease is gone after the first). A result backend stores one
result per task id: the relay would have to poll or subscribe per task, results expire
on their own clock (``result_expires``), the ``rpc://`` backend's replies are tied to
the process that sent the task, and the Redis backend's pub/sub loses what is published
while nobody listens.

Leases: a message's outcome that has not come back within ``lease`` seconds (default
``max(300, 4 * deadline)``) is published again: the file makes the row claimable once
its lease expires, whatever happened (a worker killed, a broker that lost its queues, a
report lost). A worker drops a batch whose lease has expired, and an outcome reported
under an expired lease that was claimed again is ignored by the file, so a message is
not delivered twice by the same path. How many messages an origin may have published
and unanswered follows its pace (about a quarter of a lease's worth of the outcomes it
produced recently, at least two batches, at most ``max_in_flight`` in all), so a slow
origin's messages never wait in the broker until their lease expires.

Several processes on one file (the workers of a web server), each with its relay: they
all read the file's reply queue and apply whatever report they get (the lease token
says which claim it answers); each learns from the file, every second, which of its own
messages are no longer out.

Clean stop: published messages keep their leases (their outcomes come back through the
reply queue, applied by whichever relay on the file reads it next); only claimed
messages that were not published are given back.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..core import errors
from ..outbox.relay import MAX_BYTES_IN_FLIGHT, RelayConfig
from ..outbox.schedule import plan_retry
from ..outbox.store import MAX_BATCH, Claimed, Outcome, Store, new_owner
from .payload import OUTCOME_EXCHANGE, TASK_NAME, Batch, Message

log = logging.getLogger("sendoff.celery")

#: Seconds between two looks at the file when nothing was enqueued in this process.
POLL_EVERY = 0.25
#: Seconds between two purges of old delivered rows.
PURGE_EVERY = 60.0
#: Seconds between two looks at which of this relay's messages the file still has out
#: (another relay on the file may have applied their outcomes).
RECONCILE_EVERY = 1.0
#: The longest back-off after a failed publish.
MAX_BACKOFF = 5.0
#: Seconds between two claims that were not full: messages stored meanwhile go out
#: together (one claim transaction and one task), not one claim per message stored.
CLAIM_EVERY = 0.005
#: Request bytes in one task at most, by default (a larger message goes in a task of its
#: own): brokers cap a message's size (RabbitMQ 4: 16 MiB), and a worker holds its batch.
BATCH_BYTES = 4 * 2**20


def split_batches(claimed: list[Claimed], batch: int, batch_bytes: int) -> list[list[Claimed]]:
    """The tasks of a claim: one origin each, at most ``batch`` messages and ``batch_bytes``
    of request bytes each (a larger message goes alone), in the claim's order."""
    by_origin: dict[str, list[Claimed]] = {}
    for message in claimed:
        by_origin.setdefault(message.origin, []).append(message)
    chunks: list[list[Claimed]] = []
    for group in by_origin.values():
        chunk: list[Claimed] = []
        size = 0
        for message in group:
            if chunk and (len(chunk) >= batch or size + len(message.wire) > batch_bytes):
                chunks.append(chunk)
                chunk, size = [], 0
            chunk.append(message)
            size += len(message.wire)
        chunks.append(chunk)
    return chunks


@dataclass
class _Claim:
    """A claim's messages whose outcome has not come back, id -> origin."""

    expires: float
    origins: dict[str, str] = field(default_factory=dict)


class CeleryRelay:
    """Delivers an outbox's messages on Celery workers: ``Outbox(path, relay=CeleryRelay(app))``.

    ``app`` is the Celery app (its broker: Redis or RabbitMQ); the workers run an app on
    the same broker that called :func:`sendoff.celery.register`. ``queue`` is the queue
    the delivery tasks go to (default: Celery's routing, normally ``celery``);
    ``reply_queue`` the durable queue the workers report outcomes to (default
    ``sendoff.outcomes.<host>.<hash of the file's path>``: one per outbox file). ``batch``
    is the most messages in one task and ``batch_bytes`` the most request bytes (a larger
    message goes in a task of its own); ``max_in_flight`` the most messages published and
    not answered at any time. One claim takes at most 32 MiB of request bytes. The
    outbox's settings (timeouts, per-origin cap, circuit, lease, key header) reach the
    workers inside each batch; its TLS settings and listeners do not (give them to
    ``register()`` on the workers).
    """

    def __init__(
        self,
        app: Any,
        *,
        queue: str | None = None,
        reply_queue: str | None = None,
        batch: int = 200,
        batch_bytes: int = BATCH_BYTES,
        max_in_flight: int = 10_000,
        task_name: str = TASK_NAME,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch: must be between 1 and {MAX_BATCH}")
        if max_in_flight < batch:
            raise ValueError("max_in_flight: must be at least batch")
        if batch_bytes < 1:
            raise ValueError("batch_bytes: must be at least 1")
        self.app = app
        self.queue = queue
        self.batch = batch
        self.batch_bytes = batch_bytes
        self.max_in_flight = max_in_flight
        self.task_name = task_name
        self.clock = clock
        self.rng = rng or random.Random()
        self._reply_given = reply_queue
        self.reply_queue = reply_queue or ""
        self._store: Store | None = None
        self.config = RelayConfig().resolved(lease_floor=300.0, lease_deadlines=4)
        self._lock = threading.Lock()
        self._init_process_state()

    def _init_process_state(self) -> None:
        self.owner = new_owner()
        self._pid = os.getpid()
        self._claims: dict[str, _Claim] = {}
        self._flying: dict[str, int] = {}
        self._recent: dict[str, deque[tuple[float, int]]] = {}
        self._recent_sum: dict[str, int] = {}
        self._paused: dict[str, float] = {}
        self._seq = 0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._running = False
        self._publisher: threading.Thread | None = None
        self._consumer: threading.Thread | None = None
        self._consuming = threading.Event()
        self._pub_conn: Any = None
        self._producer: Any = None
        self._retry_at = 0.0  # time.monotonic() before which the publisher does not claim
        self._claimed_at = 0.0
        self._held = False  # due messages held back: only an outcome wakes the publisher
        self._failed_publishes = 0
        self._purged_at = 0.0
        self._reconciled_at = 0.0
        self.published = self.batches = self.publish_errors = 0
        self.delivered = self.retried = self.dead = self.deferred = self.expired = 0
        self.reports = 0

    def __repr__(self) -> str:
        return f"<CeleryRelay {self.owner} reply={self.reply_queue!r} in_flight={self.in_flight()}>"

    # -- RelayBackend -----------------------------------------------------------------
    @property
    def store(self) -> Store:
        if self._store is None:
            raise RuntimeError("this relay serves no outbox yet: Outbox(path, relay=...) binds it")
        return self._store

    def bind(self, store: Store, config: RelayConfig) -> None:
        """Serve ``store`` with an outbox's settings (see ``RelayBackend``)."""
        with self._lock:
            if self._store is not None and self._store is not store:
                raise ValueError("this relay already serves another outbox")
            self._store = store
            self.config = config.resolved(lease_floor=300.0, lease_deadlines=4)
            self.reply_queue = self._reply_given or default_reply_queue(store.path)
        settings = config.settings
        if settings.ca_bundle is not None or not settings.verify:
            log.warning(
                "CeleryRelay: the outbox's TLS settings (verify, ca_bundle) do not reach the"
                " workers; give them to sendoff.celery.register() on the workers"
            )

    def wake(self) -> None:
        """Look at the file now (a message was just stored); starts the threads."""
        if self._pid != os.getpid():
            self._forked()
        if self._publisher is None:
            self.start()
        if not self._held:
            self._wake.set()

    def start(self) -> None:
        """Start the publisher and the outcome consumer (once per process)."""
        self.store  # noqa: B018 - raises if unbound
        with self._lock:
            if self._pid != os.getpid():
                self._forked()
            if self._publisher is not None:
                return
            self._running = True
            self._stopping.clear()
            if self.config.emitter.has_listeners():
                log.warning(
                    "CeleryRelay: listeners on the outbox's emitter do not run on the workers;"
                    " give them to sendoff.celery.register(app, emitter=..., sign=...) there"
                )
            self._consumer = threading.Thread(
                target=self._consume_loop, name="sendoff-celery-outcomes", daemon=True
            )
            self._consumer.start()
            self._publisher = threading.Thread(
                target=self._publish_loop, name="sendoff-celery-publish", daemon=True
            )
            self._publisher.start()

    def _forked(self) -> None:
        """In a forked child: the parent's threads, leases and connections stay its own."""
        self._init_process_state()

    def in_flight(self) -> int:
        """Messages published whose outcome has not come back (in this process)."""
        with self._lock:
            return sum(self._flying.values())

    def counters(self) -> dict[str, Any]:
        now = self.clock()
        with self._lock:
            paused = sorted(o for o, until in self._paused.items() if until > now)
            flying = sum(self._flying.values())
        return {
            "in_flight": flying,
            "published": self.published,
            "batches": self.batches,
            "reports": self.reports,
            "delivered": self.delivered,
            "retried": self.retried,
            "dead": self.dead,
            "deferred": self.deferred,
            "expired": self.expired,
            "publish_errors": self.publish_errors,
            "paused_origins": paused,
            "reply_queue": self.reply_queue,
        }

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until no message is due or out with a worker; False if ``timeout`` passed
        first. Messages waiting for a later retry do not count."""
        limit = None if timeout is None else time.monotonic() + timeout
        self.wake()
        pause = 0.01
        while True:
            if self._caught_up():
                return True
            left = None if limit is None else limit - time.monotonic()
            if left is not None and left <= 0:
                return False
            self._wake.set()
            time.sleep(pause if left is None else min(pause, left))
            pause = min(pause * 2, 0.1)

    def _caught_up(self) -> bool:
        return self.store.settled(self.clock())  # index probes, not stats(): it counts rows

    def stop(self, timeout: float = 5.0) -> None:
        """Stop publishing; wait up to ``timeout`` seconds for the outcomes of what is out
        with the workers, then stop. Messages still out keep their leases: their outcomes
        wait in the reply queue for the next relay on the file, or they are published
        again when their lease expires."""
        publisher = self._publisher
        if publisher is None or self._pid != os.getpid():
            return
        limit = time.monotonic() + timeout
        self._running = False
        self._wake.set()
        publisher.join(max(0.1, timeout))
        while self.in_flight() and time.monotonic() < limit:
            time.sleep(0.02)
        self._stopping.set()
        consumer = self._consumer
        if consumer is not None:
            consumer.join(max(1.0, limit - time.monotonic()))
        self._close_publisher()
        self._publisher = self._consumer = None
        left = self.in_flight()
        if left:
            log.info(
                "CeleryRelay stopped with %d message(s) out with the workers: their outcomes"
                " wait in %s for the next relay on this outbox, or they are sent again when"
                " their lease expires", left, self.reply_queue,
            )

    # -- publishing -------------------------------------------------------------------
    def _publish_loop(self) -> None:
        try:
            while self._running:
                now = self.clock()
                self._expire(now)
                self._reconcile()
                claimed: list[Claimed] = []
                limit = 0
                wait_more = self._retry_at - time.monotonic()
                linger = self._claimed_at + CLAIM_EVERY - time.monotonic()
                if linger > 0 and wait_more <= 0:
                    time.sleep(linger)
                if wait_more <= 0:
                    self._claimed_at = time.monotonic()
                    limit = min(self.max_in_flight - self.in_flight(), MAX_BATCH)
                    if limit > 0:
                        token = f"{self.owner}/{self._seq + 1}"
                        claimed = self._claim(token, limit, now)
                        if claimed:
                            self._seq += 1
                            self._publish(token, claimed)
                if self._running:
                    self._maybe_purge()
                if claimed and len(claimed) == limit and self._retry_at <= time.monotonic():
                    self._claimed_at = 0.0
                    continue  # more may be due
                wait_more = self._retry_at - time.monotonic()
                self._wake.wait(wait_more if wait_more > 0 else self._pause(bool(claimed)))
                self._wake.clear()
        except Exception:
            log.critical("the Celery relay's publisher stopped on an error", exc_info=True)

    def _pause(self, claimed: bool) -> float:
        """How long to wait for a wake-up before looking at the file again."""
        try:
            due = self.store.next_due()
        except errors.OutboxError:
            log.warning("the Celery relay cannot read the outbox", exc_info=True)
            return POLL_EVERY
        if due is None:
            return POLL_EVERY * 4
        left = due - self.clock()
        self._held = left <= 0 and not claimed
        if self._held:
            # due but not claimable now (origins at their window, or paused): an outcome
            # coming back wakes the publisher; until then, no claim every instant
            return POLL_EVERY
        return max(0.0, min(POLL_EVERY, left))

    def _window(self, origin: str) -> int:
        """How many of ``origin``'s messages may be out: its recent pace, bounded."""
        recent = self._recent_sum.get(origin, 0)
        return max(2 * self.batch, min(self.max_in_flight, recent))

    def _claim(self, token: str, limit: int, now: float) -> list[Claimed]:
        first = 2 * self.batch  # an origin not heard from lately starts with two batches
        with self._lock:
            self._trim_recent(now)
            paused = [o for o, until in self._paused.items() if until > now]
            for origin in [o for o, until in self._paused.items() if until <= now]:
                del self._paused[origin]
            in_flight = {
                origin: self._flying.get(origin, 0) - (self._window(origin) - first)
                for origin in set(self._flying) | set(self._recent_sum)
            }
        try:
            return self.store.claim(
                token, limit, self.config.lease_seconds, now,
                per_origin_limit=first, in_flight=in_flight, paused=paused,
                max_bytes=MAX_BYTES_IN_FLIGHT,
            )
        except errors.OutboxError:
            log.warning("the Celery relay could not claim messages", exc_info=True)
            return []

    def _publish(self, token: str, claimed: list[Claimed]) -> None:
        chunks = split_batches(claimed, self.batch, self.batch_bytes)
        expires = claimed[0].lease_expires
        circuit = self.config.circuit
        with self._lock:
            claim = self._claims[token] = _Claim(expires)
            for message in claimed:
                claim.origins[message.id] = message.origin
                self._flying[message.origin] = self._flying.get(message.origin, 0) + 1
        for n, chunk in enumerate(chunks):
            batch = Batch(
                lease=token,
                lease_expires=expires,
                reply=self.reply_queue,
                header=self.config.idempotency_header,
                deadline=self.config.attempt_deadline,
                per_origin=self.config.per_origin,
                circuit=(circuit.failures, circuit.cooldown, circuit.longest),
                messages=tuple(
                    Message(
                        m.id, m.key, m.method, m.url, m.origin, bytes(m.wire), m.timeout,
                        m.attempt, m.schedule,
                    )
                    for m in chunk
                ),
            )
            try:
                self._send(batch)
            except Exception as exc:
                unsent = [m for rest in chunks[n:] for m in rest]
                self._unpublished(token, unsent, exc)
                return
            self.published += len(chunk)
            self.batches += 1
        self._failed_publishes = 0

    def _send(self, batch: Batch) -> None:
        if self._producer is None:
            import kombu

            self._pub_conn = self.app.connection_for_write(
                transport_options={"confirm_publish": True}
            )
            self._producer = kombu.Producer(self._pub_conn)
        options: dict[str, Any] = {}
        if self.queue is not None:
            options["queue"] = self.queue
        self.app.send_task(
            self.task_name, args=(batch.encode(),), producer=self._producer,
            # a task id without os.urandom (slow on some VMs) and a short argsrepr (Celery
            # would build a truncated repr of the whole batch for the message headers)
            task_id=f"{batch.lease}.{batch.messages[0].id}",
            argsrepr=f"(<sendoff batch of {len(batch.messages)}>,)", kwargsrepr="{}",
            ignore_result=True, retry=True,
            retry_policy={"max_retries": 2, "interval_start": 0, "interval_step": 0.2,
                          "interval_max": 0.5},
            **options,
        )

    def _unpublished(self, token: str, unsent: list[Claimed], exc: BaseException) -> None:
        """A publish failed: give the unsent messages back to the file and back off."""
        self.publish_errors += 1
        self._failed_publishes += 1
        backoff = min(MAX_BACKOFF, 0.25 * 2 ** min(self._failed_publishes - 1, 5))
        self._retry_at = time.monotonic() + backoff
        self._close_publisher()
        with self._lock:
            claim = self._claims.get(token)
            for message in unsent:
                if claim is not None and claim.origins.pop(message.id, None) is not None:
                    self._unfly(message.origin)
            if claim is not None and not claim.origins:
                del self._claims[token]
        log.warning(
            "CeleryRelay: could not publish %d message(s) (%s); they stay in the outbox,"
            " trying again in %.1f s", len(unsent), exc, backoff,
        )
        try:
            self.store.release(token, [m.id for m in unsent])
        except errors.OutboxError:  # their lease expires and they are claimed again
            log.warning("could not give the leases of unpublished messages back", exc_info=True)

    def _close_publisher(self) -> None:
        conn, self._pub_conn, self._producer = self._pub_conn, None, None
        if conn is not None:
            try:
                conn.release()
            except Exception:  # a broken connection: nothing to give back
                pass

    def _unfly(self, origin: str) -> None:
        left = self._flying.get(origin, 0) - 1
        if left > 0:
            self._flying[origin] = left
        else:
            self._flying.pop(origin, None)

    def _expire(self, now: float) -> None:
        """Forget claims whose lease expired: the file gives their messages out again."""
        with self._lock:
            gone = [token for token, claim in self._claims.items() if claim.expires < now]
            lost = 0
            for token in gone:
                claim = self._claims.pop(token)
                for origin in claim.origins.values():
                    self._unfly(origin)
                lost += len(claim.origins)
        if lost:
            self.expired += lost
            log.warning(
                "CeleryRelay: no outcome came back for %d message(s) within their lease"
                " (%.0f s); they are published again", lost, self.config.lease_seconds,
            )

    def _reconcile(self) -> None:
        """Forget the messages of this relay's claims that the file no longer has out.

        Every relay on a file reads the file's one reply queue, so another process's
        relay may apply the outcomes of our claims (and we theirs): the file says which
        of ours are still out. Without this, our count of messages in flight would only
        come down when their leases expire, holding our publishing back meanwhile."""
        mono = time.monotonic()
        if mono - self._reconciled_at < RECONCILE_EVERY:
            return
        self._reconciled_at = mono
        with self._lock:
            if not self._claims:
                return
        try:
            out = self.store.leased(f"{self.owner}/")
        except errors.OutboxError:
            return
        still: dict[str, set[str]] = {}
        for owner, ident in out:
            still.setdefault(owner, set()).add(ident)
        with self._lock:
            for token, claim in list(self._claims.items()):
                held = still.get(token, set())
                # a claim being published right now is in the file and in _claims: kept
                for ident in [i for i in claim.origins if i not in held]:
                    self._unfly(claim.origins.pop(ident))
                if not claim.origins:
                    del self._claims[token]

    def _trim_recent(self, now: float) -> None:
        horizon = now - self.config.lease_seconds / 4
        for origin, entries in list(self._recent.items()):
            while entries and entries[0][0] < horizon:
                _, n = entries.popleft()
                self._recent_sum[origin] -= n
            if not entries:
                del self._recent[origin]
                del self._recent_sum[origin]

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

    # -- outcomes ---------------------------------------------------------------------
    def _consume_loop(self) -> None:
        import kombu

        exchange = kombu.Exchange(OUTCOME_EXCHANGE, type="direct", durable=True)
        queue = kombu.Queue(self.reply_queue, exchange, routing_key=self.reply_queue,
                            durable=True)
        pause = 0.25
        while not self._stopping.is_set():
            conn = self.app.connection_for_read(transport_options=self._reply_options())
            try:
                conn.ensure_connection(max_retries=1)
                channel = conn.channel()
                consumer = kombu.Consumer(
                    channel, queues=[queue], callbacks=[self._on_report], accept=["json"],
                    prefetch_count=64,
                )
                consumer.consume()
                self._consuming.set()
                pause = 0.25
                while not self._stopping.is_set():
                    try:
                        conn.drain_events(timeout=0.25)
                    except TimeoutError:
                        conn.heartbeat_check()
            except Exception as exc:
                self._consuming.clear()
                if self._stopping.is_set():
                    break
                log.warning(
                    "CeleryRelay: the outcome queue %s is out of reach (%s); trying again",
                    self.reply_queue, exc,
                )
                self._stopping.wait(pause)
                pause = min(pause * 2, MAX_BACKOFF)
            finally:
                try:
                    conn.release()
                except Exception:  # a broken connection: nothing to give back
                    pass
        self._consuming.clear()

    def _reply_options(self) -> dict[str, Any]:
        """Transport options of the outcome consumer's connection.

        On Redis, a message a consumer took and never acknowledged (the producer was
        killed while it wrote a report) waits in an "unacked" hash until
        ``visibility_timeout`` passes (Celery's default: an hour), longer than a lease:
        its messages would be sent again. The relays keep their own unacked hash (so that
        they never restore the workers' tasks) with a timeout well inside the lease.
        RabbitMQ ignores these: it requeues what a closed connection did not ack."""
        return {
            "visibility_timeout": max(1.0, min(30.0, self.config.lease_seconds / 3)),
            "unacked_key": "sendoff_unacked",
            "unacked_index_key": "sendoff_unacked_index",
            "unacked_mutex_key": "sendoff_unacked_mutex",
            "unacked_restore_throttle": 1,
        }

    def _on_report(self, body: Any, message: Any) -> None:
        try:
            self.apply(body)
        except errors.OutboxError:
            log.error("could not write outcomes to the outbox; the report is kept",
                      exc_info=True)
            message.requeue()
            self._stopping.wait(0.5)
            return
        except Exception:
            log.error("dropped a malformed outcome report", exc_info=True)
        message.ack()

    def apply(self, body: dict[str, Any]) -> int:
        """Write an outcome report to the file; how many outcomes it took (none of a report
        applied before, or of a lease that expired and was claimed again)."""
        token = str(body["lease"])
        now = self.clock()
        final: dict[str, list[Outcome]] = {"delivered": [], "retry": [], "dead": []}
        later: dict[float, list[str]] = {}
        for item in body["outcomes"]:
            ident = str(item["id"])
            verdict = item["v"]
            status = item.get("status")
            error = item.get("error")
            if verdict == "deferred":
                later.setdefault(float(item.get("wait") or 0.0), []).append(ident)
            elif verdict == "delivered":
                final["delivered"].append(Outcome(ident, "delivered", status))
            elif verdict == "dead":
                final["dead"].append(Outcome(ident, "dead", status, error))
            elif verdict == "retry":
                when = plan_retry(
                    tuple(float(step) for step in item["schedule"]), int(item["attempt"]),
                    now, rng=self.rng, retry_after_delay=item.get("retry_after"),
                )
                if when is None:  # that was the schedule's last attempt
                    final["dead"].append(Outcome(ident, "dead", status, error))
                else:
                    final["retry"].append(Outcome(ident, "retry", status, error, when))
            else:
                raise ValueError(f"unknown verdict {verdict!r}")
        took = {verdict: self.store.finish(token, outcomes, now) if outcomes else 0
                for verdict, outcomes in final.items()}
        deferred = sum(self.store.release(token, ids, until=now + wait)
                       for wait, ids in later.items())
        if took["dead"]:
            log.warning(
                "%d outbox message(s) are dead: %s", took["dead"],
                "; ".join(f"{o.id}: {o.error}" for o in final["dead"][:5]),
            )
        self.reports += 1
        self.delivered += took["delivered"]
        self.retried += took["retry"]
        self.dead += took["dead"]
        self.deferred += deferred
        self._answered(token, body["outcomes"], now)
        applied = sum(took.values()) + deferred
        log.debug("report of %s under %s: %d outcome(s), %d applied", body.get("worker"),
                  token, len(body["outcomes"]), applied)
        return applied

    def _answered(self, token: str, items: list[dict[str, Any]], now: float) -> None:
        with self._lock:
            claim = self._claims.get(token)
            if claim is None:  # another process's, or an expired claim
                return
            per_origin: dict[str, int] = {}
            for item in items:
                origin = claim.origins.pop(str(item["id"]), None)
                if origin is None:
                    continue
                self._unfly(origin)
                if item["v"] == "deferred":
                    until = now + float(item.get("wait") or 0.0)
                    self._paused[origin] = max(self._paused.get(origin, 0.0), until)
                else:
                    per_origin[origin] = per_origin.get(origin, 0) + 1
            for origin, n in per_origin.items():
                self._recent.setdefault(origin, deque()).append((now, n))
                self._recent_sum[origin] = self._recent_sum.get(origin, 0) + n
            if not claim.origins:
                del self._claims[token]
        self._held = False
        self._wake.set()  # room in the windows: the publisher may claim more


def default_reply_queue(path: str) -> str:
    """``sendoff.outcomes.<host>.<12 hex digits of the file's real path>``."""
    digest = hashlib.sha1(os.path.realpath(path).encode(), usedforsecurity=False).hexdigest()
    return f"sendoff.outcomes.{socket.gethostname()}.{digest[:12]}"
