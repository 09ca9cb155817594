"""The Sender: the caller's side of the engine, for one set of settings.

Clients with equal settings share a sender, so its per-origin pools (and their
keep-alive connections) are reused even by code that makes a new client per request, as
the Kohana seed does. :meth:`Sender.submit` is the caller's whole cost of a fire: a
receipt, one append to the sender's inbox, and a wake-up of the engine only if it
sleeps (the engine makes the job that refers to the receipt weakly). Its cost does not
depend on how many origins are in use: the engine thread sorts the inbox into per-origin
pools.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol

from ..core import errors
from ..core.errors import QueueFull
from ..core.log import logger
from .connection import MAX_BODY, MAX_HEAD, Limits
from .job import Answer, Job
from .logwindow import LogWindow
from .pool import COUNTERS, Pool, Tally
from .receipt import Receipt

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest
    from ..http.url import URL

#: What a fire does when the queue is full: drop it, wait for room, or raise QueueFull.
OnFull = Literal["drop", "block", "raise"]


@dataclass(frozen=True)
class Settings:
    """What decides how requests are sent; clients with equal settings share a Sender."""

    verify: bool = True
    ca_bundle: str | None = None
    connections_per_origin: int = 16
    pipeline: int = 1
    max_queue: int = 100_000
    on_full: OnFull = "drop"
    retries: int = 2
    exit_timeout: float = 5.0
    max_response_head: int = MAX_HEAD
    max_response_body: int = MAX_BODY


class Sleeper(Protocol):
    """The loop of the engine: whether it waits for something to do."""

    sleeping: bool


class SenderHost(Protocol):
    """What a sender needs of the engine it feeds."""

    @property
    def loop(self) -> Sleeper:
        """The engine's loop (``loop.sleeping``: it waits, has not started, or stopped)."""

    def wake(self) -> None:
        """Make the engine look at the inboxes soon (starting its thread if need be)."""

    def check_fork(self) -> None:
        """Adopt this process if it was forked without the fork hooks running."""


class Sender:
    """The inbox of one set of settings, its shared tally and its per-origin pools
    (the pools are the engine thread's; callers only append to the inbox)."""

    def __init__(self, host: SenderHost, settings: Settings) -> None:
        self.host = host
        self.settings = settings
        self.max_queue = settings.max_queue
        self.limits = Limits(settings.max_response_head, settings.max_response_body)
        #: (receipt, timeout, deadline) of each request not yet sorted into its pool
        self.inbox: deque[tuple[Receipt, float, float]] = deque()
        self.tally = Tally()
        #: origin -> pool; changed on the engine thread only
        self.pools: dict[tuple[str, str, int], Pool] = {}
        #: counters of pools freed after they fell idle, so that totals stay whole
        self.retired = dict.fromkeys(COUNTERS, 0)
        self.abandoned = 0
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)
        self.blocked = 0  # callers waiting for room (on_full="block")
        self.dropped: dict[str, int] = {}
        #: jobs with listeners that ``on_full`` dropped: the engine runs their error and
        #: end listeners (on its thread, as for every other outcome)
        self.dropped_jobs: deque[tuple[Job, BaseException]] = deque()
        #: requests a ``before`` listener ended in the caller's thread: the engine counts
        #: them with the others of their origin
        self.ended_jobs: deque[tuple[Job, Answer | None, BaseException | None]] = deque()
        self.full_logs: dict[str, LogWindow] = {}

    def __repr__(self) -> str:
        return f"<Sender {self.settings} queued={self.queued()}>"

    # -- the caller's side -------------------------------------------------------------------
    def submit(
        self,
        url: URL,
        wire: bytes,
        timeout: float,
        limit: float,
        txn: Transaction | None = None,
        prepared: PreparedRequest | None = None,
    ) -> Receipt:
        """Queue ``wire`` for ``url``'s origin and return its receipt at once."""
        receipt = Receipt(wire, url)
        if txn is not None:
            receipt.attach(txn, prepared)
        inbox = self.inbox
        if len(inbox) + self.tally.queued >= self.max_queue and not self._make_room(
            receipt, timeout, limit
        ):
            return receipt
        inbox.append((receipt, timeout, limit))
        host = self.host
        if host.loop.sleeping:
            host.wake()
        elif not len(inbox) & 0x3FF:
            host.check_fork()  # a fork that bypassed os.register_at_fork
        return receipt

    def queued(self) -> int:
        """Requests waiting for a connection, every origin together."""
        return len(self.inbox) + self.tally.queued

    def _make_room(self, receipt: Receipt, timeout: float, limit: float) -> bool:
        """The queue is full: apply ``on_full``; True if the request may be queued now."""
        policy = self.settings.on_full
        if policy == "block" and self._wait_for_room(timeout):
            return True
        job = Job(receipt.wire, receipt.target, receipt, timeout, limit, receipt.txn)
        origin = job.url.origin_text
        error = QueueFull(
            f"{job.method} {job.where()}: the fire-and-forget queue is full "
            f"(max_queue={self.max_queue}, on_full={policy!r})"
        )
        with self.lock:
            self.dropped[origin] = self.dropped.get(origin, 0) + 1
            window = self.full_logs.get(origin)
            if window is None:
                window = self.full_logs[origin] = LogWindow()
        window.line(
            time.monotonic(),
            f"fire-and-forget queue full (max_queue={self.max_queue}, on_full={policy!r}): "
            f"dropping requests to {origin}",
        )
        if policy == "raise":
            raise error
        if job.txn is not None:  # its error and end listeners still run, on the engine
            self.dropped_jobs.append((job, error))
            if self.host.loop.sleeping:
                self.host.wake()
        else:
            receipt.settle(None, error)
        return False

    def _wait_for_room(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self.room:
            self.blocked += 1
            try:
                while self.queued() >= self.max_queue:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    self.room.wait(min(left, 0.25))
            finally:
                self.blocked -= 1
        return True

    def report(self, now: float) -> None:
        """Log the queue-full lines held back (engine thread, about once a second)."""
        for origin, window in list(self.full_logs.items()):
            window.report(now, origin)

    # -- reporting -----------------------------------------------------------------------------
    def outstanding(self) -> int:
        """Requests queued or in the engine's hands (exact on the engine thread)."""
        tally = self.tally
        return len(self.inbox) + tally.queued + tally.active

    def counters(self) -> dict[str, Any]:
        """Counters per origin (live pools, plus the drops of every origin)."""
        origins = {pool.label: pool.counters() for pool in list(self.pools.values())}
        for receipt, _, _ in list(self.inbox):  # not sorted into their pools yet
            origin = receipt.target.origin_text
            entry = origins.setdefault(origin, dict.fromkeys(COUNTERS, 0))
            entry["queued"] += 1
        for origin, count in list(self.dropped.items()):
            entry = origins.setdefault(origin, dict.fromkeys(COUNTERS, 0))
            entry["dropped"] = count
        return {"origins": origins, "abandoned": self.abandoned, "retired": dict(self.retired)}

    def ended_early(
        self, url: URL, wire: bytes, answer: Answer | None, error: BaseException | None
    ) -> None:
        """Count a request that ended in the caller's thread (intercepted by ``before``)."""
        self.ended_jobs.append((Job(wire, url, None, 0.0, 0.0), answer, error))
        if self.host.loop.sleeping:
            self.host.wake()

    def refuse(self, job: Job, error: BaseException) -> None:
        """End a job no pool could be made for (engine thread): counted failed, logged."""
        self.retired["failed"] += 1
        failure = job.error(errors.ConnectError, f"cannot send there: {error}")
        logger.warning("%s %s failed: cannot send there: %s", job.method, job.where(), error)
        ref = job.receipt
        receipt = ref() if ref is not None else None
        if receipt is not None:
            receipt.settle(None, failure)

    def reset_after_fork(self) -> None:
        """In a forked child: fresh locks (a parent's thread may have held them)."""
        self.lock = threading.Lock()
        self.room = threading.Condition(self.lock)
        self.blocked = 0
        self.dropped = {}
        self.full_logs = {}

    def retire(self, pool: Pool) -> None:
        """Free an idle pool (engine thread), keeping its counts in the totals."""
        del self.pools[(pool.scheme, pool.host, pool.port)]
        for key, value in pool.counters().items():
            if key not in ("queued", "in_flight", "dropped"):
                self.retired[key] += value

