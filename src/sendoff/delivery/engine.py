"""The engine: the process's one delivery loop, and the owner of every sender and pool.

Ownership is a tree, as in urllib3 (PoolManager -> pool -> connection): the engine runs
a :class:`~.reactor.Reactor` (poll, timers, wake-up; no HTTP) and owns the senders;
each sender's per-origin :class:`~.pool.Pool` owns its queue, counters and connections;
each :class:`~.connection.Connection` reports to its pool. Callers only append to a
sender's inbox; once per loop iteration the engine sorts the inboxes into the pools.

The thread starts at the first fire (never at import). At interpreter exit the queue
drains for at most ``exit_timeout`` seconds and what is left is reported. After
``os.fork()`` the child gets an engine of its own; the parent's queued requests stay with
the parent, which sends them.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import sys
import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from ..core import errors
from ..core.log import logger
from ..events.lifecycle import SEND
from ..transports.tls import ssl_context
from .job import Job
from .logwindow import BURST
from .pool import COUNTERS, Pool
from .reactor import INF, Reactor
from .sender import Sender, Settings

#: Seconds between the engine's upkeep rounds (held-back log lines, idle pools).
UPKEEP_EVERY = 1.0
#: Seconds a pool with nothing to do is kept before it is freed with its sockets.
POOL_IDLE = 60.0


class ForkedAway(errors.SendoffError):
    """In a forked child: the request was queued by the parent, which sends it."""


class _Flush:
    __slots__ = ("event", "senders")

    def __init__(self, senders: list[Sender]) -> None:
        self.senders = senders
        self.event = threading.Event()


class Engine:
    """The process's delivery loop and the registry of its senders."""

    def __init__(self) -> None:
        self.senders: dict[Settings, Sender] = {}
        self._init_runtime()

    def _init_runtime(self) -> None:
        self.pid = os.getpid()
        # reentrant: a SIGTERM handler may drain while the main thread holds it; new in a
        # forked child, where a parent's thread may have held the old one
        self._lock = threading.RLock()
        self.loop = Reactor(self._tick)
        self.pool_pause = POOL_IDLE
        self._order: list[Sender] = list(self.senders.values())
        self._ready: dict[Pool, None] = {}
        self._flushes: list[_Flush] = []
        self._upkeep_at = INF
        self._resolver: ThreadPoolExecutor | None = None

    def __repr__(self) -> str:
        return f"<Engine pid={self.pid} senders={len(self.senders)} {self.loop!r}>"

    # -- senders (any thread) -------------------------------------------------------------
    def sender(self, settings: Settings) -> Sender:
        """The sender for ``settings`` (shared by every client that has them)."""
        sender = self.senders.get(settings)
        if sender is None:
            with self._lock:
                sender = self.senders.get(settings)
                if sender is None:
                    sender = self.senders[settings] = Sender(self, settings)
                    self._order = list(self.senders.values())
        return sender

    def wake(self) -> None:
        """Make the loop run an iteration soon, starting its thread if need be."""
        loop = self.loop
        if loop.thread is None or self.pid != os.getpid():
            self._start()
            loop = self.loop
        loop.wake()

    def check_fork(self) -> None:
        """Adopt this process if it was forked without the fork hooks running."""
        if self.pid != os.getpid():
            left = sum(s.outstanding() for s in self.senders.values())
            logger.warning(
                "sendoff: this process was forked without os.register_at_fork hooks (uWSGI "
                "without py-call-uwsgi-fork-hooks?); the %d request(s) queued here before it "
                "was noticed are left to the parent process", left,
            )
            self.forked()
            self.wake()

    def _start(self) -> None:
        if self.pid != os.getpid():
            self.forked()  # before taking a lock that a thread of the parent may hold
        with self._lock:
            if self.loop.thread is not None:
                return
            _warn_if_uwsgi_without_threads()
            self.loop.start()
            _register_at_exit()
        drain_on_sigterm()

    # -- the loop's iteration (engine thread) ---------------------------------------------
    def _tick(self, now: float) -> float:
        ready = self._ready
        for sender in self._order:
            inbox = sender.inbox
            if inbox:
                pools = sender.pools
                while inbox:
                    # left in the inbox (and counted there) until it has a pool
                    receipt, timeout, limit = inbox[0]
                    url = receipt.target
                    job = Job(receipt.wire, url, receipt, timeout, limit, receipt.txn,
                              receipt.prepared)
                    pool = pools.get(url.origin)
                    if pool is None:
                        try:
                            pool = self._new_pool(sender, job)  # may take a while (a CA file)
                        except Exception as exc:  # a pool that cannot be made: end this job
                            inbox.popleft()
                            sender.refuse(job, exc)
                            continue
                    inbox.popleft()
                    pool.add(job)
                    ready[pool] = None
            if sender.dropped_jobs or sender.ended_jobs:
                self._run_dropped(sender)
            if sender.blocked:
                with sender.room:
                    sender.room.notify_all()
        if ready:
            for pool in ready:
                pool.dispatch()
            ready.clear()
        if self._flushes:
            self._check_flushes()
        if now >= self._upkeep_at:
            self._upkeep(now)
        return self._upkeep_at

    def _new_pool(self, sender: Sender, job: Job) -> Pool:
        settings = sender.settings
        url = job.url
        pool = Pool(
            self,
            url,
            sender.tally,
            ssl_context=(
                ssl_context(settings.verify, settings.ca_bundle) if url.scheme == "https" else None
            ),
            connections=settings.connections_per_origin,
            pipeline=settings.pipeline,
            retries=settings.retries,
            limits=sender.limits,
        )
        pool.tag = sender
        sender.pools[url.origin] = pool
        if self._upkeep_at == INF:
            self._upkeep_at = self.loop.now + UPKEEP_EVERY
        return pool

    def _run_dropped(self, sender: Sender) -> None:
        """Jobs that ended in the caller's thread: those with listeners that ``on_full``
        dropped run their error and end listeners; those a ``before`` listener
        intercepted are counted."""
        while sender.dropped_jobs:
            job, dropped = sender.dropped_jobs.popleft()
            pool = sender.pools.get(job.url.origin) or self._new_pool(sender, job)
            pool.hold(job)
            pool.end(job, None, dropped, count=False)
        while sender.ended_jobs:
            job, answer, error = sender.ended_jobs.popleft()
            pool = sender.pools.get(job.url.origin) or self._new_pool(sender, job)
            pool.hold(job)
            pool.finish(job, answer, error)

    def _upkeep(self, now: float) -> None:
        """About once a second: held-back log lines, and idle pools freed."""
        alive = False
        for sender in self._order:
            sender.report(now)
            for pool in list(sender.pools.values()):
                pool.report(now)
                if pool.unused(now, self.pool_pause):
                    sender.retire(pool)
                else:
                    alive = True
            alive = alive or any(w.pending for w in sender.full_logs.values())
        BURST.report(now)
        self._upkeep_at = now + UPKEEP_EVERY if alive or BURST.pending else INF

    # -- what pools ask of their owner (engine thread) ------------------------------------
    def resolve(self, pool: Pool) -> None:
        """Look ``pool``'s host up on a resolver thread; answer through pool.resolved()."""
        if self._resolver is None:
            self._resolver = ThreadPoolExecutor(2, thread_name_prefix="sendoff-dns")
        future = self._resolver.submit(
            socket.getaddrinfo, pool.host, pool.port, type=socket.SOCK_STREAM
        )
        loop = self.loop

        def answered(done: Future[list[tuple[Any, ...]]]) -> None:
            error = done.exception()
            loop.post(pool.resolved, None if error else done.result(), error)

        future.add_done_callback(answered)

    def reroute(self, pool: Pool, job: Job, delay: float) -> None:
        """A listener sent ``job`` again (a retry, a redirect): prepare it anew and queue
        it in the pool of wherever it now goes."""
        txn = job.txn
        assert txn is not None
        while True:
            try:
                prepared = txn.request.prepare()
            except Exception as exc:
                if txn.failed(exc) is SEND:
                    continue
                error = txn.exception
                pool.finish(job, None if error is not None else txn.response, error)
                return
            break
        request = txn.request
        job.wire = prepared.wire()
        job.url = prepared.url
        job.prepared = prepared
        job.tries = 0
        job.timeout = request.timeout() or txn.client.timeout
        job.limit = request.deadline() or job.limit
        sender: Sender = pool.tag
        target = sender.pools.get(prepared.url.origin) or self._new_pool(sender, job)
        pool.release(job)
        target.hold(job)
        if delay:
            self.loop.call_later(delay, target.retry, job)
        else:
            target.retry(job)

    # -- flush, stats, exit (any thread) --------------------------------------------------
    def flush(self, senders: list[Sender] | None, timeout: float | None) -> bool:
        """Wait until the senders' requests have all ended; False if ``timeout`` passed."""
        if self.pid != os.getpid():
            self.check_fork()
        chosen = list(self.senders.values()) if senders is None else senders
        if self.loop.thread is None and not any(s.outstanding() for s in chosen):
            return True  # never started: nothing was ever handed over
        # Only the engine thread sees exact counts (a job leaving an inbox for its pool is
        # in neither for a moment): it decides when the flush is done.
        if self.loop.on_loop_thread():
            raise RuntimeError("flush() cannot wait on the engine thread (from a listener)")
        waiter = _Flush(chosen)
        with self._lock:
            self._flushes.append(waiter)
        self.wake()
        done = waiter.event.wait(timeout)
        if not done:
            with self._lock:
                if waiter in self._flushes:
                    self._flushes.remove(waiter)
        return done

    def _check_flushes(self) -> None:
        with self._lock:
            for waiter in list(self._flushes):
                if not any(s.outstanding() for s in waiter.senders):
                    self._flushes.remove(waiter)
                    waiter.event.set()

    def stats(self) -> dict[str, Any]:
        """Counters of every sender, per origin and in total."""
        if self.pid != os.getpid():
            self.check_fork()
        totals = dict.fromkeys(COUNTERS, 0)
        origins: dict[str, dict[str, int]] = {}
        abandoned = 0
        for sender in list(self.senders.values()):
            counters = sender.counters()
            abandoned += counters["abandoned"]
            for key, value in counters["retired"].items():
                totals[key] += value
            for label, values in counters["origins"].items():
                merged = origins.setdefault(label, dict.fromkeys(COUNTERS, 0))
                for key, value in values.items():
                    merged[key] += value
                    totals[key] += value
        return {**totals, "abandoned": abandoned, "origins": origins}

    def at_exit(self) -> None:
        """Drain for at most the senders' ``exit_timeout``, then report what is left."""
        if self.pid != os.getpid() or self.loop.thread is None:
            return
        senders = list(self.senders.values())
        timeout = max((s.settings.exit_timeout for s in senders), default=0.0)
        if not self.flush(None, timeout):
            left: dict[str, int] = {}
            for sender in senders:
                for receipt, _, _ in list(sender.inbox):
                    label = receipt.target.origin_text
                    left[label] = left.get(label, 0) + 1
                for pool in list(sender.pools.values()):
                    count = len(pool.queue) + pool.active
                    if count:
                        left[pool.label] = left.get(pool.label, 0) + count
                sender.abandoned += sender.outstanding()
            total = sum(left.values())
            logger.warning(
                "sendoff: exiting with %d request(s) undelivered after %.1f s (%s); "
                "they are abandoned",
                total, timeout, ", ".join(f"{k}: {v}" for k, v in sorted(left.items())),
            )
        self.stop()

    def stop(self) -> None:
        """Stop the loop and close every connection (used at exit)."""
        loop = self.loop
        if loop.thread is None:
            return
        loop.stop()
        for sender in list(self.senders.values()):
            for pool in list(sender.pools.values()):
                pool.close_all()

    def forked(self) -> None:
        """Become this (child) process's engine: the parent's work stays the parent's,
        and the receipts the child inherited for it end with :class:`ForkedAway`."""
        inherited: list[Job] = []
        error = ForkedAway("queued before fork(); the parent process sends it")
        for sender in self.senders.values():
            for queued, _, _ in sender.inbox:
                queued.settle(None, error)
            sender.inbox.clear()
            inherited.extend(job for job, _ in sender.dropped_jobs)
            sender.dropped_jobs.clear()
            for pool in sender.pools.values():
                inherited.extend(pool.forget())
            sender.pools.clear()
            sender.tally.queued = sender.tally.active = 0
            sender.abandoned = 0
            sender.reset_after_fork()
        inherited.extend(a for a in self.loop.timer_arguments() if isinstance(a, Job))
        self.loop.close()
        self._init_runtime()
        for job in inherited:
            receipt = job.receipt() if job.receipt is not None else None
            if receipt is not None:
                receipt.settle(None, error)


_engine: Engine | None = None
_engine_lock = threading.Lock()
_exit_registered = False


def current_engine() -> Engine | None:
    """The process's engine if one was made, without making one."""
    return _engine


def get_engine() -> Engine:
    """The process's engine (created on first use; its thread starts at the first fire)."""
    global _engine
    engine = _engine
    if engine is None:
        with _engine_lock:
            if _engine is None:
                _engine = Engine()
            engine = _engine
    return engine


def _after_fork_in_child() -> None:
    engine = _engine
    if engine is not None and engine.pid != os.getpid():
        engine.forked()


def _register_at_exit() -> None:
    global _exit_registered
    if not _exit_registered:
        _exit_registered = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    engine = _engine
    if engine is not None:
        engine.at_exit()


_sigterm_lock = threading.Lock()
_previous_sigterm: Any = None
_sigterm_installed = False


def drain_on_sigterm() -> bool:
    """Make SIGTERM run the same bounded drain as a normal exit, then do what it did
    before (the server's handler, or the default: the process ends by the signal).

    Plain ``python`` and uvicorn end on SIGTERM without running exit hooks, so requests
    still queued would vanish without a word. Installed from the main thread only (as
    Python requires), when a client is made or the engine starts; a handler already
    there is called first, and an ignored SIGTERM stays ignored. True if installed.
    """
    global _previous_sigterm, _sigterm_installed
    if threading.current_thread() is not threading.main_thread():
        return False
    with _sigterm_lock:
        if _sigterm_installed:
            return True
        try:
            previous = signal.getsignal(signal.SIGTERM)
            if previous is signal.SIG_IGN:
                return False
            signal.signal(signal.SIGTERM, _on_sigterm)
        except (ValueError, OSError):  # not the main interpreter, or no such signal
            return False
        _previous_sigterm = previous
        _sigterm_installed = True
        return True


def _on_sigterm(signum: int, frame: Any) -> None:
    previous = _previous_sigterm
    if callable(previous):
        previous(signum, frame)  # the server starts its graceful shutdown
    engine = _engine
    if engine is not None and engine.pid == os.getpid():
        engine.at_exit()  # bounded; what is left is logged and counted as abandoned
    if not callable(previous):  # the default: end by the signal, as before
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        signal.raise_signal(signal.SIGTERM)


def _warn_if_uwsgi_without_threads() -> None:
    """uWSGI runs no Python thread unless told to: the engine would never send."""
    uwsgi = sys.modules.get("uwsgi")
    if uwsgi is None:
        return
    opt = getattr(uwsgi, "opt", {})

    def on(name: str) -> bool:
        value = opt.get(name, False)
        if isinstance(value, bytes):
            value = value.decode("latin-1")
        if isinstance(value, str):
            return value.lower() not in ("", "0", "false", "no", "off")
        return bool(value)

    if not (on("enable-threads") or on("threads")):
        logger.warning(
            "sendoff: uWSGI is running without threads, so the fire-and-forget engine thread "
            "cannot run and requests would only queue. Start uWSGI with --enable-threads "
            "(or --threads N), or use FireAndForget(mode='process')."
        )


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
