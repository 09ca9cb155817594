"""Group commit: concurrent adds share transactions, and each returns only once committed."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from sendoff.outbox import OutboxError, Store
from tests.support.process_server import wait_until

from .conftest import message, worker


# With synchronous=NORMAL a commit takes tens of microseconds, often less than it takes the
# OS to wake the next thread, so fewer rows find a transaction to join than with FULL, whose
# commits wait for an fsync; the deterministic test below checks the mechanism itself.
@pytest.mark.parametrize(("durability", "at_most"), [("normal", 0.75), ("full", 0.4)])
def test_eight_threads_share_transactions_and_each_row_is_committed_on_return(
    make_store: Callable[..., Store], db_path: Path, durability: str, at_most: float
) -> None:
    """Eight threads add at the same moment, round after round (a barrier starts each
    round); right after add() returns each checks from its own connection that its row is
    committed. Without group commit there would be one transaction per row."""
    store = make_store(durability=durability)
    rounds = 150
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def run(t: int) -> None:
        check = sqlite3.connect(db_path)  # another connection: sees committed rows only
        for i in range(rounds):
            msg = message(i, key=f"t{t}-{i}")
            barrier.wait()
            added = store.add(msg)
            found = check.execute("SELECT 1 FROM messages WHERE id = ?", (added.id,)).fetchone()
            if found is None:
                errors.append(added.id)
        check.close()

    before = store.transactions
    threads = [threading.Thread(target=run, args=(t,)) for t in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    rows = 8 * rounds
    commits = store.transactions - before
    assert errors == []
    assert store.stats()["total"] == rows
    assert commits <= rows * at_most, f"{commits} transactions for {rows} rows"


def test_writes_arriving_while_a_transaction_waits_join_it(store: Store, db_path: Path) -> None:
    """Deterministic: another process holds the write lock, so the transaction the first
    add() leads cannot begin; seven more adds arrive meanwhile and all eight commit in that
    one transaction."""
    holder = worker("hold_lock", str(db_path), stdin=-1, stdout=-1)
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    results: dict[int, str] = {}

    def add(i: int) -> None:
        results[i] = store.add(message(i)).id

    before = store.transactions
    threads = [threading.Thread(target=add, args=(i,)) for i in range(8)]
    try:
        for t in threads:
            t.start()
        wait_until(lambda: store.pending_writes == 8, timeout=10, interval=0.001)
        assert results == {}  # nobody returned: nothing is committed yet
    finally:
        holder.stdin.write("go\n")
        holder.stdin.flush()
    for t in threads:
        t.join(timeout=30)
    assert holder.wait(timeout=30) == 0
    assert len(results) == 8
    assert store.transactions - before == 1
    assert store.pending_writes == 0
    assert all(store.status(i) is not None for i in results.values())


def test_a_failed_group_gives_every_caller_its_own_error_and_writes_nothing(
    make_store: object, db_path: Path
) -> None:
    store = make_store(busy_timeout=0.2)  # type: ignore[operator]
    holder = worker("hold_lock", str(db_path), stdin=-1, stdout=-1)
    assert holder.stdout is not None
    assert holder.stdin is not None
    assert holder.stdout.readline().strip() == "locked"
    errors: dict[int, BaseException] = {}

    def add(i: int) -> None:
        try:
            store.add(message(i))
        except OutboxError as exc:
            errors[i] = exc

    try:
        threads = [threading.Thread(target=add, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
    finally:
        holder.stdin.write("go\n")
        holder.stdin.flush()
        holder.wait(timeout=30)
    assert sorted(errors) == list(range(6))
    assert len({id(e) for e in errors.values()}) == 6  # one exception object per caller
    assert all(getattr(e, "cause", None) == "locked" for e in errors.values())
    assert store.stats()["total"] == 0
    store.add(message(99))  # the lock is gone: the store works again
    assert store.stats()["total"] == 1


@pytest.mark.parametrize("n", [1, 3])
def test_close_waits_for_running_writes(store: Store, n: int) -> None:
    ids: list[str] = []
    threads = [threading.Thread(target=lambda: ids.append(store.add(message(0)).id))
               for _ in range(n)]  # fmt: skip
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    store.close()
    with Store(store.path) as again:
        assert all(again.status(i) is not None for i in ids)


def test_the_same_key_from_many_threads_at_once_is_stored_once(store: Store) -> None:
    barrier = threading.Barrier(8)
    results = []

    def add() -> None:
        barrier.wait()
        results.append(store.add(message(0, key="signup:42")))

    threads = [threading.Thread(target=add) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len({r.id for r in results}) == 1
    assert sorted(r.existing for r in results) == [False] + [True] * 7
    assert store.stats()["total"] == 1
