"""Schema versions: a file from an older version is migrated forward in one transaction,
one from a newer version is refused."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from sendoff.outbox import MIGRATIONS, SCHEMA_VERSION, OutboxError, Store
from sendoff.outbox.store import APPLICATION_ID

from .conftest import Clock, message


def _make_v1(path: Path) -> None:
    """A file exactly as the first schema version left it, with two messages in it."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("BEGIN")
    for statement in MIGRATIONS[0]:
        conn.execute(statement)
    conn.execute("PRAGMA user_version = 1")
    for n, status in ((1, "delivered"), (2, "pending")):
        conn.execute(
            "INSERT INTO messages (id, key, origin, method, url, wire, timeout, created_at,"
            " attempts, next_attempt_at, status, schedule, delivered_at, claimable_at)"
            " VALUES (?, ?, 'http://a.example:80', 'POST', ?, ?, 10, 100, ?, 100, ?, '[0, 5]',"
            " ?, ?)",
            (f"msg_v1_{n}", f"key-{n}", f"http://a.example/{n}", b"POST / HTTP/1.1\r\n\r\n",
             1 if status == "delivered" else 0, status,
             150.0 if status == "delivered" else None, None if status == "delivered" else 100),
        )  # fmt: skip
    conn.execute("COMMIT")
    conn.close()


def test_schema_is_at_the_latest_version(db_path: Path) -> None:
    assert SCHEMA_VERSION == len(MIGRATIONS) == 2
    with Store(db_path):
        pass
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert conn.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
    conn.close()


def test_a_v1_file_is_migrated_and_keeps_its_messages(db_path: Path, clock: Clock) -> None:
    _make_v1(db_path)
    with Store(db_path, clock=clock) as s:
        conn = sqlite3.connect(db_path)
        assert conn.execute("PRAGMA user_version").fetchone()[0] == 2
        columns = {r[1] for r in conn.execute("PRAGMA table_info(messages)")}
        indexes = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='index'")}
        conn.close()
        assert "replays" in columns
        assert "messages_purge" in indexes
        old = s.status("msg_v1_1")
        assert old is not None
        assert (old.status, old.key, old.replays, old.delivered_at) == (
            "delivered", "key-1", 0, 150.0,
        )  # fmt: skip
        assert s.add(message(1, key="key-2")).existing  # keys still deduplicate
        (c,) = s.claim("r", 10, 30.0)  # the v1 pending message is delivered as usual
        assert (c.id, c.schedule, c.attempt) == ("msg_v1_2", (0.0, 5.0), 1)
        s.delivered(c.id, "r", 200)
        assert s.purge(delivered_before=clock.now + 1) == 2  # the v2 index serves v1 rows
        assert s.replay(0) == 0


def test_a_failed_migration_leaves_the_file_at_its_version(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _make_v1(db_path)
    broken = (MIGRATIONS[0], ("ALTER TABLE messages ADD COLUMN replays INTEGER", "NOT SQL"))
    monkeypatch.setattr("sendoff.outbox.store.MIGRATIONS", broken)
    with pytest.raises(OutboxError):
        Store(db_path)
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == 1
    assert "replays" not in {r[1] for r in conn.execute("PRAGMA table_info(messages)")}
    conn.close()
    monkeypatch.undo()
    with Store(db_path) as s:  # the real migration still applies
        assert s.status("msg_v1_2") is not None


def test_a_file_from_a_newer_version_is_refused(db_path: Path) -> None:
    with Store(db_path) as s:
        s.add(message(1))
    conn = sqlite3.connect(db_path)
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.commit()
    conn.close()
    with pytest.raises(OutboxError) as info:
        Store(db_path)
    assert info.value.cause == "newer_schema"
    assert "newer" in str(info.value)
    assert str(db_path) in str(info.value)
    conn = sqlite3.connect(db_path)  # untouched
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION + 1
    conn.close()


@pytest.mark.parametrize("trial", range(3))
def _open_together(path: Path, n: int) -> tuple[list[Store], list[BaseException]]:
    stores: list[Store] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(n)

    def open_it() -> None:
        barrier.wait()
        try:
            stores.append(Store(path, busy_timeout=10.0))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return stores, errors


@pytest.mark.parametrize("trial", range(3))
def test_stores_opening_a_new_file_at_once_migrate_it_once(tmp_path: Path, trial: int) -> None:
    """Six stores (six connections, as six processes would have) open the same new file at
    the same moment, over and over: none fails. Switching to WAL answers BUSY at once while
    another connection holds the lock, and a store must not mistake the tables another one
    just created for a foreign database."""
    for n in range(15):
        stores, errors = _open_together(tmp_path / f"new-{n}.sqlite3", 6)
        assert errors == []
        ids = [s.add(message(i)).id for i, s in enumerate(stores)]
        assert all(stores[0].status(i) is not None for i in ids)
        for s in stores:
            s.close()
