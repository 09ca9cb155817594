"""Per-origin limits for Celery workers: a concurrency cap and a circuit breaker per origin.

Two implementations of :class:`OriginLimits`:

* :class:`RedisLimits` shares both across every worker process on every machine, through a
  Redis server (by default the broker's, when the broker is Redis). Each limit is one or
  two keys per origin, changed by small Lua scripts (atomic) on Redis' own clock (no
  clock skew between machines):

  - ``{prefix}slots:{origin}``: a sorted set holding one member per request slot in use,
    scored by when it expires. A worker takes up to ``want`` slots at once (``cap`` minus
    the members that have not expired), keeps their scores fresh while it holds them and
    removes them when done. A plain ``INCR``/``DECR`` counter would leak the slots of a
    worker that was ``kill -9``\\ ed (nobody decrements) and a TTL on the whole key would
    never fire while other workers keep using the origin; a slot that is not refreshed
    expires on its own, ``slot_ttl`` seconds after its holder died.
  - ``{prefix}circuit:{origin}``: a hash ``failures`` (consecutive retried failures),
    ``open_until`` and ``cooldown`` (milliseconds, Redis time). Once ``failures`` reaches
    the threshold the circuit opens for ``cooldown`` (doubled on each reopening, up to
    ``longest``); when it has passed, one worker wins ``{prefix}probe:{origin}`` (``SET NX
    PX``) and sends one request, the others wait; a success closes the circuit.

  Every key has a TTL, so idle origins leave nothing behind.

* :class:`LocalLimits` keeps the same state in the worker process: the cap and the
  circuit hold **per worker process**. That is what a RabbitMQ broker gets unless
  ``register(app, limits="redis://...")`` names a Redis server to share them through.

A Redis server that cannot be reached does not stop delivery: the limits fall back to
the process's own (:class:`LocalLimits`) until it answers again, with a warning.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, Protocol

log = logging.getLogger("sendoff.celery")

#: seconds a slot outlives its last refresh (a killed worker's slots free after that)
SLOT_TTL = 6.0
#: seconds between two refreshes of the slots a worker holds
SLOT_REFRESH = SLOT_TTL / 3


@dataclass(frozen=True, slots=True)
class CircuitRule:
    """When an origin's circuit opens (``failures`` consecutive retried failures) and for
    how long: ``cooldown`` seconds, doubled each time it reopens, up to ``longest``."""

    failures: int = 5
    cooldown: float = 5.0
    longest: float = 300.0


Gate = Literal["closed", "open", "probe"]


class OriginLimits(Protocol):
    """The per-origin limits a worker asks before and after sending."""

    def gate(self, origin: str, rule: CircuitRule) -> tuple[Gate, float]:
        """``("closed", 0)``: send; ``("probe", 0)``: send one request (half-open);
        ``("open", seconds)``: send nothing for that long."""

    def record(self, origin: str, rule: CircuitRule, succeeded: bool, failures: int) -> float:
        """Count attempts that ended: ``succeeded`` if any got a verdict other than
        "retry" (the origin works), then ``failures`` retried failures after the last of
        them. Returns the seconds the circuit is now open (0: closed)."""

    def acquire(self, origin: str, want: int, cap: int) -> list[str]:
        """Take up to ``want`` request slots of ``origin`` (at most ``cap`` in use in
        all); the slots taken (maybe none)."""

    def refresh(self, origin: str, slots: list[str]) -> None:
        """Keep held slots from expiring."""

    def release(self, origin: str, slots: list[str]) -> None:
        """Give slots back."""


class _Circuit:
    __slots__ = ("cooldown", "failures", "open_until", "probing")

    def __init__(self) -> None:
        self.failures = 0
        self.open_until = 0.0
        self.cooldown = 0.0
        self.probing = 0.0  # until when a probe is out


class LocalLimits:
    """:class:`OriginLimits` held in this process (per worker process)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self._lock = threading.Lock()
        self._used: dict[str, int] = {}
        self._circuits: dict[str, _Circuit] = {}
        self._seq = 0

    def gate(self, origin: str, rule: CircuitRule) -> tuple[Gate, float]:
        with self._lock:
            state = self._circuits.get(origin)
            if state is None or state.failures < rule.failures:
                return "closed", 0.0
            now = self.clock()
            if state.open_until > now:
                return "open", state.open_until - now
            if state.probing > now:
                return "open", min(1.0, state.probing - now)
            state.probing = now + max(rule.cooldown, 1.0)
            return "probe", 0.0

    def record(self, origin: str, rule: CircuitRule, succeeded: bool, failures: int) -> float:
        with self._lock:
            state = self._circuits.setdefault(origin, _Circuit())
            now = self.clock()
            if succeeded:
                state.failures = 0
                state.cooldown = 0.0
                state.open_until = 0.0
                state.probing = 0.0
            state.failures += failures
            if state.failures >= rule.failures and failures and state.open_until <= now:
                longer = state.cooldown * 2 if state.cooldown else rule.cooldown
                state.cooldown = min(rule.longest, longer)
                state.open_until = now + state.cooldown
                state.probing = 0.0
                log.warning(
                    "sendoff worker: %s failed %d times in a row; its messages wait %.0f s",
                    origin, state.failures, state.cooldown,
                )
            if not state.failures:
                del self._circuits[origin]
            return max(0.0, state.open_until - now)

    def acquire(self, origin: str, want: int, cap: int) -> list[str]:
        with self._lock:
            used = self._used.get(origin, 0)
            grant = max(0, min(want, cap - used))
            self._used[origin] = used + grant
            first = self._seq
            self._seq += grant
        return [f"local:{n}" for n in range(first, first + grant)]

    def refresh(self, origin: str, slots: list[str]) -> None:
        pass

    def release(self, origin: str, slots: list[str]) -> None:
        if not slots:
            return
        with self._lock:
            left = self._used.get(origin, 0) - len(slots)
            if left > 0:
                self._used[origin] = left
            else:
                self._used.pop(origin, None)


# KEYS: slots zset. ARGV: cap, ttl ms, members... Returns the members added.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local room = tonumber(ARGV[1]) - redis.call('ZCARD', KEYS[1])
local ttl = tonumber(ARGV[2])
local taken = {}
for i = 3, #ARGV do
  if #taken >= room then break end
  redis.call('ZADD', KEYS[1], now + ttl, ARGV[i])
  taken[#taken + 1] = ARGV[i]
end
if #taken > 0 then redis.call('PEXPIRE', KEYS[1], 2 * ttl) end
return taken
"""

# KEYS: slots zset. ARGV: ttl ms, members... Refreshes the members still held.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[1])
for i = 2, #ARGV do
  redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[i])
end
redis.call('PEXPIRE', KEYS[1], 2 * ttl)
return 1
"""

# KEYS: circuit hash, probe key. ARGV: threshold, probe ms.
# Returns {state, ms, failures}: state 0 closed, 1 open for ms, 2 probe granted.
_GATE = """
local failures = tonumber(redis.call('HGET', KEYS[1], 'failures') or '0')
if failures < tonumber(ARGV[1]) then return {0, 0, failures} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
if open_until > now then return {1, open_until - now, failures} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', tonumber(ARGV[2])) then return {2, 0, failures} end
local left = redis.call('PTTL', KEYS[2])
if left < 0 or left > 1000 then left = 1000 end
return {1, left, failures}
"""

# KEYS: circuit hash, probe key. ARGV: succeeded (0/1), failures, threshold, cooldown ms,
# longest ms. Returns {failures, ms open}.
_RECORD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local added = tonumber(ARGV[2])
if ARGV[1] == '1' then
  redis.call('DEL', KEYS[1], KEYS[2])
end
local failures = 0
if added > 0 then failures = redis.call('HINCRBY', KEYS[1], 'failures', added) end
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local longest = tonumber(ARGV[5])
if added > 0 and failures >= tonumber(ARGV[3]) and open_until <= now then
  local cooldown = tonumber(redis.call('HGET', KEYS[1], 'cooldown') or '0')
  if cooldown > 0 then cooldown = math.min(cooldown * 2, longest)
  else cooldown = tonumber(ARGV[4]) end
  open_until = now + cooldown
  redis.call('HSET', KEYS[1], 'cooldown', cooldown, 'open_until', open_until)
  redis.call('DEL', KEYS[2])
end
if failures > 0 then redis.call('PEXPIRE', KEYS[1], 2 * longest + 60000) end
local left = open_until - now
if left < 0 then left = 0 end
return {failures, left}
"""


class RedisLimits:
    """:class:`OriginLimits` shared by every worker through the Redis server at ``url``."""

    def __init__(
        self, url: str, *, prefix: str = "sendoff:", slot_ttl: float = SLOT_TTL
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.slot_ttl = slot_ttl
        self.local = LocalLimits()
        self._pid = -1
        self._client: Any = None
        self._scripts: dict[str, Any] = {}
        self._failures: dict[str, int] = {}  # what Redis last said, per origin
        self._seq = 0
        self._lock = threading.Lock()
        self._warned_at = 0.0
        self._holder = ""

    def __repr__(self) -> str:
        return f"<RedisLimits {self.prefix!r}>"

    def _redis(self) -> tuple[Any, dict[str, Any]]:
        if self._pid != os.getpid():  # made before the pool forked: this child's own
            import redis

            self._pid = os.getpid()
            self._client = redis.Redis.from_url(
                self.url, socket_timeout=5, socket_connect_timeout=5
            )
            self._scripts = {
                name: self._client.register_script(source)
                for name, source in (
                    ("acquire", _ACQUIRE), ("refresh", _REFRESH), ("gate", _GATE),
                    ("record", _RECORD),
                )
            }
            self._holder = f"{os.uname().nodename}:{os.getpid()}:{os.urandom(3).hex()}"
        return self._client, self._scripts

    def _unreachable(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at > 30:
            self._warned_at = now
            log.warning(
                "sendoff worker: the Redis server holding the per-origin limits does not"
                " answer (%s); limits hold per worker process until it does", exc,
            )

    def _keys(self, origin: str) -> tuple[str, str, str]:
        p = self.prefix
        return f"{p}slots:{origin}", f"{p}circuit:{origin}", f"{p}probe:{origin}"

    def gate(self, origin: str, rule: CircuitRule) -> tuple[Gate, float]:
        import redis

        _, circuit, probe = self._keys(origin)
        try:
            _, scripts = self._redis()
            state, ms, failures = scripts["gate"](
                keys=[circuit, probe], args=[rule.failures, int(max(rule.cooldown, 1.0) * 1000)]
            )
        except redis.RedisError as exc:
            self._unreachable(exc)
            return self.local.gate(origin, rule)
        if int(failures):  # a success of ours must then reset the shared count
            self._failures[origin] = int(failures)
        else:
            self._failures.pop(origin, None)
        state = int(state)
        if state == 0:
            return "closed", 0.0
        if state == 2:
            return "probe", 0.0
        return "open", int(ms) / 1000

    def record(self, origin: str, rule: CircuitRule, succeeded: bool, failures: int) -> float:
        import redis

        if not failures and self._failures.get(origin, 0) == 0:
            return 0.0  # a healthy origin: nothing to write
        _, circuit, probe = self._keys(origin)
        try:
            _, scripts = self._redis()
            count, ms = scripts["record"](
                keys=[circuit, probe],
                args=[
                    1 if succeeded else 0, failures, rule.failures,
                    int(rule.cooldown * 1000), int(rule.longest * 1000),
                ],
            )
        except redis.RedisError as exc:
            self._unreachable(exc)
            return self.local.record(origin, rule, succeeded, failures)
        self._failures[origin] = int(count)
        if not int(count):
            self._failures.pop(origin, None)
        return int(ms) / 1000

    def acquire(self, origin: str, want: int, cap: int) -> list[str]:
        import redis

        if want <= 0:
            return []
        slots, _, _ = self._keys(origin)
        try:
            _, scripts = self._redis()
            with self._lock:
                first = self._seq
                self._seq += want
            names = [f"{self._holder}:{n}" for n in range(first, first + want)]
            taken = scripts["acquire"](
                keys=[slots], args=[cap, int(self.slot_ttl * 1000), *names]
            )
        except redis.RedisError as exc:
            self._unreachable(exc)
            return self.local.acquire(origin, want, cap)
        return [t.decode() if isinstance(t, bytes) else str(t) for t in taken]

    def refresh(self, origin: str, slots: list[str]) -> None:
        import redis

        mine = [s for s in slots if not s.startswith("local:")]
        if not mine:
            return
        key, _, _ = self._keys(origin)
        try:
            _, scripts = self._redis()
            scripts["refresh"](keys=[key], args=[int(self.slot_ttl * 1000), *mine])
        except redis.RedisError as exc:
            self._unreachable(exc)

    def release(self, origin: str, slots: list[str]) -> None:
        import redis

        local = [s for s in slots if s.startswith("local:")]
        if local:
            self.local.release(origin, local)
        mine = [s for s in slots if not s.startswith("local:")]
        if not mine:
            return
        key, _, _ = self._keys(origin)
        try:
            client, _ = self._redis()
            client.zrem(key, *mine)
        except redis.RedisError as exc:  # they expire after slot_ttl
            self._unreachable(exc)
