"""Log lines that cannot flood: at most one per window for each origin and kind, and at
most :data:`BURST_LINES` per window for all origins together.

Under a sustained failure (a dead origin, a full queue, a receiver answering 503) every
request would otherwise log a line of its own. A :class:`LogWindow` logs the first line
at once, counts the like ones that follow within ``every`` seconds, and sums them up in
one line when the window has passed (:meth:`LogWindow.report`). When many origins fail at
once (the network is down, thousands of webhook receivers), :data:`BURST` lets the lines
of the first :data:`BURST_LINES` through and sums up the rest in one line per window.
"""

from __future__ import annotations

import logging
import os
import threading

from ..core.log import logger

#: Seconds between two lines of the same kind about the same origin.
LOG_EVERY = 10.0
#: Lines that all origins together may log in one window of LOG_EVERY seconds.
BURST_LINES = 20


class Burst:
    """Caps the lines that all :class:`LogWindow` objects log together: in each window of
    ``every`` seconds the first ``limit`` go out; the rest are counted and summed up in
    one line (with the last of them) when the window has passed; thread-safe."""

    __slots__ = ("_lock", "every", "held", "latest", "limit", "start", "used")

    def __init__(self, limit: int = BURST_LINES, every: float = LOG_EVERY) -> None:
        self.limit = limit
        self.every = every
        self._restart(float("-inf"))
        self._lock = threading.Lock()

    def admit(self, now: float, text: str) -> bool:
        """True if ``text`` may be logged now; else it is counted for the summing up."""
        with self._lock:
            summary = self._roll(now)
            admitted = self.used < self.limit
            if admitted:
                self.used += 1
            else:
                self.held += 1
                self.latest = text
        if summary:
            logger.warning("%s", summary)
        return admitted

    def warn(self, now: float, text: str, to: logging.Logger = logger) -> None:
        """Log ``text`` as a warning on ``to`` if :meth:`admit` lets it through."""
        if self.admit(now, text):
            to.warning("%s", text)

    def report(self, now: float) -> None:
        """Sum up the lines held back, once their window has passed."""
        with self._lock:
            summary = self._roll(now) if self.held else None
        if summary:
            logger.warning("%s", summary)

    def _roll(self, now: float) -> str | None:
        """With the lock held: start a new window if this one has passed; the line that
        sums up the old one, if it held any back."""
        if now - self.start < self.every:
            return None
        summary = None
        if self.held:
            summary = (
                f"{self.held} more warning line(s) about other origins held back in the last"
                f" {self.every:g} s (stats() counts every request by origin); the last:"
                f" {self.latest}"
            )
        self._restart(now)
        return summary

    def _restart(self, start: float) -> None:
        self.start, self.used, self.held, self.latest = start, 0, 0, ""

    def clear(self) -> None:
        """Forget the current window and what it held back (a test starting afresh)."""
        with self._lock:
            self._restart(float("-inf"))

    @property
    def pending(self) -> bool:
        """True while lines are held back."""
        return self.held > 0


#: The one :class:`Burst` of the process.
BURST = Burst()


def _after_fork_in_child() -> None:
    # a thread of the parent may have held the lock at the fork: the child's is new
    BURST._lock = threading.Lock()
    BURST.clear()


os.register_at_fork(after_in_child=_after_fork_in_child)


class LogWindow:
    """Rate-limits one kind of warning about one origin; thread-safe. Its lines go to
    ``to`` (the component's logger; ``sendoff`` by default)."""

    __slots__ = ("_lock", "every", "last", "latest", "missed", "to")

    def __init__(self, every: float | None = None, to: logging.Logger = logger) -> None:
        self.every = LOG_EVERY if every is None else every
        self.to = to
        self.last = float("-inf")
        self.missed = 0
        self.latest = ""
        self._lock = threading.Lock()

    def line(self, now: float, text: str) -> None:
        """Log ``text`` now, or count it if a line of this kind went out less than
        ``every`` seconds ago."""
        with self._lock:
            if now - self.last < self.every:
                self.missed += 1
                self.latest = text
                return
            self.last = now
            missed, self.missed = self.missed, 0
        if missed:
            text += f" (and {missed} more like it in the last {self.every:.0f} s)"
        BURST.warn(now, text, self.to)

    def report(self, now: float, origin: str) -> None:
        """Sum up the lines held back, once their window has passed."""
        with self._lock:
            if not self.missed or now - self.last < self.every:
                return
            self.last = now
            missed, self.missed = self.missed, 0
            latest = self.latest
        text = (
            f"{latest}; {missed} more request(s) to {origin} ended like it in the last"
            f" {self.every:.0f} s"
        )
        BURST.warn(now, text, self.to)

    @property
    def pending(self) -> bool:
        """True while lines are held back."""
        return self.missed > 0


def log_failure(method: str, url: str, error: BaseException) -> None:
    """The one log line of a request that failed outside the engine (the ``inline`` and
    ``process`` modes): method, URL (no credentials), reason."""
    reason = str(error)
    prefix = f"{method} {url}: "
    if reason.startswith(prefix):
        reason = reason[len(prefix) :]
    logger.warning("%s %s failed: %s", method, url, reason or type(error).__name__)
