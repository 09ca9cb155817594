"""The delivery engine: one background thread per process running a non-blocking loop.

The thread starts at the first fire (never at import). It polls every connection of
every pool, settles receipts, runs the lifecycle listeners of requests that have them
(``complete``, ``error``, ``end``: on this thread), retries, times out, and closes idle
connections. Callers never wait for it: they append to a pool's queue and write one byte
to its wake-up pipe only when it sleeps with a connection free.

At interpreter exit the queue drains for at most ``exit_timeout`` seconds and what is
left is reported. After ``os.fork()`` the child gets an engine of its own; the parent's
queued requests stay with the parent, which sends them.
"""

from __future__ import annotations

import atexit
import heapq
import itertools
import os
import random
import socket
import sys
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from time import monotonic
from typing import TYPE_CHECKING, Any

from ..core import errors
from ..core.log import logger
from ..events.lifecycle import SEND
from .connection import Connection
from .poller import READ, Poller
from .receipt import RETRIES, Receipt
from .sender import Sender, Settings

if TYPE_CHECKING:
    from ..http.models import Response
    from .pool import Pool
    from .receipt import RawResponse

#: Seconds between the first automatic connect retries (doubled each time, capped).
BACKOFF = 0.5
BACKOFF_MAX = 10.0


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
        self.lock = threading.Lock()
        self.cond = threading.Condition()
        self.blocked = 0  # callers waiting for room (on_full="block")
        self.sleeping = True  # the first wake() starts the thread
        self.running = False
        self.thread: threading.Thread | None = None
        self.ready: deque[Pool] = deque()  # pools that may have work for a free connection
        self.calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self.conns: set[Connection] = set()
        self.fds: dict[int, Connection] = {}
        self.timers: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self.flushes: list[_Flush] = []
        self.seq = itertools.count()
        self.now = monotonic()
        self.sweep_at = float("inf")
        self.poller = Poller()
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self.poller.register(self._wake_r, READ)
        self.resolver: ThreadPoolExecutor | None = None

    # -- senders --------------------------------------------------------------------------------
    def sender(self, settings: Settings) -> Sender:
        """The sender for ``settings`` (shared by every client that has them)."""
        sender = self.senders.get(settings)
        if sender is None:
            with self.lock:
                sender = self.senders.get(settings)
                if sender is None:
                    sender = self.senders[settings] = Sender(self, settings)
        return sender

    # -- waking and starting (any thread) -------------------------------------------------------
    def wake(self) -> None:
        """Make the loop run an iteration soon (start the thread if need be)."""
        self.sleeping = False
        if self.thread is None or self.pid != os.getpid():
            self._start()
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the pipe is full: the loop is woken already

    def post(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the engine thread."""
        self.calls.append((function, args))
        if self.sleeping:
            self.wake()

    def check_fork(self) -> None:
        """Adopt this process if it was forked without the fork hooks running."""
        if self.pid != os.getpid():
            left = sum(s.outstanding() for s in self.senders.values())
            logger.warning(
                "sendoff: this process was forked without os.register_at_fork hooks (uWSGI "
                "without py-call-uwsgi-fork-hooks?); the %d request(s) queued here before it "
                "was noticed are left to the parent process", left,
            )
            _after_fork_in_child()
            self.wake()

    def _start(self) -> None:
        if self.pid != os.getpid():
            self._forked()  # before taking a lock that a thread of the parent may hold
        with self.lock:
            if self.thread is not None:
                return
            _warn_if_uwsgi_without_threads()
            self.running = True
            self.thread = threading.Thread(target=self._run, name="sendoff-engine", daemon=True)
            self.thread.start()
            _register_at_exit()

    # -- the loop (engine thread) ---------------------------------------------------------------
    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:  # a bug: say so loudly, then let the next fire restart us
            logger.critical("the sendoff delivery engine stopped on an error", exc_info=True)
            self.thread = None
            self.sleeping = True

    def _loop(self) -> None:
        poll = self.poller.poll
        fds, ready, calls, timers = self.fds, self.ready, self.calls, self.timers
        wake_fd = self._wake_r
        timeout: float | None = 0.0
        while self.running:
            events = poll(timeout)
            self.sleeping = False
            now = self.now = monotonic()
            for fd, mask in events:
                conn = fds.get(fd)
                if conn is not None:
                    try:
                        conn.on_event(mask)
                    except Exception as exc:
                        self._broken(conn, exc)
                elif fd == wake_fd:
                    try:
                        while os.read(wake_fd, 4096):
                            pass
                    except (BlockingIOError, InterruptedError):
                        pass
            while calls:
                function, args = calls.popleft()
                self._call(function, args)
            while timers and timers[0][0] <= now:
                _, _, function, args = heapq.heappop(timers)
                self._call(function, args)
            if now >= self.sweep_at:
                self._sweep(now)
            while ready:
                ready.popleft().dispatch()
            if self.flushes:
                self._check_flushes()
            if self.blocked:
                with self.cond:
                    self.cond.notify_all()
            self.sleeping = True
            if ready or calls:
                timeout = 0.0
                continue
            wait = min(timers[0][0], self.sweep_at) if timers else self.sweep_at
            timeout = None if wait == float("inf") else max(0.0, wait - monotonic())

    def _call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            function(*args)
        except Exception:
            logger.error("sendoff engine: %r failed", function, exc_info=True)

    def _broken(self, conn: Connection, exc: Exception) -> None:
        logger.error("sendoff engine: error on %r", conn, exc_info=True)
        try:
            conn.abort(errors.ProtocolError, f"internal error: {exc!r}", resend=False)
        except Exception:
            logger.error("sendoff engine: could not abort %r", conn, exc_info=True)

    def _sweep(self, now: float) -> None:
        soonest = float("inf")
        for conn in list(self.conns):
            if conn.deadline <= now:
                conn.timed_out()
            elif conn.deadline < soonest:
                soonest = conn.deadline
        for conn in self.conns:  # timed_out() may have opened others
            soonest = min(soonest, conn.deadline)
        self.sweep_at = soonest + 0.005

    def watch(self, conn: Connection, events: int) -> None:
        """Poll ``conn`` for ``events`` (READ, WRITE or both)."""
        if conn.wants:
            self.poller.modify(conn.fd, events)
        else:
            self.poller.register(conn.fd, events)
            self.fds[conn.fd] = conn
        conn.wants = events
        if conn.deadline < self.sweep_at:
            self.sweep_at = conn.deadline

    def unwatch(self, conn: Connection) -> None:
        if conn.wants:
            try:
                self.poller.unregister(conn.fd)
            except (OSError, ValueError):
                pass
            self.fds.pop(conn.fd, None)
            conn.wants = 0

    def call_later(self, delay: float, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the engine thread after ``delay`` seconds."""
        heapq.heappush(self.timers, (monotonic() + delay, next(self.seq), function, args))

    def resolve(self, pool: Pool) -> None:
        """Look ``pool``'s host up on a resolver thread; answer through pool.resolved()."""
        if self.resolver is None:
            self.resolver = ThreadPoolExecutor(2, thread_name_prefix="sendoff-dns")
        future = self.resolver.submit(
            socket.getaddrinfo, pool.host, pool.port, type=socket.SOCK_STREAM
        )

        def answered(done: Future[list[tuple[Any, ...]]]) -> None:
            error = done.exception()
            self.post(pool.resolved, None if error else done.result(), error)

        future.add_done_callback(answered)

    # -- outcomes (engine thread) ---------------------------------------------------------------
    def complete(self, item: Receipt, result: RawResponse | Response) -> None:
        """A response arrived for ``item``."""
        txn = item.txn
        if txn is None:
            pool = item.pool
            pool.delivered += 1
            pool.sender.active -= 1
            item.settle(result, None)
            return
        assert not isinstance(result, tuple)
        result.request = txn.request
        self._resume(item, txn.succeeded(result))

    def fail(self, item: Receipt, exc: BaseException, *, connect_phase: bool = False) -> None:
        """``item`` could not be exchanged; retry the connect if allowed, else settle."""
        pool = item.pool
        tries = item.tries & RETRIES
        if (
            connect_phase
            and not isinstance(exc, errors.TLSError)
            and tries < pool.sender.settings.retries
        ):
            item.tries += 1
            pool.retried += 1
            delay = min(BACKOFF * 2**tries, BACKOFF_MAX) * random.uniform(0.8, 1.2)
            self.call_later(delay, self.requeue, item)
            return
        txn = item.txn
        if txn is None:
            self._finish(item, None, exc)
        else:
            self._resume(item, txn.failed(exc))

    def dropped(self, item: Receipt, error: BaseException) -> None:
        """A request with listeners that ``on_full`` dropped: run its error/end events."""
        assert item.txn is not None
        item.pool.sender.active += 1
        self._resume(item, item.txn.failed(error), counted=True)

    def _resume(self, item: Receipt, step: str, *, counted: bool = False) -> None:
        """Continue a request's lifecycle after its listeners ran: retry or settle."""
        txn = item.txn
        assert txn is not None
        while step is SEND:
            try:
                prepared = txn.request.prepare()
            except Exception as exc:
                step = txn.failed(exc)
                continue
            sender = item.pool.sender
            item.pool.retried += 1
            item.pool = sender.pool_for(prepared.url)
            item.wire = prepared.wire()
            item.prepared = prepared
            item.tries = 0
            item.timeout = txn.request.timeout() or txn.client.timeout
            if txn.retry_delay:
                self.call_later(txn.retry_delay, self.requeue, item)
            else:
                self.requeue(item)
            return
        error = txn.exception
        self._finish(item, None if error is not None else txn.response, error, counted=counted)

    def _finish(
        self,
        item: Receipt,
        result: RawResponse | Response | None,
        error: BaseException | None,
        *,
        counted: bool = False,
    ) -> None:
        pool = item.pool
        pool.sender.active -= 1
        if counted:
            pass
        elif error is None:
            pool.delivered += 1
        else:
            pool.failed += 1
            log_failure(item.method, item.url, error)
        item.settle(result, error)

    def requeue(self, item: Receipt) -> None:
        """Put ``item`` back at the end of its pool's queue (a retry)."""
        pool = item.pool
        pool.pending.append(item)
        pool.sender.active -= 1
        self.ready.append(pool)

    def error(self, item: Receipt, cls: type[errors.TransportError], reason: object) -> Any:
        """A ``cls`` error naming ``item``'s method and URL."""
        return cls(f"{item.method} {item.url}: {reason}")

    def count_outcome(self, pool: Pool, error: BaseException | None, method: str, url: str) -> None:
        """Count a request that ended in the caller's thread (intercepted by ``before``)."""
        if error is None:
            pool.delivered += 1
        else:
            pool.failed += 1
            log_failure(method, url, error)

    # -- flush, stats, exit ---------------------------------------------------------------------
    def flush(self, senders: list[Sender] | None, timeout: float | None) -> bool:
        """Wait until the senders' requests have all ended; False if ``timeout`` passed."""
        if self.pid != os.getpid():
            self.check_fork()
        chosen = list(self.senders.values()) if senders is None else senders
        if not any(s.queued() or s.active for s in chosen):
            return True
        if self.thread is threading.current_thread():
            raise RuntimeError("flush() cannot wait on the engine thread (from a listener)")
        waiter = _Flush(chosen)
        with self.lock:
            self.flushes.append(waiter)
        self.wake()
        done = waiter.event.wait(timeout)
        if not done:
            with self.lock:
                if waiter in self.flushes:
                    self.flushes.remove(waiter)
        return done

    def _check_flushes(self) -> None:
        with self.lock:
            for waiter in list(self.flushes):
                if not any(s.outstanding() for s in waiter.senders):
                    self.flushes.remove(waiter)
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
            for label, values in counters["origins"].items():
                merged = origins.setdefault(label, dict.fromkeys(COUNTERS, 0))
                for key, value in values.items():
                    merged[key] += value
                    totals[key] += value
        return {**totals, "abandoned": abandoned, "origins": origins}

    def at_exit(self) -> None:
        """Drain for at most the senders' ``exit_timeout``, then report what is left."""
        if self.pid != os.getpid() or self.thread is None:
            return
        senders = list(self.senders.values())
        timeout = max((s.settings.exit_timeout for s in senders), default=0.0)
        if not self.flush(None, timeout):
            left: dict[str, int] = {}
            for sender in senders:
                for pool in list(sender.pools.values()):
                    count = len(pool.pending) + pool.in_flight()
                    if count:
                        left[pool.label] = left.get(pool.label, 0) + count
                sender.abandoned += sender.outstanding()
            total = sum(s.outstanding() for s in senders)
            logger.warning(
                "sendoff: exiting with %d request(s) undelivered after %.1f s (%s); "
                "they are abandoned",
                total, timeout, ", ".join(f"{k}: {v}" for k, v in sorted(left.items())),
            )
        self.stop()

    def stop(self) -> None:
        """Stop the loop and close every connection (used at exit)."""
        thread = self.thread
        if thread is None:
            return
        self.running = False
        self.wake()
        if thread is not threading.current_thread():
            thread.join(1.0)
        self.thread = None
        self.sleeping = True
        for conn in list(self.conns):
            conn.close()

    def _forked(self) -> None:
        """Become this (child) process's engine: the parent's work stays the parent's."""
        inherited: list[Receipt] = []
        for sender in self.senders.values():
            inherited.extend(sender.reset_after_fork())
        for _, _, _, args in self.timers:
            inherited.extend(a for a in args if isinstance(a, Receipt))
        old = (self._wake_r, self._wake_w)
        self.poller.close()
        for fd in old:
            try:
                os.close(fd)
            except OSError:
                pass
        self._init_runtime()
        error = ForkedAway("queued before fork(); the parent process sends it")
        for receipt in inherited:
            receipt.settle(None, error)


COUNTERS = ("queued", "in_flight", "delivered", "failed", "dropped", "retried")


def log_failure(method: str, url: str, error: BaseException) -> None:
    """The one log line of a failed request: method, URL (no credentials), reason."""
    reason = str(error)
    prefix = f"{method} {url}: "
    if reason.startswith(prefix):
        reason = reason[len(prefix) :]
    logger.warning("%s %s failed: %s", method, url, reason or type(error).__name__)


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
        engine._forked()


def _register_at_exit() -> None:
    global _exit_registered
    if not _exit_registered:
        _exit_registered = True
        atexit.register(_at_exit)


def _at_exit() -> None:
    engine = _engine
    if engine is not None:
        engine.at_exit()


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
