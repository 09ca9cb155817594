"""Readiness polling: epoll where the system has it, poll(2) elsewhere."""

from __future__ import annotations

import select

READ = select.POLLIN
WRITE = select.POLLOUT


class Poller:
    """The few readiness calls the engine makes, over epoll or poll."""

    def __init__(self) -> None:
        if hasattr(select, "epoll"):
            self._epoll: select.epoll | None = select.epoll()
            self._poll = None
            self.register = self._epoll.register
            self.modify = self._epoll.modify
            self.unregister = self._epoll.unregister
        else:  # pragma: no cover - not Linux
            self._epoll = None
            self._poll = select.poll()
            self.register = self._poll.register  # type: ignore[assignment]
            self.modify = self._poll.modify  # type: ignore[assignment]
            self.unregister = self._poll.unregister  # type: ignore[assignment]

    def poll(self, timeout: float | None) -> list[tuple[int, int]]:
        """Ready (fd, events) pairs, waiting at most ``timeout`` seconds (None: forever)."""
        if self._epoll is not None:
            return self._epoll.poll(-1 if timeout is None else timeout)
        assert self._poll is not None  # pragma: no cover
        return self._poll.poll(None if timeout is None else timeout * 1000)  # pragma: no cover

    def close(self) -> None:
        if self._epoll is not None:
            self._epoll.close()
