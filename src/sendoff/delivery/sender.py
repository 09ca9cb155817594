"""The Sender: the queue-side of the engine for one set of FireAndForget settings.

Clients with equal settings share a Sender, so its per-origin pools (and their
keep-alive connections) are reused even by code that makes a new client per request,
as the Kohana seed does. ``submit`` is the caller's whole cost of a fire: one receipt,
one deque append, and a wake-up of the engine only if it sleeps with a free connection.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from ..core.errors import QueueFull
from ..core.log import logger
from .pool import Pool
from .receipt import Receipt

if TYPE_CHECKING:
    from ..events.lifecycle import Transaction
    from ..http.models import PreparedRequest
    from ..http.url import URL
    from .engine import Engine

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


class Sender:
    """Per-origin pools and the bounded queue in front of them."""

    def __init__(self, engine: Engine, settings: Settings) -> None:
        self.engine = engine
        self.settings = settings
        self.max_queue = settings.max_queue
        self.pools: dict[tuple[str, str, int], Pool] = {}
        self.pendings: list[deque[Receipt]] = []
        self.lock = threading.Lock()
        self.active = 0  # taken from a queue and not yet settled (engine thread only)
        self.abandoned = 0
        self._burst = 0  # requests dropped since the queue was last found full

    def __repr__(self) -> str:
        return f"<Sender {self.settings} queued={self.queued()}>"

    # -- the caller's side -------------------------------------------------------------------
    def submit(
        self,
        url: URL,
        wire: bytes,
        timeout: float,
        txn: Transaction | None = None,
        prepared: PreparedRequest | None = None,
    ) -> Receipt:
        """Queue ``wire`` for ``url``'s origin and return its receipt at once."""
        pool = self.pools.get(url.origin) or self.pool_for(url)
        receipt = Receipt(wire, pool, timeout)
        if txn is not None:
            assert prepared is not None
            receipt.attach(txn, prepared)
        pending = pool.pending
        if len(pending) >= self.max_queue or (
            len(self.pendings) > 1 and self.queued() >= self.max_queue
        ):
            if not self._make_room(pool, receipt):
                return receipt
        elif self._burst:
            self._end_burst()
        pending.append(receipt)
        if pool.accepting:
            engine = self.engine
            engine.ready.append(pool)
            if engine.sleeping:
                engine.wake()
        elif not len(pending) & 0x3FF:
            self.engine.check_fork()  # a fork that bypassed os.register_at_fork
        return receipt

    def pool_for(self, url: URL) -> Pool:
        """The pool of ``url``'s origin, made on first use."""
        key = url.origin
        pool = self.pools.get(key)
        if pool is None:
            with self.lock:
                pool = self.pools.get(key)
                if pool is None:
                    pool = Pool(self, url)
                    self.pendings.append(pool.pending)
                    self.pools[key] = pool
        return pool

    def queued(self) -> int:
        """Requests waiting for a connection, every origin together."""
        return sum(map(len, self.pendings))

    def _make_room(self, pool: Pool, receipt: Receipt) -> bool:
        """The queue is full: apply ``on_full``; True if the request may be queued now."""
        policy = self.settings.on_full
        if policy == "block" and self._wait_for_room(receipt.timeout):
            return True
        error = QueueFull(
            f"{receipt.method} {receipt.url}: the fire-and-forget queue is full "
            f"(max_queue={self.max_queue}, on_full={policy!r})"
        )
        with self.lock:
            pool.dropped += 1
            self._burst += 1
            first = self._burst == 1
        if first:
            logger.warning(
                "fire-and-forget queue full (max_queue=%d, on_full=%r): dropping requests "
                "to %s until there is room",
                self.max_queue, policy, pool.label,
            )
        if policy == "raise":
            raise error
        if receipt.txn is not None:
            self.engine.post(self.engine.dropped, receipt, error)
        else:
            receipt.settle(None, error)
        return False

    def _end_burst(self) -> None:
        with self.lock:
            count, self._burst = self._burst, 0
        if count:
            logger.warning(
                "fire-and-forget queue has room again; %d request(s) were dropped", count
            )

    def _wait_for_room(self, timeout: float) -> bool:
        engine = self.engine
        deadline = time.monotonic() + timeout
        with engine.cond:
            engine.blocked += 1
            try:
                while self.queued() >= self.max_queue:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        return False
                    engine.cond.wait(min(left, 0.25))
            finally:
                engine.blocked -= 1
        return True

    # -- reporting -----------------------------------------------------------------------------
    def outstanding(self) -> int:
        """Requests queued or in the engine's hands (exact on the engine thread)."""
        return self.queued() + self.active

    def counters(self) -> dict[str, Any]:
        origins = {pool.label: pool.counters() for pool in list(self.pools.values())}
        return {"origins": origins, "abandoned": self.abandoned}

    def reset_after_fork(self) -> list[Receipt]:
        """In a forked child: forget the parent's work; return the receipts it held."""
        self.lock = threading.Lock()
        self.active = 0
        self.abandoned = 0
        self._burst = 0
        inherited: list[Receipt] = []
        for pool in self.pools.values():
            inherited.extend(pool.reset_after_fork())
        return inherited
