"""The store's API in one process: enqueue, dedupe, status, listing, stats, operator actions."""

from __future__ import annotations

import dataclasses
import json
import mmap
import os
import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sendoff import QueueFull, SendoffError
from sendoff.outbox import (
    SCHEMA_VERSION,
    OutboxError,
    OutboxFull,
    Outcome,
    Store,
    new_id,
    origin_of,
)
from sendoff.outbox.store import MAX_WIRE

from .conftest import Clock, message, worker


def test_file_is_created_in_wal_with_the_requested_durability(db_path: Path) -> None:
    assert not db_path.exists()
    with Store(db_path, durability="full", busy_timeout=2.5) as s:
        assert db_path.exists()
        assert s.durability == "full"
        conn = s._writer()  # the store's own connection carries the settings
        assert conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert conn.execute("PRAGMA busy_timeout").fetchone()[0] == 2500
    with Store(db_path) as s:
        assert s._writer().execute("PRAGMA synchronous").fetchone()[0] == 1  # NORMAL
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    conn.close()


def test_bad_arguments_raise_value_error(db_path: Path) -> None:
    with pytest.raises(ValueError, match="durability"):
        Store(db_path, durability="paranoid")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="path"):
        Store(":memory:")
    with pytest.raises(ValueError, match="max_rows"):
        Store(db_path, max_rows=0)


def test_add_returns_after_commit_and_status_shows_the_row(store: Store, db_path: Path) -> None:
    added = store.add(message(1, key=None, ordering_key=None))
    assert not added.existing
    assert added.status == "pending"
    assert added.id.startswith("msg_")
    assert len(added.id) == 36
    assert added.key == added.id  # the key defaults to the id
    other = sqlite3.connect(db_path)  # another connection sees it: it is committed
    assert other.execute("SELECT count(*) FROM messages WHERE id = ?", (added.id,)).fetchone()
    other.close()
    st = store.status(added.id)
    assert st is not None
    assert (st.status, st.attempts, st.method, st.origin) == (
        "pending", 0, "POST", "http://a.example:80",
    )  # fmt: skip
    assert st.url.endswith("?token=secret-1")
    assert "secret" not in repr(st)  # the URL stays out of reprs
    assert "url" not in st.to_dict()
    assert json.dumps(st.to_dict())
    assert store.by_key(added.id) == st
    assert store.status("msg_nope") is None
    assert store.by_key("nope") is None


def test_ids_sort_by_creation_time() -> None:
    ids = [new_id(t) for t in (1.0, 1.01, 2.5, 1_700_000_000.0, 1_700_000_000.01)]
    assert ids == sorted(ids)
    assert len({new_id(5.0) for _ in range(1000)}) == 1000


def test_origin_of() -> None:
    assert origin_of("https://Example.com/x?y=1") == "https://example.com:443"
    assert origin_of("http://u:p@example.com:8080/") == "http://example.com:8080"
    assert origin_of("http://[::1]/") == "http://[::1]:80"
    with pytest.raises(ValueError, match="url"):
        origin_of("ftp://example.com/")


@pytest.mark.parametrize(
    ("field", "value"),
    [("method", ""), ("url", ""), ("origin", "example.com"), ("wire", "text"),
     ("timeout", 0), ("timeout", float("nan")), ("key", ""), ("ordering_key", 5),
     ("schedule", ())],
)  # fmt: skip
def test_malformed_messages_raise_naming_the_field(store: Store, field: str, value: object) -> None:
    with pytest.raises(ValueError, match=field):
        store.add(dataclasses.replace(message(1), **{field: value}))
    assert store.stats()["total"] == 0


def test_a_request_larger_than_sqlite_takes_is_refused_at_once(store: Store) -> None:
    """Past SQLite's length limit the insert failed with "string or blob too big" (an
    OutboxError with the cause "error"); now the size is named before anything is done.
    (An anonymous mapping: a gigabyte of address space, no gigabyte of memory.)"""
    with mmap.mmap(-1, MAX_WIRE + 1) as huge:
        wire = memoryview(huge)
        with pytest.raises(ValueError, match=r"wire: the request is 998,951,425 bytes"):
            store.add(dataclasses.replace(message(1), wire=wire))
        wire.release()
    assert store.stats()["total"] == 0


def test_dedupe_by_key_in_every_status(store: Store, clock: Clock) -> None:
    first = store.add(message(1, key="order-1:paid"))
    again = store.add(message(2, key="order-1:paid"))
    assert again.existing
    assert again.id == first.id
    assert again.status == "pending"
    (c,) = store.claim("r", 10, 30.0)
    assert store.add(message(3, key="order-1:paid")).status == "delivering"
    store.delivered(c.id, "r", 200)
    assert store.add(message(4, key="order-1:paid")).status == "delivered"
    assert store.stats()["total"] == 1
    # dead: the dead row is returned, not revived (the caller sees "dead" and may retry it)
    d = store.add(message(5, key="k-dead"))
    (c,) = store.claim("r", 10, 30.0)
    store.dead(c.id, "r", 400, "HTTP 400")
    again = store.add(message(6, key="k-dead"))
    assert again.existing
    assert again.id == d.id
    assert again.status == "dead"
    st = store.status(d.id)
    assert st is not None
    assert st.status == "dead"
    assert st.url.endswith("/hook/5?token=secret-5")
    # a key equal to a message's id is that message's key
    plain = store.add(message(7))
    assert store.add(message(8, key=plain.id)).existing
    # purged: the key is forgotten, a new message is stored
    clock.advance(100)
    assert store.purge(delivered_before=clock.now) == 1
    fresh = store.add(message(9, key="order-1:paid"))
    assert not fresh.existing
    assert fresh.id != first.id


def test_max_rows_raises_outbox_full_and_purge_makes_room(make_store: Callable[..., Store],
                                                          clock: Clock) -> None:  # fmt: skip
    s = make_store()
    for i in range(3):
        s.add(message(i))
    s.close()
    s = make_store(max_rows=5)  # the counter starts from the rows already there
    s.add(message(3))
    kept = s.add(message(4, key="last"))
    with pytest.raises(OutboxFull) as info:
        s.add(message(5))
    err = info.value
    assert isinstance(err, OutboxError)
    assert isinstance(err, QueueFull)
    assert isinstance(err, SendoffError)
    assert err.cause == "full"
    assert "full" in str(err)
    assert str(s.path) in str(err)
    assert s.add(message(6, key="last")).id == kept.id  # dedupe still answers
    claimed = s.claim("r", 2, 30.0)
    for c in claimed:
        s.delivered(c.id, "r", 200)
    clock.advance(1)
    assert s.purge(delivered_before=clock.now) == 2
    s.add(message(7))
    s.add(message(8))
    with pytest.raises(OutboxFull):
        s.add(message(9))
    assert s.stats()["total"] == 5


def test_list_pages_by_id_and_filters(store: Store, clock: Clock) -> None:
    ids = []
    for i in range(250):
        clock.advance(0.01)
        origin = "http://a.example:80" if i % 2 else "http://b.example:80"
        ids.append(store.add(message(i, origin=origin)).id)
    pages: list[list[str]] = []
    after = None
    while True:
        page = [m.id for m in store.list(limit=100, after_id=after)]
        if not page:
            break
        pages.append(page)
        after = page[-1]
    assert [len(p) for p in pages] == [100, 100, 50]
    assert [i for p in pages for i in p] == ids
    b = store.list(origin="http://b.example:80", limit=1000)
    assert [m.id for m in b] == ids[0::2]
    claimed = store.claim("r", 30, 60.0)
    for c in claimed[:10]:
        store.dead(c.id, "r", 404, "HTTP 404")
    dead = store.list(status="dead")
    assert sorted(m.id for m in dead) == sorted(c.id for c in claimed[:10])
    assert [m.id for m in dead] == sorted(m.id for m in dead)
    assert len(store.list(status="delivering", limit=1000)) == 20
    assert len(store.list(status="pending", limit=1000)) == 220
    dead_b = store.list(status="dead", origin="http://b.example:80")
    assert all(m.origin == "http://b.example:80" and m.status == "dead" for m in dead_b)
    with pytest.raises(ValueError, match="status"):
        store.list(status="lost")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        store.list(limit=5000)


def test_stats_counts_statuses_origins_and_ages(store: Store, clock: Clock) -> None:
    empty = store.stats()
    assert empty["total"] == 0
    assert empty["oldest_pending_age"] is None
    assert empty["next_due"] is None
    t0 = clock.now
    for i in range(6):
        store.add(message(i, origin="http://a.example:80"))
    for i in range(4):
        store.add(message(i, origin="http://b.example:80", ordering_key="k"))  # 3 queued
    clock.advance(60)
    claimed = store.claim("r", 3, 30.0, per_origin_limit=1)  # a0 and b0 (the head of k)
    assert len(claimed) == 2
    a_claim = next(c for c in claimed if c.origin == "http://a.example:80")
    assert store.dead(a_claim.id, "r", 410, "gone")
    s = store.stats()
    assert (s["pending"], s["delivering"], s["delivered"], s["dead"], s["total"]) == (
        8,
        1,
        0,
        1,
        10,
    )
    assert s["origins"] == {
        "http://a.example:80": {"pending": 5, "delivering": 0, "dead": 1},
        "http://b.example:80": {"pending": 3, "delivering": 1, "dead": 0},
    }
    assert s["oldest_pending_age"] == pytest.approx(60.0)
    assert s["next_due"] == pytest.approx(t0)  # a1..a5 are due since t0
    assert s["transactions"] == store.transactions


def test_finish_applies_only_while_the_lease_is_held(store: Store) -> None:
    a, b, c = (store.add(message(i)).id for i in range(3))
    store.claim("r1", 3, 30.0)
    assert not store.delivered(a, "someone-else", 200)
    outcomes = [
        Outcome(a, "delivered", 200),
        Outcome(b, "dead", 400, "no"),
        Outcome(c, "retry", 503, "busy", next_attempt_at=5e6),
    ]
    assert store.finish("r1", outcomes) == 3
    assert store.finish("r1", [Outcome(a, "delivered", 200)]) == 0  # finished already
    sts = {x: store.status(x) for x in (a, b, c)}
    assert [s.status if s else None for s in sts.values()] == ["delivered", "dead", "pending"]
    st_c = sts[c]
    assert st_c is not None
    assert st_c.next_attempt_at == 5e6
    assert st_c.last_status == 503
    with pytest.raises(ValueError, match="next_attempt_at"):
        store.finish("r1", [Outcome(c, "retry", 503)])
    long_error = "x" * 10_000
    d = store.add(message(9)).id
    store.claim("r1", 1, 30.0)
    store.dead(d, "r1", None, long_error)
    st_d = store.status(d)
    assert st_d is not None
    assert st_d.last_error is not None
    assert len(st_d.last_error) == 2000


def test_release_gives_leases_back_without_counting_the_attempt(store: Store) -> None:
    ids = {store.add(message(i)).id for i in range(3)}
    other = store.add(message(9)).id
    claimed = store.claim("r1", 3, 300.0)
    assert {c.id for c in claimed} <= ids | {other}
    mine = {c.id for c in claimed}
    store.claim("r2", 10, 300.0)  # takes the remaining one
    assert store.release("r1") == 3
    for i in mine:
        st = store.status(i)
        assert st is not None
        assert (st.status, st.attempts, st.lease_owner) == ("pending", 0, None)
    again = store.claim("r3", 10, 300.0)  # due again at once, attempt 1 again
    assert {c.id for c in again} == mine
    assert all(c.attempt == 1 and c.attempts == 1 for c in again)


def test_retry_revives_dead_messages_with_a_fresh_schedule(store: Store, clock: Clock) -> None:
    mid = store.add(message(1, schedule=(0, 10))).id
    for _ in range(2):
        (c,) = store.claim("r", 1, 30.0)
        store.retry_later(c.id, "r", 500, "boom", clock.now, now=clock.now)
    st = store.status(mid)
    assert st is not None
    assert st.attempts == 2
    (c,) = store.claim("r", 1, 30.0)  # attempt 3 > schedule: the relay makes it dead
    assert c.attempt == 3
    store.dead(c.id, "r", 500, "boom")
    clock.advance(3600)
    assert store.retry([mid, "msg_unknown"]) == 1
    st = store.status(mid)
    assert st is not None
    assert (st.status, st.attempts, st.next_attempt_at) == ("pending", 3, clock.now)
    assert st.last_error == "boom"  # the history stays until the next attempt
    (c,) = store.claim("r", 1, 30.0)
    assert (c.attempt, c.attempts) == (1, 4)  # the schedule starts over, attempts go on
    assert store.retry([mid]) == 0  # delivering: left alone
    store.delivered(c.id, "r", 200)
    assert store.retry([mid]) == 0  # delivered: that is replay's job


def test_retry_of_a_waiting_message_makes_it_due_now(store: Store, clock: Clock) -> None:
    mid = store.add(message(1)).id
    (c,) = store.claim("r", 1, 30.0)
    store.retry_later(c.id, "r", 503, None, clock.now + 3600)
    assert store.claim("r", 1, 30.0) == []
    assert store.retry([mid]) == 1
    (c,) = store.claim("r", 1, 30.0)
    assert c.id == mid
    assert c.attempt == 1


def test_replay_resends_with_the_same_id_and_key(store: Store, clock: Clock) -> None:
    old = store.add(message(0, key="old")).id
    clock.advance(10)
    since = clock.now
    ids = [store.add(message(i, key=f"k{i}")).id for i in range(1, 11)]
    claimed = store.claim("r", 20, 30.0)
    for c in claimed:
        if c.id == ids[0]:
            store.dead(c.id, "r", 400, "bad")
        elif c.id != ids[1]:  # ids[1] stays delivering: replay leaves it alone
            store.delivered(c.id, "r", 200)
    clock.advance(10)
    assert store.replay(since, status="dead") == 1
    st = store.status(ids[0])
    assert st is not None
    assert (st.status, st.replays) == ("pending", 1)
    assert store.replay(since, batch=3) == 8  # delivered ones in ids[2:], across 4 batches
    for i in ids[2:]:
        st = store.status(i)
        assert st is not None
        assert (st.status, st.replays, st.delivered_at, st.attempts) == ("pending", 1, None, 1)
    st_old = store.status(old)
    assert st_old is not None
    assert st_old.status == "delivered"
    assert st_old.replays == 0
    again = store.claim("r2", 20, 30.0)
    assert {c.id for c in again} == set(ids[:1] + ids[2:])
    assert {c.key for c in again} == {f"k{i}" for i in [1, *range(3, 11)]}
    assert all(c.attempt == 1 for c in again)
    assert store.add(message(99, key="k5")).existing  # still deduped by its key
    with pytest.raises(ValueError, match="status"):
        store.replay(since, status="pending")  # type: ignore[arg-type]


def test_purge_deletes_old_delivered_rows_in_batches(store: Store, clock: Clock) -> None:
    for i in range(20):
        store.add(message(i))
    claimed = store.claim("r", 20, 30.0)
    for c in claimed[:15]:
        store.delivered(c.id, "r", 200)
        clock.advance(1)
    store.dead(claimed[15].id, "r", 404, "x")
    cutoff = clock.now - 5  # the last 5 delivered are younger
    before = store.transactions
    assert store.purge(delivered_before=cutoff, batch=4) == 10
    assert store.transactions - before == 3  # 4 + 4 + 2
    s = store.stats()
    assert (s["delivered"], s["dead"], s["delivering"], s["total"]) == (5, 1, 4, 10)
    assert store.purge(delivered_before=cutoff) == 0


def test_closed_store_raises(store: Store) -> None:
    store.close()
    store.close()  # twice is fine
    with pytest.raises(OutboxError) as info:
        store.add(message(1))
    assert info.value.cause == "closed"
    with pytest.raises(OutboxError):
        store.status("msg_x")


def test_status_from_another_process(store: Store, db_path: Path) -> None:
    mid = store.add(message(1, key="cross")).id
    (c,) = store.claim("r", 1, 30.0)
    store.retry_later(c.id, "r", 503, "unavailable", 123.0)
    proc = worker("status", str(db_path), mid, stdout=-1)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    seen = json.loads(out)
    assert seen["id"] == mid
    assert seen["key"] == "cross"
    assert (seen["status"], seen["attempts"], seen["last_status"]) == ("pending", 1, 503)
    assert seen["last_error"] == "unavailable"
    assert seen["next_attempt_at"] == 123.0


def test_forked_children_use_the_store_while_the_parent_writes(store: Store, db_path: Path) -> None:
    """fork() in the middle of a stream of writes from another thread, five times: each child
    writes and reads through the inherited Store (on its own connections) at once, and the
    parent goes on. A fork taken while a transaction runs would leave the child's new
    connections seeing an inherited lock holder (SQLite's per-process bookkeeping)."""
    before = store.add(message(0)).id
    parent_conn = store._writer()
    stop = threading.Event()
    parent_ids: list[str] = []

    def keep_adding() -> None:
        while not stop.is_set() and len(parent_ids) < 20_000:
            parent_ids.append(store.add(message(1)).id)

    t = threading.Thread(target=keep_adding)
    t.start()
    codes = []
    try:
        for _ in range(5):
            pid = os.fork()
            if pid == 0:  # child
                code = 1
                try:
                    ids = [store.add(message(2)).id for _ in range(50)]
                    ok = all(store.status(i) is not None for i in ids)
                    fresh = store._writer() is not parent_conn
                    code = 0 if ok and fresh and store.status(before) is not None else 3
                finally:
                    os._exit(code)
            _, status = os.waitpid(pid, 0)
            codes.append(os.waitstatus_to_exitcode(status))
    finally:
        stop.set()
        t.join()
    assert codes == [0] * 5
    assert store._writer() is parent_conn
    assert store.stats()["total"] == 1 + len(parent_ids) + 5 * 50
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()
