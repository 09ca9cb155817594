"""A pool: the connections to one origin for one set of settings, its queue and its
counters. Everything here runs on the engine thread.

The pool is where a job ends: :meth:`Pool.finish` is the one place that counts an
outcome and settles a receipt. Connections report to the pool through the
:class:`~.connection.ConnectionOwner` methods; the pool asks its owner (the engine) for
what is not its own through :class:`PoolHost`.
"""

from __future__ import annotations

import random
import socket
import ssl
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from ..core import errors
from ..events.lifecycle import SEND
from ..http.models import Response
from .connection import CLOSED, OPEN, Connection, Limits, Loop
from .job import RESENT, RETRIES, Answer, Job
from .logwindow import LogWindow

if TYPE_CHECKING:
    from ..http.url import URL

#: Seconds an unused keep-alive connection stays open (servers close theirs at 2-75 s;
#: a request caught by such a close is sent again once, see Connection._lost).
IDLE_TIMEOUT = 15.0
#: Seconds a DNS answer (or failure) is reused.
DNS_TTL = 60.0
DNS_FAILURE_TTL = 1.0
#: Consecutive answers an origin must keep its connections open for before requests are
#: pipelined to it without waiting for the head of the answer ahead of them.
TRUST_AFTER = 64
#: Seconds between the first automatic connect retries (doubled each time, capped).
BACKOFF = 0.5
BACKOFF_MAX = 10.0
COUNTERS = (
    "queued",
    "in_flight",
    "delivered",
    "failed",
    "dropped",
    "retried",
    "answered_4xx",
    "answered_5xx",
)


class Tally:
    """Jobs of one sender in the engine's hands, shared by its pools: ``queued`` wait in
    a pool's queue, ``active`` were taken from it and have not ended."""

    __slots__ = ("active", "queued")

    def __init__(self) -> None:
        self.queued = 0
        self.active = 0


class PoolLoop(Loop, Protocol):
    """What a pool needs of the loop its connections run on."""

    def call_later(self, delay: float, function: Callable[..., Any], *args: Any) -> None: ...


class PoolHost(Protocol):
    """What a pool needs of the engine that owns it."""

    @property
    def loop(self) -> PoolLoop: ...

    def resolve(self, pool: Pool) -> None:
        """Look the pool's host up; answer through :meth:`Pool.resolved`."""

    def reroute(self, pool: Pool, job: Job, delay: float) -> None:
        """A listener sent ``job`` again, maybe elsewhere: queue it where it now goes."""


class Pool:
    """The connections to one origin (scheme, host, port) of one sender."""

    __slots__ = (
        "active",
        "addresses",
        "answered_4xx",
        "answered_5xx",
        "answers_log",
        "conns",
        "delivered",
        "dns_error",
        "dns_expires",
        "failed",
        "failures_log",
        "host",
        "idle",
        "idle_since",
        "label",
        "limits",
        "loop",
        "max_conns",
        "owner",
        "pipeline",
        "pipelining",
        "port",
        "queue",
        "resolving",
        "retried",
        "retries",
        "scheme",
        "ssl_context",
        "streak",
        "tag",
        "tally",
    )

    def __init__(
        self,
        owner: PoolHost,
        url: URL,
        tally: Tally,
        *,
        ssl_context: ssl.SSLContext | None,
        connections: int,
        pipeline: int,
        retries: int,
        limits: Limits,
    ) -> None:
        self.owner = owner
        #: what the owner knows this pool by (the engine: its sender)
        self.tag: Any = None
        self.loop = owner.loop
        self.scheme, self.host, self.port = url.origin
        self.label = url.origin_text
        self.tally = tally
        self.queue: deque[Job] = deque()
        self.conns: list[Connection] = []
        self.idle: list[Connection] = []  # open connections with nothing in flight
        self.max_conns = connections
        self.pipeline = pipeline
        #: pipelining is on until the origin shows it cannot take it
        self.pipelining = pipeline > 1
        #: consecutive answers that kept their connection; -1 once one did not (for good)
        self.streak = 0
        self.retries = retries
        self.limits = limits
        self.ssl_context = ssl_context if self.scheme == "https" else None
        self.addresses: list[tuple[Any, ...]] | None = _numeric_addresses(self.host, self.port)
        self.dns_expires = float("inf") if self.addresses else 0.0
        self.dns_error: BaseException | None = None
        self.resolving = False
        self.active = 0  # taken from the queue and not ended (connections, timers)
        self.idle_since = self.loop.now
        self.delivered = self.failed = self.retried = 0
        self.answered_4xx = self.answered_5xx = 0
        self.failures_log = LogWindow()
        self.answers_log = LogWindow()

    def __repr__(self) -> str:
        return f"<Pool {self.label} queued={len(self.queue)} conns={len(self.conns)}>"

    # -- the queue ------------------------------------------------------------------------
    def add(self, job: Job) -> None:
        """Queue ``job`` (from the caller's inbox, or back after a retry)."""
        self.queue.append(job)
        self.tally.queued += 1

    def _take(self) -> Job:
        job = self.queue.popleft()
        self.tally.queued -= 1
        self.tally.active += 1
        self.active += 1
        return job

    def _give_back(self, jobs: list[Job]) -> None:
        """Put jobs taken earlier back at the head of the queue, in order."""
        self.queue.extendleft(reversed(jobs))
        count = len(jobs)
        self.tally.queued += count
        self.tally.active -= count
        self.active -= count

    def release(self, job: Job) -> None:
        """``job`` leaves this pool without ending here (sent again elsewhere)."""
        self.tally.active -= 1
        self.active -= 1

    def hold(self, job: Job) -> None:
        """Take charge of ``job`` without queueing it (it waits for a timer, or ends at
        once): it counts as in the engine's hands until it is queued or ends."""
        self.tally.active += 1
        self.active += 1

    # -- handing out jobs -----------------------------------------------------------------
    def dispatch(self) -> None:
        """Give queued jobs to connections that can take them, opening connections as
        allowed."""
        queue, idle = self.queue, self.idle
        while queue and idle:
            self._fill(idle.pop())
        if queue and self.pipelining:
            trusted = self.streak >= TRUST_AFTER
            for conn in self.conns:
                if not queue:
                    break
                if conn.inflight and conn.accepts(trusted):
                    self._fill(conn)
        while queue and len(self.conns) < self.max_conns:
            if not self._open():
                break

    def _fill(self, conn: Connection) -> None:
        """Send ``conn`` what it may carry now: one job, or up to ``pipeline``."""
        queue = self.queue
        if not self.pipelining:
            job = self._take()
            conn.send(job, job.head)
            return
        trusted = self.streak >= TRUST_AFTER
        while queue and len(conn.inflight) < self.pipeline and conn.accepts(trusted):
            job = self._take()
            conn.send(job, job.head or job.closes())
        if not conn.inflight and conn.accepts() and conn not in self.idle:
            self.idle.append(conn)

    def _room_for_new(self) -> bool:
        """True if another connection may be opened now (the DNS answer is at hand)."""
        alive = sum(1 for conn in self.conns if conn.state != CLOSED)
        return alive < self.max_conns and (
            self.addresses is not None and self.loop.now < self.dns_expires
        )

    def _open(self) -> bool:
        """Open a connection for the next job; False if it must wait for DNS."""
        now = self.loop.now
        if self.addresses is not None and now < self.dns_expires:
            job = self._take()
            conn = Connection(
                self, self.loop, self.host, self.port, self.ssl_context, self.limits,
                IDLE_TIMEOUT, self.label, early=self.pipelining,
            )
            self.conns.append(conn)
            conn.connect(self.addresses, job, job.head or (self.pipelining and job.closes()))
            return True
        if self.dns_error is not None and now < self.dns_expires:
            job = self._take()
            reason = f"cannot resolve {self.host!r}: {self.dns_error}"
            self._connect_failed(job, job.error(errors.ConnectError, reason))
            return True
        if not self.resolving:
            self.resolving = True
            self.owner.resolve(self)
            self.loop.call_later(self.queue[0].timeout, self._resolve_timed_out)
        return False

    def resolved(
        self, addresses: list[tuple[Any, ...]] | None, error: BaseException | None
    ) -> None:
        """The resolver's answer: open connections for the jobs that waited for it."""
        if not self.resolving:
            return  # it timed out meanwhile; the next job asks again
        self.resolving = False
        self.addresses, self.dns_error = addresses, error
        self.dns_expires = self.loop.now + (DNS_TTL if addresses else DNS_FAILURE_TTL)
        self.dispatch()

    def _resolve_timed_out(self) -> None:
        if not self.resolving:
            return
        self.resolving = False
        self.dns_error = TimeoutError(f"no answer from the resolver for {self.host!r}")
        self.dns_expires = self.loop.now + DNS_FAILURE_TTL
        self.dispatch()

    # -- what connections report ----------------------------------------------------------
    def opened(self, conn: Connection) -> None:
        if self.pipelining and self.queue:
            self._fill(conn)

    def committed(self, conn: Connection) -> None:
        if self.pipelining and self.queue:
            self._fill(conn)

    def answered(self, conn: Connection, job: Job, answer: Answer) -> None:
        if job.txn is None:
            self.finish(job, answer, None)
        else:
            self.end(job, answer, None)
        if self.pipelining:
            self._learn(conn)
            if not conn.inflight and conn.accepts():
                if self.queue:
                    self._fill(conn)
                else:
                    self.idle.append(conn)
            elif self.queue and conn.accepts():
                self._fill(conn)
        elif conn.state == OPEN and not conn.closing:  # its one request was answered
            if self.queue:
                job = self._take()
                conn.send(job, job.head)
            else:
                self.idle.append(conn)

    def lost(
        self,
        conn: Connection,
        failed: list[tuple[Job, BaseException]],
        resend: list[Job],
        connecting: bool,
    ) -> None:
        if self.pipelining and (resend or failed) and not connecting:
            self.streak = -1  # it closed under requests: never trust it again
        if resend:
            # The server closed a connection it had kept alive: its other idle ones (same
            # limits, same idle timeout) are likely closed too. They go first (taken off
            # the idle list before they close, so that no job is handed to one of them),
            # then the requests are sent again on new connections.
            stale, self.idle = self.idle, []
            for idle in stale:
                idle.close()
            for job in resend:
                job.tries |= RESENT
            self.retried += len(resend)
            self._give_back(resend)
            while self.queue and self.queue[0].tries & RESENT and self._room_for_new():
                self._open()
        for job, error in failed:
            if connecting:
                self._connect_failed(job, error)
            else:
                self.end(job, None, error)

    def _learn(self, conn: Connection) -> None:
        """Count answers that kept their connection open; one that did not ends the
        origin's trust for good."""
        if conn.server_closed:
            self.streak = -1
        elif self.streak >= 0:
            self.streak += 1

    def closed(self, conn: Connection) -> None:
        try:
            self.conns.remove(conn)
        except ValueError:
            return
        if conn in self.idle:
            self.idle.remove(conn)
        if self.queue:
            self.dispatch()
        elif not self.conns:
            self.idle_since = self.loop.now

    def _connect_failed(self, job: Job, error: BaseException) -> None:
        """The connection for ``job`` could not be opened: try again later if allowed."""
        tries = job.tries & RETRIES
        if tries < self.retries and not isinstance(error, errors.TLSError):
            job.tries += 1
            self.retried += 1
            delay = min(BACKOFF * 2**tries, BACKOFF_MAX) * random.uniform(0.8, 1.2)
            self.loop.call_later(delay, self.retry, job)
        else:
            self.end(job, None, error)

    def retry(self, job: Job) -> None:
        """Queue ``job``, held until now, behind what waits already, and dispatch."""
        self._give_back([job])
        self.queue.rotate(-1)  # a retry waits behind what is queued
        self.dispatch()

    # -- endings --------------------------------------------------------------------------
    def end(
        self, job: Job, answer: Answer | None, error: BaseException | None, *, count: bool = True
    ) -> None:
        """Run the job's lifecycle listeners, if any (they may send it again), then
        :meth:`finish` it."""
        txn = job.txn
        if txn is not None:
            if error is None:
                assert isinstance(answer, Response)
                answer.request = txn.request
                step = txn.succeeded(answer)
            else:
                step = txn.failed(error)
            if step is SEND:
                self.retried += 1
                self.owner.reroute(self, job, txn.retry_delay)
                return
            error = txn.exception
            answer = None if error is not None else txn.response
        self.finish(job, answer, error, count=count)

    def finish(
        self, job: Job, answer: Answer | None, error: BaseException | None, *, count: bool = True
    ) -> None:
        """The one place a job ends: count it, log a failure, settle its receipt
        (``count=False``: a drop, counted where it was dropped)."""
        self.tally.active -= 1
        self.active -= 1
        if not count:
            pass
        elif error is None:
            self.delivered += 1
            if answer is None:
                status = 0
            elif isinstance(answer, Response):
                status = answer.status
            else:
                status = answer[0]
            if status >= 400:
                self._answered_badly(job, status)
        else:
            self.failed += 1
            self.failures_log.line(
                self.loop.now, f"{job.method} {job.where()} failed: {_reason(error)}"
            )
        ref = job.receipt
        receipt = ref() if ref is not None else None
        if receipt is not None:
            receipt.settle(answer, error)

    def _answered_badly(self, job: Job, status: int) -> None:
        if status >= 500:
            self.answered_5xx += 1
        else:
            self.answered_4xx += 1
        self.answers_log.line(self.loop.now, f"{job.method} {job.where()} was answered {status}")

    def report(self, now: float) -> None:
        """Log the lines held back by the rate limit, once their window has passed."""
        self.failures_log.report(now, self.label)
        self.answers_log.report(now, self.label)

    # -- upkeep and reporting -------------------------------------------------------------
    def unused(self, now: float, after: float) -> bool:
        """True if the pool has held nothing for ``after`` seconds (it may be freed)."""
        return (
            not self.conns
            and not self.queue
            and not self.active
            and not self.resolving
            and now - self.idle_since >= after
            and not self.failures_log.pending
            and not self.answers_log.pending
        )

    def close_all(self) -> None:
        """Close every connection at exit: what is in flight was already counted as
        abandoned, so it is left as it is."""
        for conn in list(self.conns):
            conn.close(report=False)
        self.conns, self.idle = [], []

    def forget(self) -> list[Job]:
        """In a forked child: drop the parent's connections and jobs; return the jobs."""
        jobs = list(self.queue)
        self.queue.clear()
        for conn in self.conns:
            jobs.extend(conn.inflight)
            conn.forget()
        self.conns, self.idle = [], []
        self.resolving = False
        self.active = 0
        self.delivered = self.failed = self.retried = 0
        self.answered_4xx = self.answered_5xx = 0
        return jobs

    def in_flight(self) -> int:
        return sum(len(c.inflight) for c in self.conns)

    def counters(self) -> dict[str, int]:
        return {
            "queued": len(self.queue),
            "in_flight": self.in_flight(),
            "delivered": self.delivered,
            "failed": self.failed,
            "dropped": 0,
            "retried": self.retried,
            "answered_4xx": self.answered_4xx,
            "answered_5xx": self.answered_5xx,
        }


def _reason(error: BaseException) -> str:
    """The error's message without the "METHOD URL: " prefix the log line has already."""
    reason = str(error)
    head, sep, rest = reason.partition(": ")
    if sep and " " in head and "://" in head:
        reason = rest
    return reason or type(error).__name__


def _numeric_addresses(host: str, port: int) -> list[tuple[Any, ...]] | None:
    """getaddrinfo for an IP literal (no DNS involved), else None."""
    try:
        return socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_NUMERICHOST)
    except (socket.gaierror, UnicodeError, ValueError):
        return None
