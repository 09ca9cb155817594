"""The thread relay at work: waits, rather than claims in a loop, while its origins are
at their cap."""

from __future__ import annotations

import logging
import re
import sqlite3
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from sendoff import Outbox
from sendoff.delivery import logwindow
from sendoff.outbox import relay as relay_module
from tests.support.process_server import wait_until
from tests.support.recording_server import RecordingServer, Reply


def test_a_relay_at_its_per_origin_cap_does_not_spin(
    tmp_path: Path, make_server: Callable[..., RecordingServer]
) -> None:
    """20 due messages, 1 allowed in flight, 0.5 s answers: the relay claims when an
    outcome frees room (and every POLL_EVERY), not in a busy loop of write transactions
    (it made ~34,000 a second before)."""
    server = make_server(lambda req: Reply(200, b"ok", delay=0.5))
    outbox = Outbox(tmp_path / "o.sqlite3", connections_per_origin=1)
    try:
        for n in range(20):
            outbox.fire("POST", server.url("/hook"), json={"n": n})
        server.wait_for(1, timeout=10)
        before, cpu = outbox.store.transactions, time.process_time()
        time.sleep(1.0)
        assert outbox.store.transactions - before < 50
        assert time.process_time() - cpu < 0.3
        assert server.count <= 4  # still one at a time
    finally:
        outbox.exit_timeout = 0.1
        outbox.close()


def test_messages_for_an_origin_with_room_go_out_while_others_are_held_back(
    tmp_path: Path, make_server: Callable[..., RecordingServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """An origin that never answers holds its cap in flight and has more messages due (the
    relay is held back); a message then stored for another origin goes out at once, not
    after the relay's poll (made 60 s long here)."""
    monkeypatch.setattr(relay_module, "POLL_EVERY", 60.0)
    release = threading.Event()
    silent = make_server(lambda req: Reply(200, b"late", hold=release))
    healthy = make_server()
    outbox = Outbox(tmp_path / "o.sqlite3", connections_per_origin=1, timeout=120)
    try:
        cap = relay_module.QUEUED_PER_CONNECTION  # one connection
        for n in range(cap + 5):  # five more than may be in flight
            outbox.fire("POST", silent.url("/hook"), json={"n": n})
        silent.wait_for(1, timeout=10)
        relay = outbox.relay
        assert isinstance(relay, relay_module.Relay)
        wait_until(lambda: relay.in_flight() > cap // 2, timeout=10)  # the rest held back
        outbox.fire("POST", healthy.url("/hook"), json={"n": 0})
        healthy.wait_for(1, timeout=10)
        assert silent.count == 1  # still hanging
        assert outbox.store.stats()["pending"] >= 5  # held back: at most cap are out
    finally:
        release.set()
        outbox.exit_timeout = 0.1
        outbox.close()


def test_origins_that_never_answer_do_not_hold_back_a_healthy_one(
    tmp_path: Path, make_server: Callable[..., RecordingServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Four origins hold their cap of messages in flight without answering; a healthy
    origin's messages still go out as fast as its answers come back. The relay's poll is
    made 60 s long, so a relay that waited for it (instead of waking on the healthy
    origin's outcomes) would leave them waiting past the 20 s deadline."""
    monkeypatch.setattr(relay_module, "POLL_EVERY", 60.0)
    release = threading.Event()
    silent = [make_server(lambda req: Reply(200, b"late", hold=release)) for _ in range(4)]
    healthy = make_server()
    outbox = Outbox(tmp_path / "o.sqlite3", connections_per_origin=1, timeout=120)
    try:
        cap = relay_module.QUEUED_PER_CONNECTION  # one connection each
        for server in silent:
            for n in range(cap):
                outbox.fire("POST", server.url("/hook"), json={"n": n})
        for server in silent:
            server.wait_for(1, timeout=10)  # on the wire, and the rest queued behind it
        receipts = [outbox.fire("POST", healthy.url("/hook"), json={"n": n}) for n in range(200)]
        healthy.wait_for(200, timeout=20)
        deadline = time.monotonic() + 20
        while any((state := r.status()) is None or state.status != "delivered"
                  for r in receipts):
            assert time.monotonic() < deadline, "the healthy origin's outcomes were not recorded"
            time.sleep(0.02)
        assert all(server.count == 1 for server in silent)  # still hanging
    finally:
        release.set()
        outbox.exit_timeout = 0.1
        outbox.close()


def test_outcomes_go_in_even_when_the_claim_beside_them_fails(
    tmp_path: Path, make_server: Callable[..., RecordingServer], caplog: pytest.LogCaptureFixture
) -> None:
    """A relay's turn writes its outcomes back and claims in one transaction. When the claim
    fails (here on a row whose schedule cannot be read), the outcomes are written on their
    own: the message that was answered 200 ends delivered, not left delivering (to be sent
    again once its lease runs out); the claim's failure is logged, the write-back's not."""
    server = make_server(lambda req: Reply(200, b"ok", delay=0.5))
    path = tmp_path / "o.sqlite3"
    outbox = Outbox(path, lease=2.0)
    producer = Outbox(path, relay=None)
    try:
        sent = outbox.fire("POST", server.url("/a"), json={})
        server.wait_for(1, timeout=10)  # on the wire; answered in 0.5 s
        bad = producer.fire("POST", server.url("/bad"), json={})
        with sqlite3.connect(path) as conn:
            conn.execute("UPDATE messages SET schedule = 'oops' WHERE id = ?", (bad.id,))

        def delivered() -> bool:
            state = outbox.status(sent.id)
            return state is not None and state.status == "delivered"

        with caplog.at_level(logging.WARNING, logger="sendoff"):
            wait_until(delivered, timeout=10)
        assert [rec.path for rec in server.received] == ["/a"]
        said = [r.getMessage() for r in caplog.records]
        assert "the outbox relay could not claim messages" in said
        assert not any("could not write" in text for text in said)
    finally:
        outbox.exit_timeout = 0.1
        outbox.close()
        producer.close()


def _dead_told(lines: list[str]) -> int:
    """How many dead messages the "is dead" warnings account for: a line names one, a
    line after a quiet window adds "(and N more like it ...)", a summing up "N more"."""
    told = 0
    for text in lines:
        if summed := re.search(r"; (\d+) more request\(s\) to \S+ ended like it", text):
            told += int(summed[1])
        elif more := re.search(r"\(and (\d+) more like it in the last", text):
            told += 1 + int(more[1])
        else:
            told += 1
    return told


def test_a_receiver_refusing_everything_does_not_flood_the_log(
    tmp_path: Path,
    make_server: Callable[..., RecordingServer],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """300 messages answered 400 are dead at once. The relay logged a line for each; now
    the first of an origin goes out at once and the others of the same window (1 s here)
    are summed up in one line when it has passed: at most two lines per window, and
    together they account for every one of the 300, all on the ``sendoff.outbox`` logger."""
    monkeypatch.setattr(logwindow, "LOG_EVERY", 1.0)
    server = make_server(lambda req: Reply(400, b"no such hook"))
    outbox = Outbox(tmp_path / "o.sqlite3")
    started = time.monotonic()
    try:
        with caplog.at_level(logging.WARNING, logger="sendoff"):
            for n in range(300):
                outbox.fire("POST", server.url("/hook"), json={"n": n})
            assert outbox.flush(30)

            def dead_lines() -> list[str]:
                return [r.getMessage() for r in caplog.records if " is dead" in r.getMessage()]

            wait_until(lambda: _dead_told(dead_lines()) >= 300, timeout=10)
        windows = (time.monotonic() - started) / logwindow.LOG_EVERY + 1
        lines = dead_lines()
        assert _dead_told(lines) == 300
        assert len(lines) <= 2 * windows
        assert lines[0].startswith("outbox message msg_")
        assert "is dead: " in lines[0]
        assert "400" in lines[0]
        assert outbox.store.stats()["dead"] == 300
        assert server.count == 300  # each was sent once: final at the first answer
        # the first line and the summing-up both come from the outbox's logger, where its
        # other lines go (a user who filters "sendoff.outbox" sees them all)
        names = {r.name for r in caplog.records if " is dead" in r.getMessage()}
        assert names == {"sendoff.outbox"}
    finally:
        outbox.close()


def test_large_messages_in_flight_stay_within_max_bytes(
    tmp_path: Path, make_server: Callable[..., RecordingServer]
) -> None:
    """20 messages of about 1 MB to a receiver that holds its answers: the relay hands the
    engine what fits in ``max_bytes`` and one more message (each claim takes at least
    one), not a batch of 20 MB; once the answers come, all 20 arrive, once each, whole.
    (Claims were bounded only by count: 40 messages of 4 MB took 500 MB of memory.)"""
    release = threading.Event()
    server = make_server(lambda req: Reply(200, b"ok", hold=release))
    budget = 3 * 2**20
    relay = relay_module.Relay(max_bytes=budget)
    outbox = Outbox(tmp_path / "o.sqlite3", relay=relay, timeout=60)
    body = "x" * 1_000_000
    try:
        for n in range(20):
            outbox.fire("POST", server.url(f"/big/{n}"), json={"n": n, "body": body})
        server.wait_for(4, timeout=20)
        counters = relay.counters()
        assert counters["in_flight"] == 4  # three fit in 3 MiB; the claim after them took one
        assert budget < counters["bytes_in_flight"] < budget + 1_100_000
        time.sleep(0.3)  # the relay is held back: nothing more goes out
        assert server.count == 4
        release.set()
        assert outbox.flush(60)
        assert sorted(req.path for req in server.received) == sorted(
            f"/big/{n}" for n in range(20)
        )
        assert all(len(req.body) > 1_000_000 for req in server.received)
        assert relay.counters()["bytes_in_flight"] == 0
    finally:
        release.set()
        outbox.close()
