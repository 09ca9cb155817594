"""Claiming: leases and their expiry, fairness across origins, FIFO per ordering key."""

from __future__ import annotations

import random
from collections import Counter, defaultdict

import pytest

from sendoff.outbox import Outcome, Store

from .conftest import Clock, message

A, B, C = "http://a.example:80", "https://b.example:443", "http://c.example:8080"


def test_a_valid_lease_is_never_given_twice_and_an_expired_one_comes_back(
    store: Store, clock: Clock
) -> None:
    ids = {store.add(message(i)).id for i in range(3)}
    t = clock.now
    first = store.claim("p1", 10, 30.0, now=t)
    assert {c.id for c in first} == ids
    assert all(c.lease_owner == "p1" and c.lease_expires == t + 30 for c in first)
    assert store.claim("p2", 10, 30.0, now=t + 29.999) == []  # still leased
    st = store.status(first[0].id)
    assert st is not None
    assert (st.status, st.lease_owner, st.attempts) == ("delivering", "p1", 1)
    assert store.delivered(first[0].id, "p1", 200, now=t + 10)
    again = store.claim("p2", 10, 30.0, now=t + 30)  # p1 "died": its leases ran out
    assert {c.id for c in again} == ids - {first[0].id}
    assert all(c.attempt == 2 and c.attempts == 2 for c in again)
    # p1 comes back to life too late: its results are ignored
    assert not store.delivered(again[0].id, "p1", 200, now=t + 31)
    assert not store.retry_later(again[0].id, "p1", 503, "x", t + 40, now=t + 31)
    assert store.delivered(again[0].id, "p2", 200, now=t + 31)


def test_a_claim_gives_back_exactly_what_was_stored(store: Store) -> None:
    """Every field a claim reads comes back as stored: wire bytes of every value, small
    and far above what a claim reads in line, exact reals, non-ASCII keys and URLs."""
    binary = bytes(range(256)) * 4
    big = b"POST /big HTTP/1.1\r\nContent-Length: 300000\r\n\r\n" + b"\x00\xff" * 150_000
    first_at, second_at = 1234567.123456789, 1234567.5
    stored = [
        store.add(message(0, wire=binary, timeout=0.1 + 0.2, key="clé-ü"), now=first_at),
        store.add(message(1, wire=big, url="http://a.example/ü?q=ß", ordering_key="ö"),
                  now=second_at),
        store.add(message(2), now=1234568.25),
    ]
    claimed = {c.id: c for c in store.claim("p1", 10, 30.0, now=1234570.0)}
    assert set(claimed) == {s.id for s in stored}
    first, second, third = (claimed[s.id] for s in stored)
    assert (first.wire, first.timeout, first.key) == (binary, 0.1 + 0.2, "clé-ü")
    assert first.created_at == first_at
    assert (second.wire, second.url) == (big, "http://a.example/ü?q=ß")
    assert (second.ordering_key, second.created_at) == ("ö", second_at)
    assert (third.wire, third.key) == (message(2).wire, third.id)
    assert store.finish("p1", [Outcome(c.id, "delivered", 200) for c in claimed.values()]) == 3


def test_a_lease_expiring_during_the_last_attempt_makes_the_message_dead(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    mid = store.add(message(1, schedule=(0, 1))).id
    (c,) = store.claim("p1", 1, 10.0)
    store.retry_later(c.id, "p1", 503, "busy", clock.now)
    (c,) = store.claim("p1", 1, 10.0)
    assert c.attempt == 2  # the last one the schedule allows; then p1 dies
    clock.advance(10)
    with caplog.at_level("WARNING", logger="sendoff.outbox"):
        assert store.claim("p2", 1, 10.0) == []
    assert [r.getMessage() for r in caplog.records] == [
        f"outbox {store.path}: message {mid} is dead: its lease expired on its last attempt"
    ]
    assert "token" not in caplog.text
    st = store.status(mid)
    assert st is not None
    assert st.last_status == 503  # the unknown last attempt does not erase what was known
    assert st is not None
    assert st.status == "dead"
    assert st.lease_owner is None
    assert st.last_error is not None
    assert "lease expired" in st.last_error


def test_a_batch_dying_with_its_relay_is_one_log_line(
    store: Store, clock: Clock, caplog: pytest.LogCaptureFixture
) -> None:
    """A relay killed with 40 messages out on their last attempt: the claim that finds
    them dead logs one line with the count, not 40."""
    ids = [store.add(message(n, schedule=(0,))).id for n in range(40)]
    assert len(store.claim("p1", 40, 10.0)) == 40
    clock.advance(10)
    with caplog.at_level("WARNING", logger="sendoff.outbox"):
        assert store.claim("p2", 40, 10.0) == []
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 1
    assert said[0].startswith(f"outbox {store.path}: 40 messages are dead: their lease expired")
    assert ids[0] in said[0]
    assert ids[5] not in said[0]
    assert "token" not in caplog.text
    assert store.stats()["dead"] == 40


def test_max_bytes_bounds_what_one_claim_takes(store: Store) -> None:
    """A claim stops before the message that would pass ``max_bytes`` (the first is always
    taken, however large); the rest stay pending for the next claim."""
    big = [store.add(message(n, wire=bytes([65 + n]) * 1000)).id for n in range(5)]
    first = store.claim("p1", 10, 10.0, max_bytes=2500)
    assert [c.id for c in first] == big[:2]
    assert [len(c.wire) for c in first] == [1000, 1000]
    (alone,) = store.claim("p1", 10, 10.0, max_bytes=10)  # larger than the bound: alone
    assert alone.id == big[2]
    assert alone.wire == b"C" * 1000
    assert store.stats()["pending"] == 2
    assert [c.id for c in store.claim("p1", 10, 10.0)] == big[3:]
    with pytest.raises(ValueError, match="max_bytes"):
        store.claim("p1", 10, 10.0, max_bytes=0)


def test_a_claim_cut_by_max_bytes_goes_on_with_the_next_origin(store: Store) -> None:
    """Origins take turns; a claim cut short by ``max_bytes`` leaves the next claim to
    start with the origin after the last one it served."""
    for origin in (A, B, C):
        for n in range(3):
            store.add(message(n, origin=origin, wire=b"x" * 100))
    cut = store.claim("p1", 10, 10.0, max_bytes=200)  # origins go in name order: A, C, B
    assert [c.origin for c in cut] == [A, C]
    after = store.claim("p1", 3, 10.0)
    assert [c.origin for c in after] == [B, A, C]


def test_origins_take_turns_so_a_backlog_does_not_fill_the_batch(store: Store) -> None:
    for i in range(300):
        store.add(message(i, origin=A))  # the slow origin's backlog, oldest first
    for i in range(3):
        store.add(message(i, origin=B))
        store.add(message(i, origin=C))
    batch = store.claim("r", 9, 30.0)
    assert Counter(c.origin for c in batch) == {A: 3, B: 3, C: 3}


def test_round_robin_continues_where_the_last_claim_stopped(store: Store) -> None:
    origins = [f"http://o{i}.example:80" for i in range(6)]
    for o in origins:
        for i in range(3):
            store.add(message(i, origin=o))
    served: list[str] = []
    for _ in range(3):
        served += [c.origin for c in store.claim("r", 4, 30.0)]
    # 12 claims over 6 origins: every origin got exactly 2, none was skipped
    assert Counter(served) == dict.fromkeys(origins, 2)


def test_per_origin_cap_counts_what_is_in_flight_and_paused_origins_wait(store: Store) -> None:
    for i in range(20):
        store.add(message(i, origin=A))
        store.add(message(i, origin=B))
        store.add(message(i, origin=C))
    batch = store.claim("r", 50, 30.0, per_origin_limit=4, in_flight={A: 3}, paused={C})
    assert Counter(c.origin for c in batch) == {A: 1, B: 4}
    batch = store.claim("r", 50, 30.0, per_origin_limit=4, in_flight={A: 4, B: 4})
    assert Counter(c.origin for c in batch) == {C: 4}
    with pytest.raises(ValueError, match="per_origin_limit"):
        store.claim("r", 5, 30.0, per_origin_limit=0)


def test_only_due_messages_are_claimed(store: Store, clock: Clock) -> None:
    store.add(message(1, schedule=(60, 60)))  # first attempt in a minute
    assert store.claim("r", 10, 30.0) == []
    assert store.next_due() == pytest.approx(clock.now + 60, rel=0, abs=12)  # +-20% jitter
    due = store.next_due()
    assert due is not None
    assert store.claim("r", 10, 30.0, now=due - 0.01) == []
    assert len(store.claim("r", 10, 30.0, now=due)) == 1


@pytest.mark.parametrize("bad", [{"limit": 0}, {"limit": 1001}, {"lease_seconds": 0.0}])
def test_claim_arguments_are_checked(store: Store, bad: dict[str, float]) -> None:
    args: dict[str, float] = {"limit": 5, "lease_seconds": 30.0}
    args.update(bad)
    with pytest.raises(ValueError, match=next(iter(bad))):
        store.claim("r", int(args["limit"]), args["lease_seconds"])


def test_fifo_per_ordering_key_with_random_failures(store: Store, clock: Clock) -> None:
    """1,000 messages over 10 ordering keys, two relays claiming in turn, 30% of attempts
    failing: every key's messages are first delivered in enqueue order, one at a time."""
    rng = random.Random(11)
    keys = [f"order-{k}" for k in range(10)]
    enqueued: dict[str, list[str]] = defaultdict(list)
    unordered = set()
    schedule = (0,) + (1,) * 40  # retry a second later, many times
    for i in range(1000):
        key = keys[rng.randrange(10)]
        origin = A if i % 3 else B  # one key's messages may go to several origins
        enqueued[key].append(store.add(message(i, origin=origin, ordering_key=key,
                                                schedule=schedule)).id)  # fmt: skip
        if i % 10 == 0:
            unordered.add(store.add(message(i, origin=C, schedule=schedule)).id)
    delivered: dict[str | None, list[str]] = defaultdict(list)
    leased: dict[str, dict[str, str | None]] = {"r1": {}, "r2": {}}  # owner -> id -> key
    rounds = 0
    while sum(len(v) for v in delivered.values()) < 1100 and rounds < 20_000:
        rounds += 1
        owner = "r1" if rounds % 2 else "r2"
        for c in store.claim(owner, 20, 30.0):
            if c.ordering_key is not None:
                # one at a time: no other message of this key is leased by anyone
                assert all(k != c.ordering_key for held in leased.values() for k in held.values())
            leased[owner][c.id] = c.ordering_key
        # the owner finishes what it holds
        for mid, key in list(leased[owner].items()):
            del leased[owner][mid]
            if rng.random() < 0.3:
                assert store.retry_later(mid, owner, 503, "busy", clock.now + 1)
            else:
                assert store.delivered(mid, owner, 200)
                delivered[key].append(mid)
        clock.advance(0.5)
    for key in keys:
        assert delivered[key] == enqueued[key], key
    assert set(delivered[None]) == unordered
    s = store.stats()
    assert (s["delivered"], s["pending"], s["delivering"]) == (1100, 0, 0)


def test_a_dead_message_does_not_block_its_key_and_revived_ones_queue(
    store: Store, clock: Clock
) -> None:
    m1, m2, m3 = (store.add(message(i, ordering_key="k")).id for i in range(3))
    (c,) = store.claim("r", 10, 30.0)
    assert c.id == m1
    store.dead(m1, "r", 400, "bad")
    (c,) = store.claim("r", 10, 30.0)
    assert c.id == m2  # the dead one does not hold the key
    # revived while m2 is in flight and m3 queued: m1 queues, and the oldest queued goes next
    assert store.retry([m1]) == 1
    assert store.claim("r", 10, 30.0) == []
    store.delivered(m2, "r", 200)
    (c,) = store.claim("r", 10, 30.0)
    assert c.id == m1
    store.delivered(m1, "r", 200)
    (c,) = store.claim("r", 10, 30.0)
    assert c.id == m3
    store.delivered(m3, "r", 200)
    assert store.claim("r", 10, 30.0) == []
    assert store.stats()["delivered"] == 3


def test_a_message_waiting_for_a_retry_holds_its_key(store: Store, clock: Clock) -> None:
    m1, m2 = (store.add(message(i, ordering_key="k")).id for i in range(2))
    other = store.add(message(9, ordering_key="other")).id
    batch = store.claim("r", 10, 30.0)
    assert {c.id for c in batch} == {m1, other}
    store.retry_later(m1, "r", 503, "busy", clock.now + 300)
    store.delivered(other, "r", 200)
    clock.advance(299)
    assert store.claim("r", 10, 30.0) == []  # m2 waits for m1
    clock.advance(1)
    (c,) = store.claim("r", 10, 30.0)
    assert c.id == m1
    store.release("r")  # a clean shutdown keeps the order too
    (c,) = store.claim("r2", 10, 30.0)
    assert c.id == m1
    store.delivered(m1, "r2", 200)
    (c,) = store.claim("r2", 10, 30.0)
    assert c.id == m2


def test_outcomes_are_stored_as_text_any_reader_can_read(store: Store, clock: Clock) -> None:
    """An error text with NUL or a lone surrogate (say, from a server's reason phrase) is
    stored readable, not cut at the NUL; a retry time that is not finite is refused before
    anything is written."""
    first, second = store.add(message(0)), store.add(message(1))
    claimed = store.claim("p1", 10, 30.0, now=clock.now)
    assert len(claimed) == 2
    with pytest.raises(ValueError, match="next_attempt_at"):
        store.finish("p1", [Outcome(first.id, "retry", 503, "x", float("inf"))], now=clock.now)
    assert store.finish("p1", [
        Outcome(first.id, "dead", 400, "bad\x00request"),
        Outcome(second.id, "dead", None, "broken \udc80 text"),
    ], now=clock.now) == 2
    one, two = store.status(first.id), store.status(second.id)
    assert one is not None
    assert two is not None
    assert (one.status, one.last_error) == ("dead", "bad\ufffdrequest")
    assert (two.status, two.last_error) == ("dead", "broken ? text")
    with pytest.raises(ValueError, match="ordering_key"):
        store.add(message(2, ordering_key="a\x00b"))


def test_one_write_back_of_every_kind_of_outcome_sets_each_row_exactly(
    store: Store, clock: Clock
) -> None:
    """Deliveries answered 200 and 204 (written a status at a time), a delivery carrying an
    error text, a retry and a dead message, in one finish(): each row gets its own status,
    answer, error, times and lease fields; an outcome whose lease is someone else's and an
    id twice change nothing more."""
    t = clock.now
    ids = [store.add(message(i)).id for i in range(7)]
    assert len(store.claim("p1", 6, 30.0, now=t)) == 6  # ids[6] stays pending
    before = {i: store.status(i) for i in ids}
    applied = store.finish("p1", [
        Outcome(ids[0], "delivered", 200), Outcome(ids[1], "delivered", 204),
        Outcome(ids[2], "delivered", 200), Outcome(ids[3], "delivered", 202, "slow"),
        Outcome(ids[4], "retry", 503, "busy", t + 60), Outcome(ids[5], "dead", 400, "no"),
        Outcome(ids[6], "delivered", 200), Outcome(ids[0], "delivered", 500),
    ], now=t + 1)  # fmt: skip
    assert applied == 6
    rows = {i: store.status(i) for i in ids}
    got = {
        i: (r.status, r.last_status, r.last_error, r.delivered_at, r.lease_owner,
            r.lease_expires, r.next_attempt_at)
        for i, r in rows.items() if r is not None
    }  # fmt: skip
    first_try = before[ids[4]]
    assert first_try is not None
    assert got == {
        ids[0]: ("delivered", 200, None, t + 1, None, None, first_try.next_attempt_at),
        ids[1]: ("delivered", 204, None, t + 1, None, None, first_try.next_attempt_at),
        ids[2]: ("delivered", 200, None, t + 1, None, None, first_try.next_attempt_at),
        ids[3]: ("delivered", 202, "slow", t + 1, None, None, first_try.next_attempt_at),
        ids[4]: ("pending", 503, "busy", None, None, None, t + 60),
        ids[5]: ("dead", 400, "no", None, None, None, first_try.next_attempt_at),
        ids[6]: ("pending", None, None, None, None, None, first_try.next_attempt_at),
    }
    assert [c.id for c in store.claim("p2", 10, 30.0, now=t + 60)] == [ids[6], ids[4]]


def test_finish_and_claim_is_one_transaction_that_writes_back_first(
    store: Store, clock: Clock
) -> None:
    """A relay's turn: the outcomes are written back, then the claim sees the file as they
    left it (a retry due at once is claimed again), all in one commit; outcomes that no
    longer hold their lease are not applied, and bad outcomes raise before anything is
    written or claimed."""
    t = clock.now
    ids = [store.add(message(i)).id for i in range(4)]
    first = store.claim("p1", 2, 30.0, now=t)
    before = store.transactions
    applied, claimed, due = store.finish_and_claim(
        "p1",
        [Outcome(first[0].id, "delivered", 200), Outcome(first[1].id, "retry", 503, "x", t),
         Outcome(ids[3], "delivered", 200)],  # not p1's: ignored
        10, 30.0, now=t,
    )  # fmt: skip
    assert store.transactions == before + 1
    assert applied == 2
    assert sorted(c.id for c in claimed) == sorted([first[1].id, ids[2], ids[3]])
    assert next(c for c in claimed if c.id == first[1].id).attempt == 2
    assert due == t + 30.0  # nothing else is due: the leases just taken run out then
    done = store.status(first[0].id)
    assert done is not None
    assert done.status == "delivered"
    with pytest.raises(ValueError, match="verdict"):
        store.finish_and_claim("p1", [Outcome(ids[2], "lost", 200)], 10, 30.0, now=t)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit"):
        store.finish_and_claim("p1", [Outcome(ids[2], "delivered", 200)], 0, 30.0, now=t)
    assert store.transactions == before + 1
    again = store.status(ids[2])
    assert again is not None
    assert (again.status, again.lease_owner) == ("delivering", "p1")


def test_unfinished_and_settled_follow_every_state(store: Store, clock: Clock) -> None:
    """The cheap checks the relays' flush() polls agree with stats() through a message's
    life: pending, delivering, a retry waiting, a second message of an ordering key queued
    behind its head, dead, delivered."""

    def agree(now: float) -> tuple[bool, bool]:
        stats = store.stats(now=now)
        due = stats["next_due"]
        assert store.unfinished() == bool(stats["pending"] or stats["delivering"])
        assert store.settled(now) == (not stats["delivering"] and (due is None or due > now))
        return store.unfinished(), store.settled(now)

    t = clock.now
    assert agree(t) == (False, True)
    head = store.add(message(0, ordering_key="k")).id
    queued = store.add(message(1, ordering_key="k")).id  # blocked behind head: not claimable
    assert agree(t) == (True, False)  # head is due
    assert [c.id for c in store.claim("p1", 10, 30.0, now=t)] == [head]
    assert agree(t) == (True, False)  # head is out
    assert store.finish("p1", [Outcome(head, "retry", 503, "x", t + 5)], now=t) == 1
    assert agree(t) == (True, True)  # waiting for its retry: nothing due yet
    assert agree(t + 5) == (True, False)
    assert [c.id for c in store.claim("p1", 10, 30.0, now=t + 5)] == [head]
    assert store.finish("p1", [Outcome(head, "dead", 400, "no")], now=t + 5) == 1
    assert agree(t + 5) == (True, False)  # the queued one is the head now, and due
    assert [c.id for c in store.claim("p1", 10, 30.0, now=t + 5)] == [queued]
    assert store.finish("p1", [Outcome(queued, "delivered", 200)], now=t + 5) == 1
    assert agree(t + 5) == (False, True)  # one dead, one delivered: nothing left to do
