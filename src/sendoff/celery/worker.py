"""The worker side: ``register(app)`` adds the task that delivers a batch through the engine.

One task delivers one batch (up to a few hundred messages) from a prefork pool process:
the process's delivery engine keeps many requests in flight (per origin up to the batch's
``per_origin`` and the request slots the origin has free), not one blocking request per
Celery slot. Every attempt carries the message's key as ``Idempotency-Key`` and runs the
listeners given to :func:`register` (a :class:`~sendoff.subscribers.StandardWebhooks`
signer signs each attempt with a fresh timestamp, on the worker). Outcomes go back to the
relay on the batch's reply queue as they come in (every ``report_every`` seconds), the
last of them before the task returns: the task is acknowledged (``acks_late``) only after
every outcome was published (with publisher confirms on RabbitMQ).

A batch picked up after its lease expired is dropped without sending anything: the relay
has claimed those messages again and published them anew.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from ..core.emitter import Emitter
from ..delivery.engine import get_engine
from ..delivery.receipt import Receipt
from ..delivery.sender import Sender, Settings
from ..outbox.relay import judge, send_attempt
from ..subscribers.webhooks import StandardWebhooks
from .limits import SLOT_REFRESH, CircuitRule, LocalLimits, OriginLimits, RedisLimits
from .payload import OUTCOME_EXCHANGE, TASK_NAME, Batch, Message, outcome, report

log = logging.getLogger("sendoff.celery")

#: seconds between two outcome reports of a running batch
REPORT_EVERY = 0.2
#: seconds a batch waits for a request slot of an origin before it gives the messages
#: back to the relay (due again after DEFER_BUSY seconds, no attempt counted)
SLOT_WAIT = 10.0
DEFER_BUSY = 1.0
#: seconds between two tries for more request slots of an origin
SLOT_RETRY = 0.05


def register(
    app: Any,
    *,
    emitter: Emitter | None = None,
    sign: StandardWebhooks | str | bytes | None = None,
    verify: bool = True,
    ca_bundle: str | None = None,
    limits: Literal["auto", "local"] | str | OriginLimits = "auto",
    prefetch_multiplier: int | None = 1,
    name: str = TASK_NAME,
) -> Any:
    """Add sendoff's delivery task to the Celery ``app``; return the task.

    Call it in the module the workers import (``celery -A proj worker``) and in the
    producer's (where it only names the task). On the workers:

    * ``emitter``: listeners that run on every attempt (the producer's ``outbox.emitter``
      does not reach the workers); ``sign``: a Standard Webhooks secret (or a
      :class:`~sendoff.subscribers.StandardWebhooks`), attached to that emitter, so each
      attempt is signed on the worker with a fresh timestamp.
    * ``verify``/``ca_bundle``: TLS verification of the worker's connections (paths are
      the worker machine's).
    * ``limits``: where the per-origin concurrency cap and circuit live: ``"auto"`` (the
      broker's Redis when the broker is Redis, else each worker process), ``"local"``
      (each worker process), a ``redis://`` URL, or an :class:`~.limits.OriginLimits`.
    * ``prefetch_multiplier``: sets ``worker_prefetch_multiplier`` (default 1: a batch
      is a few hundred messages, so one task per pool process is enough; ``None`` leaves
      the app's setting).

    The task is ``acks_late`` and ``reject_on_worker_lost`` (a batch whose worker died is
    given to another), ignores results and never retries through Celery: the relay
    re-publishes what did not come back, on the outbox's schedule.
    """
    listeners = emitter if emitter is not None else Emitter()
    if sign is not None:
        listeners.attach(sign if isinstance(sign, StandardWebhooks) else StandardWebhooks(sign))
    if prefetch_multiplier is not None:
        app.conf.worker_prefetch_multiplier = prefetch_multiplier
    worker = Worker(app, emitter=listeners, verify=verify, ca_bundle=ca_bundle,
                    limits=_limits(app, limits))

    def deliver(task: Any, batch: dict[str, Any]) -> dict[str, int]:
        return worker.run(batch, str(task.request.hostname or ""))

    deliver.__doc__ = "Deliver a sendoff batch and report its outcomes (see sendoff.celery)."
    return app.task(
        name=name, bind=True, acks_late=True, reject_on_worker_lost=True, ignore_result=True,
        shared=False, typing=False,
    )(deliver)


def _limits(app: Any, choice: str | OriginLimits) -> OriginLimits:
    if not isinstance(choice, str):
        return choice
    if choice == "local":
        return LocalLimits()
    if choice == "auto":
        url = broker_url(app)
        if url.startswith(("redis://", "rediss://")):
            return RedisLimits(url)
        return LocalLimits()
    if choice.startswith(("redis://", "rediss://", "unix://")):
        return RedisLimits(choice)
    raise ValueError(f"limits: 'auto', 'local', a redis:// URL or an OriginLimits, not {choice!r}")


def broker_url(app: Any) -> str:
    """The app's (first) broker URL, as configured (password included)."""
    url = app.conf.broker_url or ""
    if isinstance(url, list | tuple):
        url = url[0] if url else ""
    return str(url).split(";")[0].strip()


class Reporter:
    """Publishes outcome reports from one process (its own connection, made after fork)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._pid = -1
        self._conn: Any = None
        self._producer: Any = None

    def _ready(self) -> Any:
        if self._pid != os.getpid() or self._conn is None:
            import kombu

            self._pid = os.getpid()
            self._conn = self.app.connection_for_write(
                transport_options={"confirm_publish": True}
            )
            self._producer = kombu.Producer(self._conn)
        return self._producer

    def close(self) -> None:
        conn, self._conn, self._producer = self._conn, None, None
        if conn is not None and self._pid == os.getpid():
            try:
                conn.release()
            except Exception:  # a broken connection: nothing to give back
                pass

    def publish(self, reply: str, body: dict[str, Any], give_up_at: float) -> None:
        """Publish ``body`` to the reply queue ``reply`` (persistent; confirmed on
        RabbitMQ), trying again while the broker is away, until ``give_up_at``."""
        import kombu

        exchange = kombu.Exchange(OUTCOME_EXCHANGE, type="direct", durable=True)
        queue = kombu.Queue(reply, exchange, routing_key=reply, durable=True)
        pause = 0.2
        while True:
            try:
                producer = self._ready()
                producer.publish(
                    body, exchange=exchange, routing_key=reply, declare=[queue],
                    serializer="json", delivery_mode=2, retry=True,
                    retry_policy={"max_retries": 2, "interval_start": 0,
                                  "interval_step": 0.2, "interval_max": 0.5},
                )
                return
            except Exception as exc:
                self.close()
                if time.time() + pause > give_up_at:
                    raise
                log.warning("sendoff worker: could not report outcomes (%s); trying again", exc)
                time.sleep(pause)
                pause = min(pause * 2, 2.0)


class Worker:
    """Delivers batches in one worker process (the task's body)."""

    def __init__(
        self,
        app: Any,
        *,
        emitter: Emitter,
        verify: bool = True,
        ca_bundle: str | None = None,
        limits: OriginLimits | None = None,
        report_every: float = REPORT_EVERY,
        slot_wait: float = SLOT_WAIT,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.app = app
        self.emitter = emitter
        self.verify = verify
        self.ca_bundle = ca_bundle
        self.limits = limits if limits is not None else LocalLimits()
        self.report_every = report_every
        self.slot_wait = slot_wait
        self.clock = clock
        self.reporter = Reporter(app)
        self._senders: dict[int, Sender] = {}
        self._pid = os.getpid()
        self.batches = self.stale = 0

    def sender(self, per_origin: int) -> Sender:
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._senders.clear()
        sender = self._senders.get(per_origin)
        if sender is None:
            settings = Settings(
                verify=self.verify, ca_bundle=self.ca_bundle,
                connections_per_origin=per_origin, max_queue=10_000_000, retries=0,
            )
            sender = self._senders[per_origin] = get_engine().sender(settings)
        return sender

    def run(self, data: dict[str, Any], hostname: str) -> dict[str, int]:
        """Deliver one batch and report every outcome; what happened, counted."""
        batch = Batch.decode(data)
        now = self.clock()
        if now > batch.lease_expires:
            self.stale += 1
            log.info(
                "sendoff worker: dropped a batch of %d message(s) whose lease expired %.1f s"
                " ago (the relay has published them again)",
                len(batch.messages), now - batch.lease_expires,
            )
            return {"stale": len(batch.messages)}
        self.batches += 1
        return _Delivery(self, batch, hostname).run()


class _Origin:
    __slots__ = ("active", "gate", "healthy", "name", "probe", "queue", "sender", "slots",
                 "tried_at", "waiting_since")

    def __init__(self, name: str) -> None:
        self.name = name
        self.queue: deque[Message] = deque()
        self.slots: list[str] = []
        self.sender: Sender | None = None
        self.active = 0  # handed to the engine, not answered yet
        self.healthy = False  # its last answer in this batch was not one to retry
        self.gate = "closed"
        self.probe = False
        self.tried_at = 0.0
        self.waiting_since = time.monotonic()


class _Delivery:
    """One batch on its way: per-origin slots, the outcomes, the reports.

    An origin's messages go to an engine sender whose connection cap is the number of
    request slots the batch holds for it (the engine keeps that many requests in
    flight); the task's thread keeps up to ``AHEAD`` times that many queued in the
    engine and tops up when half of them are answered, so the engine never waits for
    it. Until the origin has answered well in this batch (and after each failure) only
    as many as it has slots go out, so that an origin whose circuit opens mid-batch gets
    few more tries.
    """

    AHEAD = 4

    def __init__(self, worker: Worker, batch: Batch, hostname: str) -> None:
        self.worker = worker
        self.batch = batch
        self.hostname = hostname
        self.limits = worker.limits
        failures, cooldown, longest = batch.circuit
        self.rule = CircuitRule(failures, cooldown, longest)
        self.done: deque[tuple[Message, Receipt]] = deque()
        self.wakeup = threading.Event()
        self.wake_at = 1  # answers that wake the task's thread (fewer: the timeout does)
        self.active = 0
        self.pending: list[dict[str, Any]] = []
        self.receipts: dict[str, Receipt] = {}  # the engine holds receipts weakly
        self.counts = {"delivered": 0, "retry": 0, "dead": 0, "deferred": 0}
        self.origins: dict[str, _Origin] = {}
        for message in batch.messages:
            state = self.origins.get(message.origin)
            if state is None:
                state = self.origins[message.origin] = _Origin(message.origin)
            state.queue.append(message)

    def run(self) -> dict[str, int]:
        batch = self.batch
        # past this, the relay sends the messages again anyway: report what we have
        give_up_at = max(batch.lease_expires, self.worker.clock() + 5.0)
        reported_at = refreshed_at = time.monotonic()
        try:
            for state in self.origins.values():
                self._open(state)
            while self._busy():
                now = time.monotonic()
                for state in self.origins.values():
                    self._feed(state, now)
                self._rearm()
                self.wakeup.wait(self.worker.report_every / 2)
                self.wakeup.clear()
                self._collect()
                now = time.monotonic()
                if now - refreshed_at >= SLOT_REFRESH:
                    refreshed_at = now
                    for state in self.origins.values():
                        if state.slots:
                            self.limits.refresh(state.name, state.slots)
                if self.pending and now - reported_at >= self.worker.report_every:
                    reported_at = now
                    self._report(give_up_at)
        finally:
            for state in self.origins.values():
                self._give_back_slots(state)
        self._report(give_up_at)
        return dict(self.counts)

    def _busy(self) -> bool:
        return any(s.queue or s.active for s in self.origins.values()) or bool(self.done)

    def _rearm(self) -> None:
        """Wake the task's thread when half of what an origin has queued is answered
        (or everything, or an origin's probe)."""
        refill = [
            self.AHEAD * len(s.slots) // 2 for s in self.origins.values()
            if s.queue and s.slots and s.healthy and not s.probe
        ]
        if any(s.queue and s.slots and not s.healthy for s in self.origins.values()):
            refill.append(1)
        self.wake_at = max(1, min([self.active, *refill]))

    def _open(self, state: _Origin) -> None:
        """Ask the origin's circuit, then for request slots."""
        gate, wait = self.limits.gate(state.name, self.rule)
        state.gate = gate
        if gate == "open":
            self._defer(state, wait)
            return
        state.probe = gate == "probe"
        self._take_slots(state, time.monotonic())

    def _take_slots(self, state: _Origin, now: float) -> None:
        """Take the origin's request slots for this batch: as many as it can use, up to
        the origin's cap less what other workers hold (one while the circuit probes)."""
        cap = self.batch.per_origin
        want = 1 if state.probe else min(len(state.queue), cap)
        state.tried_at = now
        got = self.limits.acquire(state.name, want, cap)
        if got:
            state.slots = got
            state.waiting_since = now
            state.sender = self.worker.sender(len(got))

    def _feed(self, state: _Origin, now: float) -> None:
        """Hand the engine what the origin's slots allow; wait for slots a while."""
        if state.queue and not state.slots:
            if now - state.tried_at >= SLOT_RETRY:
                self._take_slots(state, now)
            if not state.slots and now - state.waiting_since > self.worker.slot_wait:
                log.info(
                    "sendoff worker: no request slot of %s came free in %.0f s; %d"
                    " message(s) go back to the outbox", state.name, self.worker.slot_wait,
                    len(state.queue),
                )
                self._defer(state, DEFER_BUSY)
        sender = state.sender
        if sender is not None:
            ahead = len(state.slots) * (self.AHEAD if state.healthy else 1)
            if state.probe:
                ahead = 1
            while state.queue and state.active < ahead:
                if state.probe and state.gate == "probed":
                    break  # the probe was answered and the circuit is still not closed
                message = state.queue.popleft()
                state.active += 1
                self.active += 1
                receipt = send_attempt(
                    sender, self.worker.emitter, self.batch.header, message.key,
                    message.wire, message.url, message.timeout,
                    max(self.batch.deadline, 2 * message.timeout),
                )
                self.receipts[message.id] = receipt
                receipt.add_done_callback(functools.partial(self._answered, message))
        if not state.queue and not state.active:
            self._give_back_slots(state)

    def _answered(self, message: Message, receipt: Receipt) -> None:
        """On the engine thread: hand the ending to the task's thread."""
        done = self.done
        done.append((message, receipt))
        if len(done) >= self.wake_at:
            self.wakeup.set()

    def _collect(self) -> None:
        """Judge the attempts that ended; feed the circuits."""
        if not self.done:
            return
        now = self.worker.clock()
        tally: dict[str, list[int]] = {}  # origin -> [any success, failures after it]
        while self.done:
            message, receipt = self.done.popleft()
            self.receipts.pop(message.id, None)
            state = self.origins[message.origin]
            state.active -= 1
            self.active -= 1
            result = judge(receipt, now)
            counts = tally.setdefault(message.origin, [0, 0])
            state.healthy = result.verdict != "retry"
            if result.verdict == "retry":
                counts[1] += 1
                entry = outcome(message, "retry", status=result.status, error=result.reason,
                                retry_after=result.retry_after)
            else:
                counts[0], counts[1] = 1, 0
                entry = outcome(message, result.verdict, status=result.status,
                                error=None if result.verdict == "delivered" else result.reason)
            self.counts[result.verdict] += 1
            self.pending.append(entry)
        for origin, (succeeded, failures) in tally.items():
            state = self.origins[origin]
            wait = self.limits.record(origin, self.rule, bool(succeeded), failures)
            if state.probe:
                if succeeded and not wait:  # the probe worked: the circuit is closed
                    state.probe = False
                    state.gate = "closed"
                    if state.queue and not state.active:  # the rest at full width
                        self._give_back_slots(state)
                        self._take_slots(state, time.monotonic())
                else:
                    state.gate = "probed"
            if wait > 0 and state.queue:
                self._defer(state, wait)
            elif state.gate == "probed" and state.queue:
                self._defer(state, max(wait, DEFER_BUSY))

    def _defer(self, state: _Origin, wait: float) -> None:
        """Give the origin's unsent messages back to the relay, due in ``wait`` s."""
        while state.queue:
            self.pending.append(outcome(state.queue.popleft(), "deferred", wait=wait))
            self.counts["deferred"] += 1
        if not state.active:
            self._give_back_slots(state)

    def _give_back_slots(self, state: _Origin) -> None:
        if state.slots:
            slots, state.slots = state.slots, []
            state.sender = None
            self.limits.release(state.name, slots)

    def _report(self, give_up_at: float) -> None:
        if not self.pending:
            return
        body = report(self.batch.lease, self.hostname, self.pending)
        self.worker.reporter.publish(self.batch.reply, body, give_up_at)
        self.pending = []
