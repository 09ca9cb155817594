"""The reactor: one thread polling file descriptors, running timers and calls posted from
other threads. It knows no HTTP.

Handlers are registered per descriptor with :meth:`Reactor.watch`; each has a ``deadline``
(monotonic seconds, ``inf`` for none) that the reactor checks without a timer per
handler: it sweeps the watched handlers when the soonest deadline it knows of has passed
and calls ``expired(now)`` on those that are due. The owner (the engine) runs once per
iteration through ``tick(now)``, which returns when it next wants to run (``inf``: only
when woken).
"""

from __future__ import annotations

import heapq
import itertools
import os
import select
import threading
from collections import deque
from collections.abc import Callable
from time import monotonic
from typing import Any, Protocol

from ..core.log import logger

READ = select.POLLIN
WRITE = select.POLLOUT
INF = float("inf")


class Watched(Protocol):
    """What a descriptor's handler offers the reactor."""

    #: When it must be told that time is up (monotonic seconds; ``inf`` for never).
    deadline: float

    def on_event(self, events: int) -> None:
        """The descriptor is ready for ``events`` (READ, WRITE, or error bits)."""

    def expired(self, now: float) -> None:
        """``deadline`` has passed."""

    def on_failure(self, error: BaseException) -> None:
        """``on_event`` or ``expired`` raised ``error`` (a bug): end cleanly."""


class Reactor:
    """A poll loop on its own daemon thread; every method but :meth:`post`, :meth:`wake`
    and :meth:`start` is for the reactor thread."""

    def __init__(self, tick: Callable[[float], float], name: str = "sendoff-engine") -> None:
        self.tick = tick
        self.name = name
        self.now = monotonic()
        #: Soonest deadline among the handlers (lowered by handlers as they set theirs).
        self.sweep_at = INF
        self.handlers: dict[int, Watched] = {}
        self.thread: threading.Thread | None = None
        self.running = False
        #: True while the loop waits in poll(); callers then wake it with a byte.
        self.sleeping = True
        self._calls: deque[tuple[Callable[..., Any], tuple[Any, ...]]] = deque()
        self._timers: list[tuple[float, int, Callable[..., Any], tuple[Any, ...]]] = []
        self._seq = itertools.count()
        self._lock = threading.Lock()
        self._poll = select.epoll() if hasattr(select, "epoll") else None
        self._fallback = select.poll() if self._poll is None else None
        self._wake_r, self._wake_w = os.pipe()
        os.set_blocking(self._wake_r, False)
        os.set_blocking(self._wake_w, False)
        self._register(self._wake_r, READ)

    def __repr__(self) -> str:
        return f"<Reactor {self.name} handlers={len(self.handlers)} running={self.running}>"

    # -- any thread ---------------------------------------------------------------------
    def start(self) -> None:
        """Start the loop thread (once)."""
        with self._lock:
            if self.thread is not None:
                return
            self.running = True
            self.thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self.thread.start()

    def wake(self) -> None:
        """Make the loop run an iteration soon."""
        if self.thread is not None:  # a loop that stopped stays "sleeping": woken, it restarts
            self.sleeping = False
        try:
            os.write(self._wake_w, b"\0")
        except (BlockingIOError, InterruptedError):
            pass  # the pipe is full: the loop is woken already
        except OSError:
            pass  # closed by stop(): nothing left to wake

    def post(self, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the loop thread."""
        self._calls.append((function, args))
        if self.sleeping:
            self.wake()

    def on_loop_thread(self) -> bool:
        """True when called from the loop thread itself."""
        return self.thread is threading.current_thread()

    def stop(self, timeout: float = 1.0) -> None:
        """Stop the loop and wait for its thread (at most ``timeout`` seconds)."""
        thread = self.thread
        if thread is None:
            return
        self.running = False
        self.wake()
        if thread is not threading.current_thread():
            thread.join(timeout)
        self.thread = None
        self.sleeping = True

    def close(self) -> None:
        """Release the poller and the wake-up pipe (after :meth:`stop`, or in a forked
        child, where the parent's thread does not exist)."""
        if self._poll is not None:
            self._poll.close()
        for fd in (self._wake_r, self._wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def timer_arguments(self) -> list[Any]:
        """The arguments of every timer not yet run (what a forked child inherited)."""
        return [arg for _, _, _, args in self._timers for arg in args]

    # -- loop thread --------------------------------------------------------------------
    def watch(self, fd: int, handler: Watched, events: int) -> None:
        """Poll ``fd`` for ``events`` on behalf of ``handler`` (or change what is polled)."""
        if fd in self.handlers:
            self._modify(fd, events)
        else:
            self._register(fd, events)
            self.handlers[fd] = handler
        if handler.deadline < self.sweep_at:
            self.sweep_at = handler.deadline

    def unwatch(self, fd: int) -> None:
        """Stop polling ``fd`` (before it is closed)."""
        if self.handlers.pop(fd, None) is not None:
            try:
                self._unregister(fd)
            except (OSError, ValueError):
                pass

    def call_later(self, delay: float, function: Callable[..., Any], *args: Any) -> None:
        """Run ``function(*args)`` on the loop thread after ``delay`` seconds."""
        heapq.heappush(self._timers, (monotonic() + delay, next(self._seq), function, args))

    def _run(self) -> None:
        try:
            self._loop()
        except BaseException:  # a bug: say so loudly; the owner restarts us on demand
            logger.critical("the sendoff delivery engine stopped on an error", exc_info=True)
            self.thread = None
            self.running = False
            self.sleeping = True

    def _loop(self) -> None:
        poll = self._poll.poll if self._poll is not None else self._poll_fallback
        handlers, calls, timers, tick = self.handlers, self._calls, self._timers, self.tick
        wake_fd = self._wake_r
        timeout = 0.0
        while self.running:
            events = poll(timeout)
            self.sleeping = False
            now = self.now = monotonic()
            for fd, mask in events:
                handler = handlers.get(fd)
                if handler is not None:
                    try:
                        handler.on_event(mask)
                    except Exception as exc:
                        self._failed(handler, exc)
                elif fd == wake_fd:
                    self._drain_wake_pipe()
            while calls:
                function, args = calls.popleft()
                self._call(function, args)
            while timers and timers[0][0] <= now:
                _, _, function, args = heapq.heappop(timers)
                self._call(function, args)
            if now >= self.sweep_at:
                self._sweep(now)
            wanted = tick(now)
            self.sleeping = True
            if calls:  # posted while we were busy: go round again at once
                timeout = 0.0
                continue
            soonest = min(wanted, self.sweep_at, timers[0][0] if timers else INF)
            timeout = -1.0 if soonest == INF else max(0.0, soonest - monotonic())

    def _poll_fallback(self, timeout: float) -> list[tuple[int, int]]:  # pragma: no cover
        assert self._fallback is not None
        return self._fallback.poll(None if timeout < 0 else timeout * 1000)

    def _drain_wake_pipe(self) -> None:
        try:
            while os.read(self._wake_r, 4096):
                pass
        except (BlockingIOError, InterruptedError):
            pass

    def _sweep(self, now: float) -> None:
        soonest = INF
        for handler in list(self.handlers.values()):
            if handler.deadline <= now:
                try:
                    handler.expired(now)
                except Exception as exc:
                    self._failed(handler, exc)
        for handler in self.handlers.values():  # expired() may have added or moved some
            if handler.deadline < soonest:
                soonest = handler.deadline
        self.sweep_at = soonest

    def _call(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        try:
            function(*args)
        except Exception:
            logger.error("sendoff engine: %r failed", function, exc_info=True)

    def _failed(self, handler: Watched, error: BaseException) -> None:
        logger.error("sendoff engine: error in %r", handler, exc_info=True)
        try:
            handler.on_failure(error)
        except Exception:
            logger.error("sendoff engine: could not end %r", handler, exc_info=True)

    def _register(self, fd: int, events: int) -> None:
        if self._poll is not None:
            self._poll.register(fd, events)
        else:  # pragma: no cover - not Linux
            assert self._fallback is not None
            self._fallback.register(fd, events)

    def _modify(self, fd: int, events: int) -> None:
        if self._poll is not None:
            self._poll.modify(fd, events)
        else:  # pragma: no cover - not Linux
            assert self._fallback is not None
            self._fallback.modify(fd, events)

    def _unregister(self, fd: int) -> None:
        if self._poll is not None:
            self._poll.unregister(fd)
        else:  # pragma: no cover - not Linux
            assert self._fallback is not None
            self._fallback.unregister(fd)
