"""The durable half of the outbox: one SQLite file, one row per message.

Guarantees
----------
* :meth:`Store.add` returns only after the message's row is **committed** (WAL; with
  ``durability="normal"`` a commit survives a crash or ``kill -9`` of the process, with
  ``"full"`` also a power loss). Concurrent callers share a transaction (group commit).
* A message is *claimed* with a lease: while the lease is valid no other claimer, in this
  process or another one on the same file, gets it. When the lease expires (its owner died)
  the row is claimable again. Claims are fair across origins (round robin) and can be capped
  per origin.
* Messages with the same ``ordering_key`` are claimable one at a time, in enqueue (commit)
  order: the next one becomes claimable only when the previous one is delivered or dead.
* Reads are batched (claim limits, list pages, purge and replay batches): memory does not
  grow with the number of rows.
* Every failure to store or read raises :class:`OutboxError` whose message names the cause
  (disk full, read-only, corrupt, locked, ...) and the file; a failed transaction leaves
  nothing behind, and the store works again once the cause is gone.

Statuses: ``pending`` (waiting for its next attempt, or queued behind an earlier message of
its ordering key), ``delivering`` (leased by a relay), ``delivered``, ``dead``.

The store never logs or formats URLs: :attr:`MessageStatus.url` and :attr:`Claimed.url` hold
the full URL (with any credentials) and are left out of ``repr``; redact before showing.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import random
import resource
import sqlite3
import threading
import time
import weakref
from collections.abc import Callable, Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, Literal, NamedTuple, TypedDict, TypeVar

from ..core.errors import OutboxError, OutboxFull
from ..core.seconds import is_seconds
from . import schedule as _schedule
from .schedule import DEFAULT_SCHEDULE

logger = logging.getLogger("sendoff.outbox")

T = TypeVar("T")

Status = Literal["pending", "delivering", "delivered", "dead"]
Durability = Literal["normal", "full"]
STATUSES: tuple[Status, ...] = ("pending", "delivering", "delivered", "dead")

#: ``PRAGMA application_id`` of an outbox file ("sndo").
APPLICATION_ID = 0x736E646F
#: The oldest SQLite library the store runs on: its statements need ``UPDATE ... FROM``
#: (3.33) and the JSON functions (built in since 3.38; compiled in by most older builds).
MIN_SQLITE = (3, 33, 0)
#: The most rows one claim, list page or batch touches.
MAX_BATCH = 1000
#: The largest request (wire bytes) a message may hold: SQLite's default length limit of
#: 10**9 bytes for a row, less room for its other columns.
MAX_WIRE = 10**9 - 2**20
_MAX_GROUP = 512  # at most this many writes share one transaction
_MAX_ERROR_TEXT = 2000
_AUTOCHECKPOINT_PAGES = 10_000  # about 40 MB of WAL when no relay claims (and checkpoints)
_CHECKPOINT_EVERY = 1.0  # seconds between the checkpoints claim() runs

# ---------------------------------------------------------------------------------------
# Schema. Each step runs once, in order, in one transaction with the version bump.
# Never edit a released step: add a new one.

_V1 = (
    """CREATE TABLE messages (
        seq INTEGER PRIMARY KEY,        -- commit order: FIFO per ordering key
        id TEXT NOT NULL,
        key TEXT,                       -- the caller's idempotency key; NULL: the id
        ordering_key TEXT,
        origin TEXT NOT NULL,           -- scheme://host:port
        method TEXT NOT NULL,
        url TEXT NOT NULL,              -- may hold credentials: never log it
        wire BLOB NOT NULL,
        timeout REAL NOT NULL,
        created_at REAL NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        round_start INTEGER NOT NULL DEFAULT 0,  -- attempts when the schedule (re)started
        next_attempt_at REAL NOT NULL,
        lease_owner TEXT,
        lease_expires REAL,
        status TEXT NOT NULL,
        last_status INTEGER,
        last_error TEXT,
        delivered_at REAL,
        schedule TEXT NOT NULL,         -- JSON list of delays in seconds
        claimable_at REAL,              -- when claim() may take the row; NULL: never
        blocked INTEGER                 -- ordered and unfinished: 0 head, 1 queued; else NULL
    )""",
    "CREATE UNIQUE INDEX messages_id ON messages(id)",
    # Each index an add() writes costs it about 4 us, so a new message (pending, no key, no
    # ordering key) touches only the table, messages_id and messages_due.
    "CREATE UNIQUE INDEX messages_key ON messages(key) WHERE key IS NOT NULL",
    # claim(): due rows per origin, and (skip scan) the origins with due rows
    "CREATE INDEX messages_due ON messages(origin, claimable_at) WHERE claimable_at IS NOT NULL",
    "CREATE INDEX messages_ordering ON messages(ordering_key, blocked, seq)"
    " WHERE blocked IS NOT NULL",
    # list()/stats()/release() for every status but pending (queries repeat the condition)
    "CREATE INDEX messages_status ON messages(status, id) WHERE status != 'pending'",
    f"PRAGMA application_id = {APPLICATION_ID}",
)

_V2 = (
    # how often a message was replayed (it keeps its id and key)
    "ALTER TABLE messages ADD COLUMN replays INTEGER NOT NULL DEFAULT 0",
    # purge(): delivered rows by age, without scanning the rest
    "CREATE INDEX messages_purge ON messages(delivered_at) WHERE status = 'delivered'",
)

#: ``MIGRATIONS[n]`` takes a file from ``user_version`` n to n + 1.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_V1, _V2)
SCHEMA_VERSION = len(MIGRATIONS)

# The row counter max_rows needs costs every add() a write: it is created (and filled) by the
# first Store opened with max_rows, and kept from then on.
_COUNTER = (
    "CREATE TABLE counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
    "INSERT INTO counters SELECT 'rows', count(*) FROM messages",
    "CREATE TRIGGER messages_count_add AFTER INSERT ON messages BEGIN"
    " UPDATE counters SET value = value + 1 WHERE name = 'rows'; END",
    "CREATE TRIGGER messages_count_remove AFTER DELETE ON messages BEGIN"
    " UPDATE counters SET value = value - 1 WHERE name = 'rows'; END",
)

_COLUMNS = (
    "id, coalesce(key, id), status, attempts, last_status, last_error, next_attempt_at, created_at,"
    " delivered_at, ordering_key, origin, method, url, lease_owner, lease_expires, replays"
)
# One claim reads the rows it takes in one step, as one JSON array: Python's sqlite3 lets go
# of the GIL at every step, and a step per row cost the relay its engine's share of the GIL
# (measured: 67 against 30 us per message claimed and finished, beside a thread doing I/O).
# Reals travel as exact text; wire bytes as hex, up to _INLINE_WIRE bytes: a larger one is
# read on its own step, so that a claim's array (the hex, then its copies in Python) stays
# a few MB and far below SQLite's string limit.
_INLINE_WIRE = 8192
_CLAIM_ROWS = (
    "SELECT json_group_array(json_array(seq, id, coalesce(key, id), method, url, origin,"
    f" CASE WHEN length(wire) <= {_INLINE_WIRE} THEN hex(wire) END,"
    " printf('%!.17g', timeout), ordering_key, attempts, round_start, schedule,"
    " printf('%!.17g', created_at), status, length(wire))) FROM messages"
    " WHERE seq IN (SELECT value FROM json_each(?))"
)


# ---------------------------------------------------------------------------------------
# Values


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store. ``origin`` is ``scheme://host:port`` (see :func:`origin_of`);
    ``wire`` the request bytes; ``key`` the idempotency key (default: the new id)."""

    method: str
    url: str = field(repr=False)
    origin: str
    wire: bytes = field(repr=False)
    timeout: float
    key: str | None = None
    ordering_key: str | None = None
    schedule: Sequence[float] = DEFAULT_SCHEDULE


@dataclass(frozen=True, slots=True)
class Enqueued:
    """What :meth:`Store.add` did. ``existing`` is true when the key was already stored:
    nothing was inserted and ``id``/``status`` are the stored message's."""

    id: str
    key: str
    status: Status
    created_at: float
    existing: bool


@dataclass(frozen=True, slots=True)
class MessageStatus:
    """A stored message as any process sees it (without its wire bytes)."""

    id: str
    key: str
    status: Status
    attempts: int
    last_status: int | None
    last_error: str | None
    next_attempt_at: float
    created_at: float
    delivered_at: float | None
    ordering_key: str | None
    origin: str
    method: str
    url: str = field(repr=False)
    lease_owner: str | None
    lease_expires: float | None
    replays: int

    def to_dict(self) -> dict[str, Any]:
        """The fields for JSON output, without ``url`` (redact it yourself if you show it)."""
        return {
            "id": self.id,
            "key": self.key,
            "status": self.status,
            "attempts": self.attempts,
            "last_status": self.last_status,
            "last_error": self.last_error,
            "next_attempt_at": self.next_attempt_at,
            "created_at": self.created_at,
            "delivered_at": self.delivered_at,
            "ordering_key": self.ordering_key,
            "origin": self.origin,
            "method": self.method,
            "lease_owner": self.lease_owner,
            "lease_expires": self.lease_expires,
            "replays": self.replays,
        }


@dataclass(frozen=True, slots=True)
class Claimed:
    """A message leased to one owner until ``lease_expires``.

    ``attempt`` is this attempt's number in the current schedule round (1 for the first);
    after a failure pass it to :func:`sendoff.outbox.schedule.plan_retry`. ``attempts``
    counts every attempt ever made (it survives :meth:`Store.retry`)."""

    id: str
    key: str
    method: str
    url: str = field(repr=False)
    origin: str
    wire: bytes = field(repr=False)
    timeout: float
    ordering_key: str | None
    attempt: int
    attempts: int
    schedule: tuple[float, ...]
    created_at: float
    lease_owner: str
    lease_expires: float


Verdict = Literal["delivered", "retry", "dead"]


class Turn(NamedTuple):
    """What :meth:`Store.finish_and_claim` did, in one transaction."""

    #: outcomes that applied (their owner still held the lease)
    applied: int
    #: the messages claimed
    claimed: list[Claimed]
    #: when the earliest claimable message is due, after the claim (None: none is)
    next_due: float | None


@dataclass(frozen=True, slots=True)
class Outcome:
    """The result of one attempt, for :meth:`Store.finish`."""

    id: str
    verdict: Verdict
    status: int | None = None
    error: str | None = None
    next_attempt_at: float | None = None  # required for "retry"


class OriginCounts(TypedDict):
    pending: int
    delivering: int
    dead: int


class Stats(TypedDict):
    total: int
    pending: int
    delivering: int
    delivered: int
    dead: int
    origins: dict[str, OriginCounts]
    oldest_pending_age: float | None
    next_due: float | None
    transactions: int


# ---------------------------------------------------------------------------------------
# Helpers


def new_id(now: float) -> str:
    """``msg_`` + 32 hex digits: 48 bits of milliseconds then 80 random bits, so ids sort by
    creation time (to the millisecond) and never repeat."""
    ms = int(now * 1000) & 0xFFFF_FFFF_FFFF if now > 0 else 0
    return f"msg_{ms << 80 | _randbits(80):032x}"


def _lowest_id(since: float) -> str:
    ms = max(0, math.floor(since * 1000)) & 0xFFFF_FFFF_FFFF
    return f"msg_{ms:012x}{0:020x}"


def origin_of(url: str) -> str:
    """``scheme://host:port`` of ``url`` (default port filled in), as the store groups it."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url: needs an http:// or https:// URL with a host")
    host = parts.hostname
    if ":" in host:
        host = f"[{host}]"
    port = parts.port or (443 if scheme == "https" else 80)
    return f"{scheme}://{host}:{port}"


def new_owner() -> str:
    """A lease owner name unique to this process and call: ``host:pid:random``."""
    import socket

    return f"{socket.gethostname()}:{os.getpid()}:{os.urandom(4).hex()}"


# random's module instance is reseeded in a forked child, so parent and child never share ids.
_randbits = random.getrandbits

# Schedules already checked, with their JSON: most messages share a few tuples.
_schedules: dict[object, tuple[tuple[float, ...], str]] = {}


def _checked_schedule(schedule: Sequence[float]) -> tuple[tuple[float, ...], str]:
    try:
        known = _schedules.get(schedule) if type(schedule) is tuple else None
    except TypeError:  # a tuple holding something unhashable: validate() says what
        known = None
    if known is not None:
        return known
    steps = _schedule.validate(schedule)
    known = steps, json.dumps([int(s) if s == int(s) else s for s in steps])
    if type(schedule) is tuple and len(_schedules) < 64:
        _schedules[schedule] = known
    return known


@functools.lru_cache(maxsize=64)
def _schedule_of(text: str) -> tuple[float, ...]:
    """A row's schedule (a JSON list); most rows share one, so the parse is cached."""
    return tuple(float(step) for step in json.loads(text))


def _error_text(error: str) -> str:
    """``error`` as stored: at most _MAX_ERROR_TEXT characters of valid UTF-8 without NUL
    (it travels through JSON, where SQLite would end the text at a NUL)."""
    text = error[:_MAX_ERROR_TEXT].replace("\x00", "\ufffd")
    return text.encode("utf-8", "replace").decode("utf-8")


def _looks_like_id(key: str) -> bool:
    return len(key) == 36 and key.startswith("msg_")


def _check_message(msg: NewMessage) -> tuple[bytes, tuple[tuple[float, ...], str]]:
    if not isinstance(msg.method, str) or not msg.method or not msg.method.isascii():
        raise ValueError("method: must be a non-empty ASCII string")
    if not isinstance(msg.url, str) or not msg.url:
        raise ValueError("url: must be a non-empty string")
    if not isinstance(msg.origin, str) or "://" not in msg.origin:
        raise ValueError("origin: must be scheme://host:port")
    if not isinstance(msg.wire, bytes | bytearray | memoryview):
        raise ValueError("wire: must be bytes")
    if len(msg.wire) > MAX_WIRE:
        raise ValueError(
            f"wire: the request is {len(msg.wire):,} bytes; an outbox stores at most"
            f" {MAX_WIRE:,} (SQLite's length limit, with room for the rest of the row)"
        )
    timeout = msg.timeout
    if not is_seconds(timeout):
        raise ValueError("timeout: must be a positive number of seconds")
    for name, value in (("key", msg.key), ("ordering_key", msg.ordering_key)):
        if value is not None and (not isinstance(value, str) or not value or len(value) > 1000):
            raise ValueError(f"{name}: must be a non-empty string of at most 1000 characters")
        if value is not None and "\x00" in value:
            raise ValueError(f"{name}: must not contain NUL")
    return bytes(msg.wire), _checked_schedule(msg.schedule)


# fork(): SQLite keeps per-process lock bookkeeping (os_unix.c's inode and shared-memory
# lists) that a child inherits. A connection the parent had in the middle of a transaction
# at the fork would make the child's own new connections on the file see a "sibling" holding
# the WAL write lock (busy for ever), and inherited connections would let the child's new
# ones skip taking their real file locks. So: before os.fork() every Store lets its running
# transaction finish and holds new ones back; the child then closes the inherited, idle
# connections (their unlocks only touch the child's own POSIX locks; the parent's shared
# lock keeps the child from checkpointing or deleting the WAL) and opens its own on first use.
# A fork the hooks did not see (a C-level fork) is detected by pid: the child then leaves
# the inherited connections untouched, referenced here so no finaliser closes them.
_inherited: list[sqlite3.Connection] = []
_stores: weakref.WeakSet[Store] = weakref.WeakSet()
_fork_lock = threading.Lock()
_forking: list[Store] = []


def _before_fork() -> None:
    _fork_lock.acquire()
    _forking[:] = list(_stores)
    for store in _forking:
        store._fork_prepare()


def _after_fork_in_parent() -> None:
    for store in _forking:
        store._fork_release()
    _forking.clear()
    _fork_lock.release()


def _after_fork_in_child() -> None:
    global _fork_lock
    for store in _forking:
        store._fork_child()
    _forking.clear()
    _fork_lock = threading.Lock()


os.register_at_fork(
    before=_before_fork,
    after_in_parent=_after_fork_in_parent,
    after_in_child=_after_fork_in_child,
)


_JSON_PROBE = "SELECT value FROM json_each(json_array(1))"


@functools.cache
def _sqlite_problem() -> str | None:
    """Why this process's SQLite library cannot run the store (None: it can). Checked on a
    memory database, before the file is opened or created; once per process (the library
    cannot change)."""
    if sqlite3.sqlite_version_info < MIN_SQLITE:
        return f"SQLite {sqlite3.sqlite_version} is too old"
    probe = sqlite3.connect(":memory:")
    try:
        probe.execute(_JSON_PROBE).fetchone()
    except sqlite3.OperationalError as exc:
        if "no such" not in str(exc):
            raise
        return f"SQLite {sqlite3.sqlite_version} was built without its JSON functions"
    finally:
        probe.close()
    return None


def _has_counter(conn: sqlite3.Connection) -> bool:
    found = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'counters'"
    ).fetchone()
    return found is not None


class _Refused(Exception):
    """Raised by a write step before it wrote anything: only its caller fails."""

    def __init__(self, error: BaseException) -> None:
        self.error = error


class _Write(Generic[T]):
    __slots__ = ("done", "error", "fn", "promoted", "result", "waiter")

    def __init__(self, fn: Callable[[sqlite3.Connection], T]) -> None:
        self.fn = fn
        # A write that has to wait gets a held lock; releasing it wakes the writer (cheaper
        # than an Event, and a write that leads at once never needs one).
        self.waiter: threading.Lock | None = None
        self.done = False
        self.promoted = False
        self.result: T | None = None
        self.error: BaseException | None = None


# SQLite primary result codes
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB, _PERM = (
    5, 6, 8, 10, 11, 13, 14, 26, 3,
)  # fmt: skip
_RESET_CAUSES = frozenset({"corrupt", "io", "cannot_open", "read_only"})


class _Keep:
    """Marks a column an update leaves as it is."""


_KEEP = _Keep()


# ---------------------------------------------------------------------------------------
# The store


class Store:
    """A durable message store on one SQLite file; safe to share between threads, and
    between processes on the same file. ``Store`` objects survive ``fork()``: the child
    opens its own connections on first use.

    ``durability="normal"`` commits with ``synchronous=NORMAL`` (survives process crashes);
    ``"full"`` with ``synchronous=FULL`` (also power loss). ``busy_timeout`` is how long a
    write waits for another process's lock before raising ``OutboxError`` (cause
    ``"locked"``). ``max_rows`` bounds the rows kept (delivered ones count until purged):
    beyond it :meth:`add` raises :class:`OutboxFull`. ``clock`` gives ``now`` to every
    method called without one.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        durability: Durability = "normal",
        busy_timeout: float = 5.0,
        max_rows: int | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
    ) -> None:
        self.path = os.fspath(path)
        if self.path in ("", ":memory:") or self.path.startswith("file:"):
            raise ValueError("path: the outbox needs a file path")
        if durability not in ("normal", "full"):
            raise ValueError("durability: must be 'normal' or 'full'")
        if not is_seconds(busy_timeout, positive=False):
            raise ValueError("busy_timeout: must be a finite number of seconds >= 0")
        if max_rows is not None and (
            isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1
        ):
            raise ValueError("max_rows: must be None or a positive integer")
        self.durability: Durability = durability
        self.busy_timeout = float(busy_timeout)
        self.max_rows = max_rows
        self._clock = clock
        self._rng = rng or random.Random()
        self._own_rng = rng is None
        self._transactions = 0
        self._origin_cursor: str | None = None
        self._closed = False
        self._last_checkpoint = 0.0
        problem = _sqlite_problem()
        if problem is not None:  # refused before anything is stored: every claim would fail
            self._unsupported(problem)
        self._init_process_state()
        _stores.add(self)
        try:
            self._writer()  # opens the file and brings its schema up to date
        except BaseException:
            self._close_connections()
            raise

    # -- process-local state --------------------------------------------------------------

    def _init_process_state(self) -> None:
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._queue: list[_Write[Any]] = []
        self._busy = False
        self._idle_waiters = 0  # threads in _idle.wait() (fork, close)
        self._pending = 0
        self._read_lock = threading.Lock()
        self._wconn: sqlite3.Connection | None = None
        self._rconn: sqlite3.Connection | None = None

    def _fork_prepare(self) -> None:
        """Before fork(): wait for the running transaction and reads, and hold new ones."""
        self._read_lock.acquire()
        with self._lock:
            while self._busy:
                self._wait_idle()
            self._busy = True

    def _wait_idle(self) -> None:
        """With ``self._lock`` held: wait until the running transaction has ended."""
        self._idle_waiters += 1
        try:
            self._idle.wait()
        finally:
            self._idle_waiters -= 1

    def _fork_release(self) -> None:
        """After fork() in the parent: let the writes that queued meanwhile go."""
        with self._lock:
            self._handoff()
        self._read_lock.release()

    def _fork_child(self) -> None:
        """After fork() in the child: close the inherited (idle) connections, start afresh."""
        inherited = (self._wconn, self._rconn)
        self._init_process_state()
        if self._own_rng:
            self._rng.seed()  # not the parent's jitter sequence
        for conn in inherited:
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error:
                    _inherited.append(conn)

    def _after_fork(self) -> None:
        """A fork the hooks did not see: never touch the inherited connections."""
        if self._pid == os.getpid():
            return
        for conn in (self._wconn, self._rconn):
            if conn is not None:
                _inherited.append(conn)
        self._init_process_state()

    def _check_process(self) -> None:
        if self._pid != os.getpid():  # forked without os.register_at_fork hooks running
            self._after_fork()
        self.check_open()

    def check_open(self) -> None:
        """Raise :class:`OutboxError` (cause ``"closed"``) once :meth:`close` was called."""
        if self._closed:
            raise OutboxError(f"outbox {self.path}: closed", cause="closed", path=self.path)

    @property
    def transactions(self) -> int:
        """Write transactions this object committed (in this process)."""
        return self._transactions

    @property
    def pending_writes(self) -> int:
        """Writes submitted in this process and not finished yet (running or queued)."""
        return self._pending

    # -- connections ----------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(
            self.path,
            timeout=self.busy_timeout,
            isolation_level=None,
            check_same_thread=False,
            cached_statements=64,
        )
        try:
            # another application's database is refused before anything is changed in it
            self._refuse_foreign(conn)
            # Switching a new file to WAL needs an exclusive lock, and SQLite answers BUSY
            # at once, without its busy handler, while another connection holds one: wait
            # here instead, up to busy_timeout (processes opening a new file together).
            mode = self._patiently(lambda: conn.execute("PRAGMA journal_mode=WAL").fetchone()[0])
            if str(mode).lower() != "wal":
                logger.warning("outbox %s: journal_mode is %s, not wal", self.path, mode)
            sync = "FULL" if self.durability == "full" else "NORMAL"
            conn.execute(f"PRAGMA synchronous={sync}")
            conn.execute("PRAGMA journal_size_limit=67108864")
            # Checkpoints (copying the WAL into the file, with an fsync) cost milliseconds:
            # claim() runs them, off the callers' path; commits only as a safety net.
            conn.execute(f"PRAGMA wal_autocheckpoint={_AUTOCHECKPOINT_PAGES}")
        except BaseException:
            conn.close()
            raise
        return conn

    def _patiently(self, fn: Callable[[], T]) -> T:
        """``fn()``, tried again while SQLite says BUSY, until ``busy_timeout`` has passed."""
        deadline = time.monotonic() + self.busy_timeout
        pause = 0.001
        while True:
            try:
                return fn()
            except sqlite3.OperationalError as exc:
                code = getattr(exc, "sqlite_errorcode", 0) & 0xFF
                if code not in (_BUSY, _LOCKED) or time.monotonic() + pause > deadline:
                    raise
            time.sleep(pause)  # a retry loop, as SQLite's own busy handler does
            pause = min(pause * 2, 0.05)

    def _writer(self) -> sqlite3.Connection:
        if self._wconn is None:
            try:
                conn = self._connect()
            except sqlite3.Error as exc:
                raise self._error(exc, "open") from exc
            try:
                self._migrate(conn)
            except BaseException:
                conn.close()
                raise
            self._wconn = conn
        return self._wconn

    def _unsupported(self, why: str) -> None:
        want = ".".join(map(str, MIN_SQLITE))
        raise OutboxError(
            f"outbox {self.path}: cannot open: {why}; the outbox needs SQLite {want} or newer"
            " with its JSON functions (Python's sqlite3 uses the libsqlite3 it was built with)",
            cause="unsupported_sqlite",
            path=self.path,
        )

    def _reader(self) -> sqlite3.Connection:
        if self._rconn is None:
            try:
                conn = self._connect()
                conn.execute("PRAGMA query_only=ON")
            except sqlite3.Error as exc:
                raise self._error(exc, "open") from exc
            self._rconn = conn
        return self._rconn

    def _migrate(self, conn: sqlite3.Connection) -> None:
        """Bring the file to :data:`SCHEMA_VERSION` (each step once, in one transaction with
        the version bump) and add the row counter if ``max_rows`` needs it."""
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            want_counter = self.max_rows is not None
            if version == SCHEMA_VERSION:  # the usual case: nothing to write
                self._check_version(conn, version)
                if not (want_counter and not _has_counter(conn)):
                    return
            elif version > SCHEMA_VERSION:
                self._check_version(conn, version)
            conn.execute("BEGIN IMMEDIATE")
            try:
                # Checked again under the write lock, in one snapshot: another process may
                # have migrated the file meanwhile (its tables must not look foreign).
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                self._refuse_foreign(conn)
                self._check_version(conn, version)
                start = version
                while version < SCHEMA_VERSION:
                    for statement in MIGRATIONS[version]:
                        conn.execute(statement)
                    version += 1
                conn.execute(f"PRAGMA user_version = {version}")
                if want_counter and not _has_counter(conn):
                    for statement in _COUNTER:
                        conn.execute(statement)
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc, "open") from exc
        if start != version:
            logger.info("outbox %s: schema v%d -> v%d", self.path, start, version)

    def _check_version(self, conn: sqlite3.Connection, version: int) -> None:
        """A file of a newer schema is refused (a foreign one was refused on connecting)."""
        if version > SCHEMA_VERSION:
            raise OutboxError(
                f"outbox {self.path}: written by a newer sendoff (schema v{version}; this one"
                f" knows up to v{SCHEMA_VERSION}); refusing to open it",
                cause="newer_schema",
                path=self.path,
            )

    def _refuse_foreign(self, conn: sqlite3.Connection) -> None:
        """OutboxError unless the file is empty or an outbox: every outbox schema version
        carries the application id (set with the first), a new file has neither. Read in
        one statement, one snapshot: another store may be creating the tables meanwhile."""
        version, app_id, tables = conn.execute(
            "SELECT (SELECT user_version FROM pragma_user_version),"
            " (SELECT application_id FROM pragma_application_id),"
            " (SELECT count(*) FROM sqlite_master)"
        ).fetchone()
        foreign = app_id != APPLICATION_ID if version > 0 or app_id != 0 else tables > 0
        if foreign:
            raise OutboxError(
                f"outbox {self.path}: not a sendoff outbox (the database holds other data);"
                " refusing to use it",
                cause="not_an_outbox",
                path=self.path,
            )

    def _close_connections(self) -> None:
        for conn in (self._wconn, self._rconn):
            if conn is not None:
                try:
                    conn.close()
                except sqlite3.Error:
                    pass
        self._wconn = self._rconn = None

    def _drop_writer(self) -> None:
        conn, self._wconn = self._wconn, None
        if conn is not None:
            try:
                conn.close()
            except sqlite3.Error:
                pass

    # -- errors ---------------------------------------------------------------------------

    def _error(self, exc: sqlite3.Error, action: str) -> OutboxError:
        """An :class:`OutboxError` naming the cause of ``exc`` in plain words."""
        code = getattr(exc, "sqlite_errorcode", None)
        primary = code & 0xFF if isinstance(code, int) else None
        text = str(exc)
        lowered = text.lower()
        cause, words = "error", "database error"
        if primary == _FULL or "disk is full" in lowered:
            cause, words = "disk_full", "disk full"
        elif primary in (_BUSY, _LOCKED) or "locked" in lowered:
            cause = "locked"
            words = (
                f"locked: another connection held the database lock for longer than"
                f" busy_timeout ({self.busy_timeout:g} s)"
            )
        elif primary == _NOTADB or "not a database" in lowered:
            cause, words = "corrupt", "corrupt: the file is not a database"
        elif primary == _CORRUPT or "malformed" in lowered:
            cause, words = "corrupt", "corrupt: the database file is malformed"
        elif primary == _READONLY or "readonly" in lowered:
            cause, words = "read_only", "read-only: the file or its directory is not writable"
        elif primary in (_CANTOPEN, _PERM, _IOERR):
            cause, words = self._diagnose(primary)
        return OutboxError(
            f"outbox {self.path}: cannot {action}: {words} (sqlite: {text})",
            cause=cause,
            path=self.path,
        )

    def _diagnose(self, primary: int | None) -> tuple[str, str]:
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.stat(directory)
        except FileNotFoundError:
            return "cannot_open", f"the directory {directory} does not exist"
        except OSError as exc:
            return "cannot_open", f"the directory {directory} cannot be reached ({exc.strerror})"
        try:
            vfs = os.statvfs(directory)
        except OSError:
            vfs = None
        if vfs is not None and vfs.f_flag & os.ST_RDONLY:
            return "read_only", "read-only: the file system is mounted read-only"
        if primary == _IOERR:
            if vfs is not None and vfs.f_bavail * vfs.f_frsize < 65536:
                return "disk_full", "disk full (I/O error writing the file)"
            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0]
            if limit != resource.RLIM_INFINITY:
                sizes = []
                for suffix in ("", "-wal", "-shm"):
                    try:
                        sizes.append(os.path.getsize(self.path + suffix))
                    except OSError:
                        pass
                if sizes and max(sizes) + 65536 >= limit:
                    return "disk_full", "disk full: the process's file size limit was reached"
            return "io", "I/O error reading or writing the file"
        for target in (self.path, directory):
            if os.path.exists(target) and not os.access(target, os.W_OK):
                return "read_only", f"read-only: {target} is not writable by this user"
        return "cannot_open", "the file cannot be opened"

    # -- group commit ---------------------------------------------------------------------

    def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a write transaction and return its result once it is committed.

        Leader/follower group commit: the first caller to find no transaction running leads
        it and takes every write queued so far into one transaction; callers arriving
        meanwhile queue and wait. When the leader has committed, it wakes the writes it
        carried and promotes the oldest queued caller to lead the next transaction.
        """
        self._check_process()
        write: _Write[T] = _Write(fn)
        with self._lock:
            self.check_open()  # again under the lock: close() may have run meanwhile
            self._pending += 1
            lead = not self._busy
            if lead:  # nothing runs, so nothing is queued: this write is the batch
                self._busy = True
            else:
                self._queue.append(write)
                write.waiter = waiter = threading.Lock()
                waiter.acquire()
        if lead:
            self._lead(write, [write])
        else:
            try:
                waiter.acquire()
            except BaseException:
                self._withdraw(write)
                raise
            if not write.done:  # promoted: lead the writes queued so far
                self._lead(write, None)
        if write.error is not None:
            raise write.error
        return write.result  # type: ignore[return-value]

    def _withdraw(self, write: _Write[Any]) -> None:
        """A waiting caller was interrupted: forget its write if it has not started."""
        with self._lock:
            if write in self._queue:
                self._queue.remove(write)
                self._pending -= 1
                if write.promoted:  # it was to lead: pass the turn on
                    self._handoff()

    def _handoff(self) -> None:
        """With ``self._lock`` held: wake the next leader, or mark the writer idle."""
        if self._queue:
            nxt = self._queue[0]
            nxt.promoted = True
            assert nxt.waiter is not None  # queued writes wait
            nxt.waiter.release()
        else:
            self._busy = False
            if self._idle_waiters:
                self._idle.notify_all()

    def _lead(self, mine: _Write[Any], batch: list[_Write[Any]] | None) -> None:
        """Run ``batch`` (None: the queued writes) in one transaction, then wake its
        writers and pass the lead on."""
        if batch is None:
            with self._lock:
                batch = self._queue[:_MAX_GROUP]
                del self._queue[:_MAX_GROUP]
        try:
            self._run(batch)
        finally:
            for write in batch:
                write.done = True
            with self._lock:
                self._pending -= len(batch)
                self._handoff()
            for write in batch:
                if write is not mine and write.waiter is not None:
                    write.waiter.release()

    def _run(self, batch: list[_Write[Any]]) -> None:
        try:
            conn = self._writer()
        except OutboxError as exc:
            for write in batch:
                write.error = OutboxError(str(exc), cause=exc.cause, path=self.path)
            return
        action = "store the message" if len(batch) == 1 else "commit"
        try:
            conn.execute("BEGIN IMMEDIATE")
            i = 0
            while i < len(batch):
                write = batch[i]
                i += 1
                try:
                    write.result = write.fn(conn)
                except _Refused as refused:
                    write.error = refused.error
                if i == len(batch) and self._queue and i < _MAX_GROUP:
                    # writes that arrived while this transaction ran join it before COMMIT
                    with self._lock:
                        more = self._queue[: _MAX_GROUP - i]
                        del self._queue[: _MAX_GROUP - i]
                    batch.extend(more)
            conn.execute("COMMIT")
            self._transactions += 1
        except BaseException as exc:
            failed = exc
            try:
                if conn.in_transaction:
                    conn.execute("ROLLBACK")
            except sqlite3.Error:
                self._drop_writer()
            for write in batch:
                write.result = None
                if isinstance(failed, sqlite3.Error):
                    write.error = self._error(failed, action)
                    write.error.__cause__ = failed
                else:
                    write.error = OutboxError(
                        f"outbox {self.path}: cannot {action}: {type(failed).__name__} in"
                        " the transaction; nothing was written",
                        cause="error",
                        path=self.path,
                    )
                    write.error.__cause__ = failed
            first = batch[0].error
            if isinstance(first, OutboxError) and first.cause in _RESET_CAUSES:
                self._drop_writer()  # reopen on next use, once the cause is fixed
            if not isinstance(failed, Exception):
                raise

    def _read(self, fn: Callable[[sqlite3.Connection], T], snapshot: bool = False) -> T:
        """``fn(reader)``; with ``snapshot``, in one read transaction (each statement of
        ``fn`` sees the file as the others do)."""
        self._check_process()
        with self._read_lock:
            self.check_open()  # again under the lock: close() may have run meanwhile
            try:
                reader = self._reader()
                if not snapshot:
                    return fn(reader)
                reader.execute("BEGIN")
                try:
                    return fn(reader)
                finally:
                    reader.execute("COMMIT")
            except sqlite3.Error as exc:
                error = self._error(exc, "read")
                if error.cause in _RESET_CAUSES:
                    conn, self._rconn = self._rconn, None
                    if conn is not None:
                        conn.close()
                raise error from exc

    def _now(self, now: float | None) -> float:
        return self._clock() if now is None else float(now)

    # -- enqueue --------------------------------------------------------------------------

    def add(self, msg: NewMessage, now: float | None = None) -> Enqueued:
        """Store ``msg``; return once its row is committed.

        If a message with the same ``key`` is stored (pending, delivering, delivered *or*
        dead) nothing is inserted and the stored message is returned with
        ``existing=True``: a dead one stays dead until :meth:`retry` (the caller sees its
        status and decides). Keys are forgotten when their row is purged.
        Raises :class:`OutboxFull` at ``max_rows``, :class:`OutboxError` if the row could
        not be committed, ``ValueError`` for malformed input.
        """
        wire, (steps, steps_json) = _check_message(msg)
        at = self._now(now)
        ident = new_id(at)
        key = msg.key
        delay = _schedule.next_delay(steps, 0, self._rng) or 0.0
        next_at = at + delay
        params = (
            ident, key, msg.ordering_key, msg.origin, msg.method, msg.url, wire,
            float(msg.timeout), at, next_at, steps_json,
        )  # fmt: skip
        max_rows = self.max_rows

        def existing(conn: sqlite3.Connection) -> Enqueued | None:
            assert key is not None
            row = conn.execute(
                "SELECT id, status, created_at FROM messages WHERE key = ?", (key,)
            ).fetchone()
            if row is None and _looks_like_id(key):
                row = conn.execute(  # a key equal to an id is that message's key
                    "SELECT id, status, created_at FROM messages WHERE id = ? AND key IS NULL",
                    (key,),
                ).fetchone()
            return None if row is None else Enqueued(row[0], key, row[1], row[2], True)

        def insert(conn: sqlite3.Connection) -> Enqueued:
            if key is not None and _looks_like_id(key) and (found := existing(conn)):
                return found
            if max_rows is not None:
                count = conn.execute("SELECT value FROM counters WHERE name = 'rows'").fetchone()
                if count[0] >= max_rows:
                    if key is not None and (found := existing(conn)):
                        return found  # a duplicate is answered even when full
                    raise _Refused(
                        OutboxFull(
                            f"outbox {self.path}: full ({max_rows} rows); the message was"
                            " not stored",
                            path=self.path,
                        )
                    )
            blocked: int | None = None
            claimable: float | None = next_at
            if msg.ordering_key is not None:
                busy = conn.execute(
                    "SELECT 1 FROM messages WHERE ordering_key = ? AND blocked IS NOT NULL LIMIT 1",
                    (msg.ordering_key,),
                ).fetchone()
                blocked = 1 if busy else 0
                if busy:
                    claimable = None
            cur = conn.execute(
                "INSERT INTO messages (id, key, ordering_key, origin, method, url, wire,"
                " timeout, created_at, next_attempt_at, schedule, status, claimable_at,"
                " blocked) VALUES (?,?,?,?,?,?,?,?,?,?,?,'pending',?,?)"
                " ON CONFLICT (key) WHERE key IS NOT NULL DO NOTHING",
                (*params, claimable, blocked),
            )
            if cur.rowcount == 0:  # the key is taken: that message answers
                found = existing(conn)
                assert found is not None
                return found
            return Enqueued(ident, key or ident, "pending", at, existing=False)

        return self._write(insert)

    # -- claiming -------------------------------------------------------------------------

    def claim(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        now: float | None = None,
        *,
        per_origin_limit: int | None = None,
        in_flight: Mapping[str, int] | None = None,
        paused: Collection[str] = (),
        max_bytes: int | None = None,
    ) -> list[Claimed]:
        """Lease up to ``limit`` due messages to ``owner`` for ``lease_seconds``.

        Due: pending with ``next_attempt_at <= now``, or delivering with an expired lease
        (its owner died; the attempt it may have made counts). A message whose lease expired
        during the last attempt of its schedule becomes dead instead.

        Fairness: origins take turns (round robin, continuing where the previous claim
        stopped), so one origin's backlog never fills a batch while others wait. With
        ``per_origin_limit``, an origin gets at most ``per_origin_limit - in_flight[origin]``
        messages (``in_flight``: what the caller still has in flight there); origins in
        ``paused`` (an open circuit) get none.

        ``max_bytes`` bounds the request bytes (wires) of the messages claimed: the claim
        stops before the message that would pass it, but always takes the first, however
        large (so memory stays bounded by the caller's budget plus one message).
        """
        take, died = self._claim_step(
            owner, limit, lease_seconds, self._now(now), per_origin_limit, in_flight, paused,
            max_bytes,
        )
        claimed = self._write(take)
        self._claimed(died)
        return claimed

    def _claim_step(
        self,
        owner: str,
        limit: int,
        lease_seconds: float,
        at: float,
        per_origin_limit: int | None,
        in_flight: Mapping[str, int] | None,
        paused: Collection[str],
        max_bytes: int | None,
    ) -> tuple[Callable[[sqlite3.Connection], list[Claimed]], list[str]]:
        """claim()'s checks, then its write (for a transaction) and the list of the ids
        that write finds dead (filled when it runs)."""
        if not owner:
            raise ValueError("owner: must be a non-empty string")
        if limit < 1 or limit > MAX_BATCH:
            raise ValueError(f"limit: must be between 1 and {MAX_BATCH}")
        if not (lease_seconds > 0 and math.isfinite(lease_seconds)):
            raise ValueError("lease_seconds: must be a positive number")
        if per_origin_limit is not None and per_origin_limit < 1:
            raise ValueError("per_origin_limit: must be None or >= 1")
        if max_bytes is not None and max_bytes < 1:
            raise ValueError("max_bytes: must be None or >= 1")
        expires = at + lease_seconds
        flying = dict(in_flight or {})
        skip = frozenset(paused)

        def budget(origin: str) -> int:
            if origin in skip:
                return 0
            if per_origin_limit is None:
                return limit
            return min(limit, per_origin_limit - flying.get(origin, 0))

        def take(conn: sqlite3.Connection) -> list[Claimed]:
            def wire(seq: int) -> bytes:
                row = conn.execute("SELECT wire FROM messages WHERE seq = ?", (seq,)).fetchone()
                return bytes(row[0])

            queues: list[list[int]] = []
            last_origin = self._origin_cursor
            for origin in self._due_origins(conn, at):
                room = budget(origin)
                if room <= 0:
                    continue
                seqs: list[int] = json.loads(
                    conn.execute(
                        "SELECT json_group_array(seq) FROM (SELECT seq FROM messages"
                        " INDEXED BY messages_due WHERE origin = ? AND claimable_at <= ?"
                        " ORDER BY claimable_at LIMIT ?)",
                        (origin, at, room),
                    ).fetchone()[0]
                )
                if seqs:
                    queues.append(seqs)
                    last_origin = origin
                    if len(queues) >= limit:
                        break
            self._origin_cursor = last_origin
            picked: list[int] = []
            depth = 0
            while len(picked) < limit and queues:
                queues = [q for q in queues if len(q) > depth]
                for q in queues:
                    picked.append(q[depth])
                    if len(picked) >= limit:
                        break
                depth += 1
            claimed: list[Claimed] = []
            leased: list[int] = []
            taken_bytes = 0
            del died[:]  # a retried transaction starts over
            rows = {
                row[0]: row
                for row in json.loads(
                    conn.execute(_CLAIM_ROWS, (json.dumps(picked),)).fetchone()[0]
                )
            }
            for seq in picked:
                row = rows[seq]
                steps = _schedule_of(row[11])
                attempt = row[9] - row[10] + 1
                if row[13] == "delivering" and attempt > len(steps):
                    # the outcome of that attempt is unknown: last_status stays
                    error = "the lease expired during the last attempt (its owner died?)"
                    self._finish_row(conn, seq, row[8], "dead", _KEEP, error, at)
                    died.append(row[1])
                    continue
                if max_bytes is not None and leased and taken_bytes + row[14] > max_bytes:
                    # the rest stay pending; the next claim starts with the origin after
                    # the last one served, as it would after a full batch
                    self._origin_cursor = claimed[-1].origin
                    break
                taken_bytes += row[14]
                leased.append(seq)
                claimed.append(
                    Claimed(  # positional, in field order: keywords cost 1 us a message
                        row[1],  # id
                        row[2],  # key
                        row[3],  # method
                        row[4],  # url
                        row[5],  # origin
                        bytes.fromhex(row[6]) if row[6] is not None else wire(seq),
                        float(row[7]),  # timeout
                        row[8],  # ordering_key
                        attempt,
                        row[9] + 1,  # attempts
                        steps,  # schedule
                        float(row[12]),  # created_at
                        owner,  # lease_owner
                        expires,  # lease_expires
                    )
                )
            if leased:
                # OR FAIL: a multi-row statement that may abort keeps a statement journal (a
                # temporary file holding a copy of every page it changes, wires included);
                # a failure rolls the whole transaction back anyway, so none is needed
                conn.execute(
                    "UPDATE OR FAIL messages SET status = 'delivering', lease_owner = ?,"
                    " lease_expires = ?, claimable_at = ?, attempts = attempts + 1"
                    " WHERE seq IN (SELECT value FROM json_each(?))",
                    (owner, expires, expires, json.dumps(leased)),
                )
            return claimed

        died: list[str] = []
        return take, died

    def _claimed(self, died: list[str]) -> None:
        """After a claim's transaction: log the messages it found dead (outside it: a log
        handler may use the store) and checkpoint now and then."""
        if len(died) == 1:
            logger.warning("outbox %s: message %s is dead: its lease expired on its last"
                           " attempt", self.path, died[0])  # fmt: skip
        elif died:  # a relay that died with a batch out: one line, not one per message
            logger.warning(
                "outbox %s: %d messages are dead: their lease expired on their last attempt"
                " (%s%s)", self.path, len(died), ", ".join(died[:5]),
                ", ..." if len(died) > 5 else "",
            )
        if time.monotonic() - self._last_checkpoint >= _CHECKPOINT_EVERY:
            self._checkpoint_quietly()

    def finish_and_claim(
        self,
        owner: str,
        outcomes: Iterable[Outcome],
        limit: int,
        lease_seconds: float,
        now: float | None = None,
        *,
        per_origin_limit: int | None = None,
        in_flight: Mapping[str, int] | None = None,
        paused: Collection[str] = (),
        max_bytes: int | None = None,
    ) -> Turn:
        """:meth:`finish` then :meth:`claim` (same arguments) in one transaction, as a
        relay's turn does: one commit instead of two, and the pages both change are written
        once. Returns how many outcomes applied, what was claimed and :meth:`next_due` as
        the claim left the file (read in the same transaction)."""
        at = self._now(now)
        apply = self._finish_step(owner, outcomes, at)
        take, died = self._claim_step(
            owner, limit, lease_seconds, at, per_origin_limit, in_flight, paused, max_bytes
        )

        def both(conn: sqlite3.Connection) -> Turn:
            applied = apply(conn) if apply is not None else 0
            claimed = take(conn)
            return Turn(applied, claimed, self._earliest_due(conn))

        result = self._write(both)
        self._claimed(died)
        return result

    def checkpoint(self) -> tuple[int, int]:
        """Copy committed WAL frames into the database file without blocking anyone (a
        passive checkpoint); returns ``(frames in the WAL, frames copied)``. :meth:`claim`
        does this every second, so writers rarely pay for it."""
        self._last_checkpoint = time.monotonic()
        row = self._read(lambda c: c.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        return int(row[1]), int(row[2])

    def _checkpoint_quietly(self) -> None:
        try:
            self.checkpoint()
        except OutboxError as exc:  # the claim itself succeeded; the next one tries again
            logger.debug("outbox %s: checkpoint failed: %s", self.path, exc)

    @staticmethod
    def _origin_heads(conn: sqlite3.Connection, after: str | None) -> Iterator[tuple[str, float]]:
        """``(origin, earliest claimable_at)`` of every origin after ``after`` that has a
        claimable row, in origin order: a skip scan of ``messages_due``, one seek each."""
        while True:
            if after is None:
                row = conn.execute(
                    "SELECT origin, claimable_at FROM messages INDEXED BY messages_due"
                    " WHERE claimable_at IS NOT NULL ORDER BY origin, claimable_at LIMIT 1"
                ).fetchone()
            else:
                row = conn.execute(
                    "SELECT origin, claimable_at FROM messages INDEXED BY messages_due"
                    " WHERE origin > ? AND claimable_at IS NOT NULL"
                    " ORDER BY origin, claimable_at LIMIT 1",
                    (after,),
                ).fetchone()
            if row is None:
                return
            yield row[0], row[1]
            after = row[0]

    def _due_origins(self, conn: sqlite3.Connection, now: float) -> Iterator[str]:
        """Origins with a row due at ``now``, starting after the origin where the last claim
        stopped and wrapping around once."""
        start = self._origin_cursor
        for origin, due in self._origin_heads(conn, start):
            if due <= now:
                yield origin
        if start is not None:
            for origin, due in self._origin_heads(conn, None):
                if origin > start:
                    return
                if due <= now:
                    yield origin

    def leased(self, owner_prefix: str) -> list[tuple[str, str]]:
        """``(lease owner, id)`` of every message being delivered under a lease whose owner
        starts with ``owner_prefix`` (a relay that gives each claim its own owner asks
        which of its claims' messages are still out). Reads the index of the messages
        being delivered, not the table."""
        if not owner_prefix:
            raise ValueError("owner_prefix: must be a non-empty string")
        return self._read(
            lambda c: [
                (row[0], row[1])
                for row in c.execute(
                    "SELECT lease_owner, id FROM messages INDEXED BY messages_status"
                    " WHERE status = 'delivering' AND status != 'pending'"
                    " AND substr(lease_owner, 1, ?) = ?",
                    (len(owner_prefix), owner_prefix),
                )
            ]
        )

    def unfinished(self) -> bool:
        """True while a message is pending or being delivered. Two index probes, whatever
        the backlog: ``flush()`` polls this (:meth:`stats` counts every such row)."""
        return bool(
            self._read(
                lambda c: c.execute(
                    "SELECT EXISTS (SELECT 1 FROM messages INDEXED BY messages_due"
                    " WHERE claimable_at IS NOT NULL) OR EXISTS (SELECT 1 FROM messages"
                    " INDEXED BY messages_ordering WHERE blocked IS NOT NULL)"
                ).fetchone()[0]
            )
        )

    def settled(self, now: float | None = None) -> bool:
        """True when no message is being delivered and none is due at ``now`` (messages
        waiting for a later retry may be pending). Index probes, read in one snapshot: a
        claim between two reads must not make a message look neither due nor out."""
        at = self._now(now)

        def read(conn: sqlite3.Connection) -> bool:
            if conn.execute(
                "SELECT EXISTS (SELECT 1 FROM messages INDEXED BY messages_status"
                " WHERE status = 'delivering' AND status != 'pending')"
            ).fetchone()[0]:
                return False
            due = self._earliest_due(conn)
            return due is None or due > at

        return self._read(read, snapshot=True)

    def next_due(self) -> float | None:
        """When the earliest claimable message becomes due (``None``: nothing to claim).
        One index seek per origin with claimable messages."""
        return self._read(self._earliest_due)

    @staticmethod
    def _earliest_due(conn: sqlite3.Connection) -> float | None:
        """next_due() on ``conn``, inside whatever transaction it is in."""
        return min((due for _, due in Store._origin_heads(conn, None)), default=None)

    # -- finishing attempts ---------------------------------------------------------------

    @staticmethod
    def _finish_row(
        conn: sqlite3.Connection,
        seq: int,
        ordering_key: str | None,
        verdict: Literal["delivered", "dead"],
        status: int | _Keep | None,
        error: str | _Keep | None,
        now: float,
    ) -> None:
        """Finish a message; ``_KEEP`` leaves ``last_status``/``last_error`` as they are."""
        conn.execute(
            "UPDATE messages SET status = ?, last_status = CASE WHEN ? THEN last_status"
            " ELSE ? END, last_error = CASE WHEN ? THEN last_error ELSE ? END,"
            " delivered_at = ?, lease_owner = NULL, lease_expires = NULL,"
            " claimable_at = NULL, blocked = NULL WHERE seq = ?",
            (
                verdict,
                status is _KEEP,
                None if isinstance(status, _Keep) else status,
                error is _KEEP,
                None if isinstance(error, _Keep) else error,
                now if verdict == "delivered" else None,
                seq,
            ),
        )
        if ordering_key is not None:
            Store._unblock_next(conn, ordering_key)

    @staticmethod
    def _unblock_next(conn: sqlite3.Connection, ordering_key: str) -> None:
        """Make the oldest queued message of ``ordering_key`` its head, if it has none."""
        head = conn.execute(
            "SELECT 1 FROM messages INDEXED BY messages_ordering"
            " WHERE ordering_key = ? AND blocked = 0 LIMIT 1",
            (ordering_key,),
        ).fetchone()
        if head is not None:
            return
        conn.execute(
            "UPDATE messages SET blocked = 0, claimable_at = CASE status"
            " WHEN 'delivering' THEN lease_expires ELSE next_attempt_at END"
            " WHERE seq = (SELECT seq FROM messages INDEXED BY messages_ordering"
            " WHERE ordering_key = ? AND blocked = 1 ORDER BY seq LIMIT 1)",
            (ordering_key,),
        )

    def finish(self, owner: str, outcomes: Iterable[Outcome], now: float | None = None) -> int:
        """Record the results of several attempts in one transaction; each applies only if
        ``owner`` still holds the message's lease. Returns how many applied."""
        apply = self._finish_step(owner, outcomes, self._now(now))
        return self._write(apply) if apply is not None else 0

    def _finish_step(
        self, owner: str, outcomes: Iterable[Outcome], at: float
    ) -> Callable[[sqlite3.Connection], int] | None:
        """finish()'s checks, then its write for a transaction (None: nothing to write)."""
        items = list(outcomes)
        for item in items:
            if item.verdict not in ("delivered", "retry", "dead"):
                raise ValueError(f"verdict: must be delivered, retry or dead, not {item.verdict!r}")
            if item.verdict == "retry" and item.next_attempt_at is None:
                raise ValueError("next_attempt_at: required for a retry")
            if item.next_attempt_at is not None and not math.isfinite(item.next_attempt_at):
                raise ValueError("next_attempt_at: must be a finite number")

        # Deliveries (most outcomes) in one plain UPDATE per status answered: half the cost
        # per row of the UPDATE ... FROM the others take (measured: 5 against 10 us).
        delivered: dict[int | None, list[str]] = {}
        others: list[Outcome] = []
        for item in items:
            if item.verdict == "delivered" and item.error is None:
                delivered.setdefault(item.status, []).append(item.id)
            else:
                others.append(item)
        groups = [(status, json.dumps(ids)) for status, ids in delivered.items()]
        rows = json.dumps([
            [
                item.id,
                item.verdict,
                item.status,
                None if item.error is None else _error_text(item.error),
                item.next_attempt_at,
            ]
            for item in others
        ])

        def apply(conn: sqlite3.Connection) -> int:
            # A few statements for them all, not one per row (see _CLAIM_ROWS on steps). A
            # message that ends hands its ordering key's turn to the next: find those keys
            # first, while their rows are still leased to owner (a file without ordered
            # messages skips it).
            keys: list[str] = []
            if conn.execute(
                "SELECT 1 FROM messages INDEXED BY messages_ordering"
                " WHERE blocked IS NOT NULL LIMIT 1"
            ).fetchone():
                keys = json.loads(
                    conn.execute(
                        "SELECT json_group_array(DISTINCT ordering_key) FROM messages"
                        " WHERE id IN (SELECT value FROM json_each(?))"
                        " AND ordering_key IS NOT NULL AND status = 'delivering'"
                        " AND lease_owner = ?",
                        (json.dumps([i.id for i in items if i.verdict != "retry"]), owner),
                    ).fetchone()[0]
                )
            applied = 0
            for status, ids in groups:  # OR FAIL: no statement journal (see claim())
                applied += conn.execute(
                    "UPDATE OR FAIL messages SET status = 'delivered', last_status = ?,"
                    " last_error = NULL, delivered_at = ?, claimable_at = NULL, blocked = NULL,"
                    " lease_owner = NULL, lease_expires = NULL"
                    " WHERE id IN (SELECT value FROM json_each(?)) AND status = 'delivering'"
                    " AND lease_owner = ?",
                    (status, at, ids, owner),
                ).rowcount
            if others:
                applied += conn.execute(
                    "UPDATE OR FAIL messages SET"
                    " status = CASE v.verdict WHEN 'retry' THEN 'pending' ELSE v.verdict END,"
                    " last_status = v.status, last_error = v.error,"
                    " next_attempt_at = CASE v.verdict WHEN 'retry' THEN v.next"
                    "   ELSE messages.next_attempt_at END,"
                    " claimable_at = CASE v.verdict WHEN 'retry' THEN v.next ELSE NULL END,"
                    " delivered_at = CASE v.verdict WHEN 'delivered' THEN ? ELSE NULL END,"
                    " blocked = CASE v.verdict WHEN 'retry' THEN messages.blocked ELSE NULL END,"
                    " lease_owner = NULL, lease_expires = NULL"
                    " FROM (SELECT json_extract(value, '$[0]') AS id,"
                    " json_extract(value, '$[1]') AS verdict,"
                    " json_extract(value, '$[2]') AS status,"
                    " json_extract(value, '$[3]') AS error, json_extract(value, '$[4]') AS next"
                    " FROM json_each(?)) AS v"
                    " WHERE messages.id = v.id AND messages.status = 'delivering'"
                    " AND messages.lease_owner = ?",
                    (at, rows, owner),
                ).rowcount
            for ordering_key in keys:
                Store._unblock_next(conn, ordering_key)
            return applied

        return apply if items else None

    def delivered(self, id: str, owner: str, status: int, now: float | None = None) -> bool:
        """Mark a leased message delivered; ``False`` if ``owner`` no longer holds it."""
        return self.finish(owner, [Outcome(id, "delivered", status)], now) == 1

    def retry_later(
        self,
        id: str,
        owner: str,
        status: int | None,
        error: str | None,
        next_attempt_at: float,
        now: float | None = None,
    ) -> bool:
        """Put a leased message back to pending until ``next_attempt_at`` (see
        :func:`sendoff.outbox.schedule.plan_retry`); ``False`` if ``owner`` lost it."""
        outcome = Outcome(id, "retry", status, error, next_attempt_at)
        return self.finish(owner, [outcome], now) == 1

    def dead(
        self, id: str, owner: str, status: int | None, error: str | None, now: float | None = None
    ) -> bool:
        """Give up on a leased message; ``False`` if ``owner`` no longer holds it."""
        return self.finish(owner, [Outcome(id, "dead", status, error)], now) == 1

    def release(
        self, owner: str, ids: Iterable[str] | None = None, until: float | None = None
    ) -> int:
        """Give back every lease ``owner`` holds (clean shutdown), as if the attempts had not
        started: the messages are due again at once and the attempts are not counted.

        ``ids`` gives back only those messages (the rest of ``owner``'s leases hold);
        ``until`` makes them due then rather than at their planned time (a relay that
        did not try them because their origin's circuit is open). Returns how many."""
        wanted = None if ids is None else list(dict.fromkeys(ids))
        due = "next_attempt_at" if until is None else "max(next_attempt_at, ?)"
        sql = (
            f"UPDATE messages SET status = 'pending', lease_owner = NULL,"
            f" lease_expires = NULL, attempts = attempts - 1,"
            f" next_attempt_at = {due}, claimable_at = {due}"
            f" WHERE status = 'delivering' AND status != 'pending' AND lease_owner = ?"
        )
        times = () if until is None else (until, until)
        if wanted is None:

            def give_back(conn: sqlite3.Connection) -> int:
                return conn.execute(sql, (*times, owner)).rowcount

            return self._write(give_back)
        changed = 0
        for start in range(0, len(wanted), MAX_BATCH):
            chunk = wanted[start : start + MAX_BATCH]

            def give_some(conn: sqlite3.Connection, chunk: list[str] = chunk) -> int:
                return sum(
                    conn.execute(sql + " AND id = ?", (*times, owner, ident)).rowcount
                    for ident in chunk
                )

            changed += self._write(give_some)
        return changed

    def renew(
        self, owner: str, ids: Collection[str], lease_seconds: float, now: float | None = None
    ) -> int:
        """Extend ``owner``'s leases of ``ids`` to ``lease_seconds`` from now (a relay whose
        messages are still in flight keeps them); returns how many it still held."""
        if not ids:
            return 0
        expires = self._now(now) + lease_seconds
        wanted = list(ids)

        def extend(conn: sqlite3.Connection) -> int:
            renewed = 0
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                marks = ",".join("?" * len(chunk))
                renewed += conn.execute(
                    "UPDATE messages SET lease_expires = ?, claimable_at = ?"
                    f" WHERE status = 'delivering' AND lease_owner = ? AND id IN ({marks})",
                    (expires, expires, owner, *chunk),
                ).rowcount
            return renewed

        return self._write(extend)

    # -- reading --------------------------------------------------------------------------

    @staticmethod
    def _status(row: Sequence[Any]) -> MessageStatus:
        return MessageStatus(*row)

    def status(self, id: str) -> MessageStatus | None:
        """The message with this id, from any process; ``None`` if unknown or purged."""
        return self._read(
            lambda c: self._one(c, f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (id,))
        )

    def by_key(self, key: str) -> MessageStatus | None:
        """The message with this idempotency key; ``None`` if unknown or purged."""
        return self._read(
            lambda c: (
                self._one(c, f"SELECT {_COLUMNS} FROM messages WHERE key = ?", (key,))
                or self._one(
                    c, f"SELECT {_COLUMNS} FROM messages WHERE id = ? AND key IS NULL", (key,)
                )
            )
        )

    def _one(
        self, conn: sqlite3.Connection, sql: str, params: tuple[Any, ...]
    ) -> MessageStatus | None:
        row = conn.execute(sql, params).fetchone()
        return None if row is None else self._status(row)

    def list(
        self,
        status: Status | None = None,
        origin: str | None = None,
        limit: int = 100,
        after_id: str | None = None,
    ) -> list[MessageStatus]:
        """One page of messages in id (creation) order; pass the last id as ``after_id``
        for the next page. Filtering by ``status`` uses an index; by ``origin`` alone it
        scans (in id order, a page at a time)."""
        if status is not None and status not in STATUSES:
            raise ValueError(f"status: must be one of {', '.join(STATUSES)}")
        if not 1 <= limit <= MAX_BATCH:
            raise ValueError(f"limit: must be between 1 and {MAX_BATCH}")
        where: list[str] = []
        params: list[Any] = []
        if status == "pending":
            where.append("status = 'pending'")
        elif status is not None:
            where.append("status = ? AND status != 'pending'")  # matches messages_status
            params.append(status)
        for clause, value in (("origin = ?", origin), ("id > ?", after_id)):
            if value is not None:
                where.append(clause)
                params.append(value)
        sql = f"SELECT {_COLUMNS} FROM messages"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY id LIMIT ?"
        params.append(limit)
        return self._read(lambda c: [self._status(r) for r in c.execute(sql, params)])

    def stats(self, now: float | None = None) -> Stats:
        """Counts per status and per origin, the age of the oldest pending message and when
        the next one is due, from one snapshot. It reads indexes only: its cost grows with
        the unfinished and dead messages, plus a cheap count of the delivered ones."""
        at = self._now(now)

        def query(conn: sqlite3.Connection) -> Stats:
            counts = dict.fromkeys(STATUSES, 0)
            origins: dict[str, OriginCounts] = {}
            oldest: float | None = None

            def entry(origin: str) -> OriginCounts:
                return origins.setdefault(origin, {"pending": 0, "delivering": 0, "dead": 0})

            for origin, st, n, first in conn.execute(
                "SELECT origin, status, count(*), min(created_at) FROM messages"
                " INDEXED BY messages_due WHERE claimable_at IS NOT NULL"
                " GROUP BY origin, status"
            ):
                if st == "pending":
                    entry(origin)["pending"] += n
                    oldest = first if oldest is None else min(oldest, first)
                else:
                    entry(origin)["delivering"] += n
                counts[st] += n
            for origin, n, first in conn.execute(
                "SELECT origin, count(*), min(created_at) FROM messages"
                " INDEXED BY messages_ordering WHERE blocked = 1 GROUP BY origin"
            ):
                entry(origin)["pending"] += n
                counts["pending"] += n
                oldest = first if oldest is None else min(oldest, first)
            for origin, n in conn.execute(
                "SELECT origin, count(*) FROM messages INDEXED BY messages_status"
                " WHERE status = 'dead' AND status != 'pending' GROUP BY origin"
            ):
                entry(origin)["dead"] += n
                counts["dead"] += n
            counts["delivered"] = conn.execute(
                "SELECT count(*) FROM messages INDEXED BY messages_status"
                " WHERE status = 'delivered' AND status != 'pending'"
            ).fetchone()[0]
            due = self._earliest_due(conn)
            return Stats(
                total=sum(counts.values()),
                pending=counts["pending"],
                delivering=counts["delivering"],
                delivered=counts["delivered"],
                dead=counts["dead"],
                origins=dict(sorted(origins.items())),
                oldest_pending_age=None if oldest is None else max(0.0, at - oldest),
                next_due=due,
                transactions=self._transactions,
            )

        return self._read(query, snapshot=True)  # one snapshot for every count

    # -- operator actions -----------------------------------------------------------------

    @staticmethod
    def _revive(conn: sqlite3.Connection, seq: int, ordering_key: str | None, now: float) -> None:
        """Make a dead, delivered or pending message pending again, due ``now``, with a fresh
        schedule round. In an ordering key with unfinished messages it queues behind them."""
        queued = False
        if ordering_key is not None:
            queued = (
                conn.execute(
                    "SELECT 1 FROM messages INDEXED BY messages_ordering"
                    " WHERE ordering_key = ? AND blocked IS NOT NULL AND seq != ? LIMIT 1",
                    (ordering_key, seq),
                ).fetchone()
                is not None
            )
        conn.execute(
            "UPDATE messages SET status = 'pending', next_attempt_at = ?,"
            " round_start = attempts, delivered_at = NULL, lease_owner = NULL,"
            " lease_expires = NULL, claimable_at = ?, blocked = ? WHERE seq = ?",
            (
                now,
                None if queued else now,
                None if ordering_key is None else (1 if queued else 0),
                seq,
            ),
        )

    def retry(self, ids: Iterable[str], now: float | None = None) -> int:
        """Make dead (or pending) messages due now with a fresh schedule round; attempts are
        kept. Returns how many changed. Messages being delivered or delivered are left
        alone (see :meth:`replay`)."""
        at = self._now(now)
        wanted = list(dict.fromkeys(ids))
        changed = 0
        for start in range(0, len(wanted), MAX_BATCH):
            chunk = wanted[start : start + MAX_BATCH]

            def revive(conn: sqlite3.Connection, chunk: list[str] = chunk) -> int:
                n = 0
                for ident in chunk:
                    row = conn.execute(
                        "SELECT seq, ordering_key, status, blocked FROM messages WHERE id = ?",
                        (ident,),
                    ).fetchone()
                    if row is None or row[2] not in ("dead", "pending"):
                        continue
                    if row[2] == "pending":  # keeps its place; a queued one stays queued
                        conn.execute(
                            "UPDATE messages SET next_attempt_at = ?, round_start = attempts,"
                            " claimable_at = CASE WHEN blocked = 1 THEN NULL ELSE ? END"
                            " WHERE seq = ?",
                            (at, at, row[0]),
                        )
                    else:
                        self._revive(conn, row[0], row[1], at)
                    n += 1
                return n

            changed += self._write(revive)
        return changed

    def replay(
        self,
        since: float,
        now: float | None = None,
        status: Literal["delivered", "dead"] | None = None,
        batch: int = MAX_BATCH,
    ) -> int:
        """Send again every delivered and/or dead message created at or after ``since``.

        A replayed message keeps its id and key (the receiver's idempotency key): a receiver
        that still remembers the key ignores it, one that lost it (a restore from backup)
        processes it. Its attempts are kept, its schedule starts over, ``replays`` counts up.
        Runs in transactions of ``batch`` rows. Returns how many messages were replayed.
        """
        at = self._now(now)
        statuses = ("delivered", "dead") if status is None else (status,)
        if any(s not in ("delivered", "dead") for s in statuses):
            raise ValueError("status: must be 'delivered', 'dead' or None")
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch: must be between 1 and {MAX_BATCH}")
        cursor = _lowest_id(since)
        total = 0
        while True:

            def step(conn: sqlite3.Connection, after: str = cursor) -> tuple[int, str | None]:
                rows = conn.execute(
                    "SELECT seq, ordering_key, id, created_at, status FROM messages"
                    " INDEXED BY messages_id WHERE id >= ? ORDER BY id LIMIT ?",
                    (after, batch),
                ).fetchall()
                n = 0
                for seq, okey, _ident, created, st in rows:
                    if created >= since and st in statuses:
                        self._revive(conn, seq, okey, at)
                        conn.execute(
                            "UPDATE messages SET replays = replays + 1 WHERE seq = ?", (seq,)
                        )
                        n += 1
                last = rows[-1][2] + "\x00" if len(rows) == batch else None
                return n, last

            n, nxt = self._write(step)
            total += n
            if nxt is None:
                return total
            cursor = nxt

    def purge(self, delivered_before: float, batch: int = MAX_BATCH) -> int:
        """Delete delivered messages delivered before ``delivered_before``, ``batch`` rows per
        transaction (writers are never held up long). Dead messages are kept until retried.
        Returns how many were deleted."""
        if not 1 <= batch <= MAX_BATCH:
            raise ValueError(f"batch: must be between 1 and {MAX_BATCH}")
        total = 0
        while True:

            def step(conn: sqlite3.Connection) -> int:
                cur = conn.execute(
                    "DELETE FROM messages WHERE seq IN (SELECT seq FROM messages"
                    " INDEXED BY messages_purge WHERE status = 'delivered'"
                    " AND delivered_at < ? ORDER BY delivered_at LIMIT ?)",
                    (delivered_before, batch),
                )
                return cur.rowcount

            n = self._write(step)
            total += n
            if n < batch:
                if total:
                    logger.debug("outbox %s: purged %d delivered messages", self.path, total)
                    self._checkpoint_quietly()
                return total

    # -- lifecycle ------------------------------------------------------------------------

    def close(self) -> None:
        """Wait for running writes, then close the file. Later calls raise ``OutboxError``."""
        if self._pid != os.getpid():
            self._after_fork()
        with self._lock:
            self._closed = True
            while self._busy:
                self._wait_idle()
        with self._read_lock:
            self._close_connections()
        _stores.discard(self)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
