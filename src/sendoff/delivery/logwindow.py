"""Log lines that cannot flood: at most one per window for each origin and kind.

Under a sustained failure (a dead origin, a full queue, a receiver answering 503) every
request would otherwise log a line of its own. A :class:`LogWindow` logs the first line
at once, counts the like ones that follow within ``every`` seconds, and sums them up in
one line when the window has passed (:meth:`LogWindow.report`).
"""

from __future__ import annotations

import threading

from ..core.log import logger

#: Seconds between two lines of the same kind about the same origin.
LOG_EVERY = 10.0


class LogWindow:
    """Rate-limits one kind of warning about one origin; thread-safe."""

    __slots__ = ("_lock", "every", "last", "latest", "missed")

    def __init__(self, every: float | None = None) -> None:
        self.every = LOG_EVERY if every is None else every
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
        logger.warning("%s", text)

    def report(self, now: float, origin: str) -> None:
        """Sum up the lines held back, once their window has passed."""
        with self._lock:
            if not self.missed or now - self.last < self.every:
                return
            self.last = now
            missed, self.missed = self.missed, 0
            latest = self.latest
        logger.warning(
            "%s; %d more request(s) to %s ended like it in the last %.0f s",
            latest, missed, origin, self.every,
        )

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
