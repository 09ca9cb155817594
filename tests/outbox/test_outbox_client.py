"""The Outbox client end to end: stored, relayed through the engine to a real server on
loopback, retried on its schedule with the same key, signed afresh on every attempt,
dead letters listed and sent again from the command line."""

from __future__ import annotations

import itertools
import json
import random
import sqlite3
import subprocess
import sys
import threading
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from standardwebhooks import Webhook

from sendoff import InvalidRequest, Outbox, OutboxError, Request
from sendoff.outbox import NewMessage, Store
from sendoff.outbox.relay import Circuit, Relay
from sendoff.subscribers import StandardWebhooks
from tests.support.process_server import wait_until
from tests.support.recording_server import Recorded, RecordingServer, Reply

SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
FAST = (0.0, 0.05, 0.05, 0.05)  # a schedule for tests: retries a moment apart


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "outbox.sqlite3")


def _headers(rec: Recorded) -> dict[str, str]:
    return {k.lower(): v for k, v in rec.headers}


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    entry = "import sys; from sendoff.cli import main; sys.exit(main())"
    return subprocess.run([sys.executable, "-c", entry, *args], capture_output=True,
                          text=True, timeout=60, check=False)


def test_fire_returns_a_stored_receipt_and_the_relay_delivers_it(server, path):
    outbox = Outbox(path)
    receipt = outbox.fire("POST", server.url("/hook"), json={"order": 1042}, key="order-1042:paid")
    assert receipt.key == "order-1042:paid"
    assert receipt.id.startswith("msg_")
    assert not receipt.existing
    assert outbox.flush(10)
    [got] = server.wait_for(1)
    assert (got.method, got.path, json.loads(got.body)) == ("POST", "/hook", {"order": 1042})
    assert got.header("idempotency-key") == "order-1042:paid"
    state = outbox.status(receipt.id)
    assert state is not None
    assert (state.status, state.attempts, state.last_status) == ("delivered", 1, 200)
    outbox.close()


def test_request_execute_stores_and_the_id_is_the_default_key(server, path):
    outbox = Outbox(path)
    receipt = Request(server.url("/r")).client(outbox).method("POST").json({"a": 1}).execute()
    assert receipt.key == receipt.id
    assert outbox.flush(10)
    [got] = server.wait_for(1)
    assert got.header("idempotency-key") == receipt.id
    outbox.close()


def test_a_key_stored_already_is_not_stored_again(server, path):
    outbox = Outbox(path)
    first = outbox.fire("POST", server.url("/once"), json={}, key="k-1")
    assert outbox.flush(10)
    again = outbox.fire("POST", server.url("/once"), json={}, key="k-1")
    assert (again.existing, again.id) == (True, first.id)
    assert outbox.flush(10)
    assert server.count == 1
    outbox.close()


def test_503_then_200_is_retried_with_the_same_key_and_a_fresh_signature(make_server, path):
    answers = iter([503, 503, 200])
    srv = make_server(lambda req: Reply(next(answers), b"ok"))
    ticks = itertools.count(1_700_000_000, 7)  # a clock that moves 7 s per signature
    outbox = Outbox(path, schedule=FAST)
    outbox.emitter.attach(StandardWebhooks(SECRET, clock=lambda: float(next(ticks))))
    receipt = outbox.fire("POST", srv.url("/hook"), json={"event": "paid"}, key="order-7")
    final = receipt.wait(10)
    assert final is not None
    assert (final.status, final.attempts, final.last_status) == ("delivered", 3, 200)
    attempts = srv.received
    assert len(attempts) == 3
    heads = [_headers(rec) for rec in attempts]
    assert {h["idempotency-key"] for h in heads} == {"order-7"}
    assert {h["webhook-id"] for h in heads} == {"order-7"}
    stamps = [h["webhook-timestamp"] for h in heads]
    assert len(set(stamps)) == 3  # a fresh timestamp on every attempt
    reference = Webhook(SECRET)  # the spec's reference implementation signs the same way
    for rec, head in zip(attempts, heads, strict=True):
        when = datetime.fromtimestamp(int(head["webhook-timestamp"]), UTC)
        expected = reference.sign("order-7", when, rec.body.decode())
        assert head["webhook-signature"] == expected
    outbox.close()


def test_signatures_verify_with_the_reference_verifier(make_server, path):
    answers = iter([500, 200])
    srv = make_server(lambda req: Reply(next(answers), b"ok"))
    outbox = Outbox(path, schedule=FAST)
    outbox.emitter.attach(StandardWebhooks([SECRET, "whsec_" + "QUJD" * 8]))
    receipt = outbox.fire("POST", srv.url("/hook"), json={"n": 1})
    assert receipt.wait(10).status == "delivered"  # type: ignore[union-attr]
    assert len(srv.received) == 2
    for rec in srv.received:  # first and later attempts, with rotated secrets
        assert Webhook(SECRET).verify(rec.body, _headers(rec)) == {"n": 1}
    bad = _headers(srv.received[0]) | {"webhook-signature": "v1,AAAA"}
    with pytest.raises(Exception, match=r"(?i)signature"):
        Webhook(SECRET).verify(srv.received[0].body, bad)
    outbox.close()


def test_400_is_dead_at_once_then_listed_and_sent_again_by_the_cli(make_server, path):
    broken = threading.Event()
    broken.set()
    srv = make_server(lambda req: Reply(400 if broken.is_set() else 200, b"x"))
    outbox = Outbox(path, schedule=FAST)
    receipt = outbox.fire("POST", srv.url("/hook?api_key=s3cret"), json={"a": 1})
    final = receipt.wait(10)
    assert final is not None
    assert (final.status, final.attempts, final.last_status) == ("dead", 1, 400)
    listed = _cli("outbox", path, "list", "--status", "dead", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["id"], r["status"], r["last_status"]) for r in rows] == [(receipt.id, "dead", 400)]
    assert "s3cret" not in listed.stdout
    table = _cli("outbox", path, "list", "--status", "dead")
    assert receipt.id in table.stdout
    assert "s3cret" not in table.stdout
    broken.clear()  # the receiver is fixed
    again = _cli("outbox", path, "retry", receipt.id)
    assert (again.returncode, again.stdout) == (0, "1 message(s) will be sent again\n")
    outbox.relay.wake()  # type: ignore[union-attr]  # the relay polls the file anyway
    final = receipt.wait(10)
    assert final is not None
    assert (final.status, final.last_status) == ("delivered", 200)
    assert len(srv.received) == 2
    shown = _cli("outbox", path, "show", receipt.id, "--json")
    assert json.loads(shown.stdout)["status"] == "delivered"
    stats = json.loads(_cli("outbox", path, "stats", "--json").stdout)
    assert (stats["delivered"], stats["dead"]) == (1, 0)
    outbox.close()


def test_the_cli_shows_stored_control_characters_as_escapes(path: str) -> None:
    """Text in the file that came from outside (an error a server provoked, a key an older
    sendoff stored unchecked) may hold terminal escapes or CR LF: tables and ``show``
    print them escaped, so a listing cannot recolour the terminal or forge a row; JSON
    keeps the exact text."""
    outbox = Outbox(path, relay=None)
    receipt = outbox.fire("POST", "http://127.0.0.1:1/hook", json={}, key="order-1")
    outbox.close()
    key = "order-1\x1b]0;pwned\x07"
    error = "bad answer\r\nmsg_forged  dead  1  \x1b[2J \\x1b \u202edead\u2028"
    with sqlite3.connect(path) as conn:
        conn.execute("UPDATE messages SET key = ?, last_error = ?, status = 'dead',"
                     " claimable_at = NULL WHERE id = ?", (key, error, receipt.id))  # fmt: skip
    exact = json.loads(_cli("outbox", path, "show", receipt.id, "--json").stdout)
    assert (exact["key"], exact["last_error"]) == (key, error)
    # a header and one row; a line per field
    for args, lines in ((["list", "--status", "dead"], 2), (["show", receipt.id], len(exact))):
        shown = _cli("outbox", path, *args)
        assert shown.returncode == 0, shown.stderr
        assert not any(c in shown.stdout for c in "\x1b\x07\r\u202e\u2028"), shown.stdout
        assert shown.stdout.count("\n") == lines
        assert "\\x1b" in shown.stdout
    shown = _cli("outbox", path, "show", receipt.id)
    assert "order-1\\x1b]0;pwned\\x07" in shown.stdout
    assert "bad answer\\r\\nmsg_forged" in shown.stdout
    # a literal backslash-x is not mistaken for an escape; bidi and separators are escaped
    assert " \\\\x1b \\u202edead\\u2028" in shown.stdout


def test_the_schedule_runs_on_an_injected_clock(make_server, path):
    srv = make_server(lambda req: Reply(503, b"busy"))
    now = [1_000_000.0]
    store = Store(path, clock=lambda: now[0])
    relay = Relay(store, clock=lambda: now[0], rng=random.Random(1), timeout=5)
    prepared = Request(srv.url("/hook"), "POST").json({}).prepare()
    receipt = store.add(NewMessage(
        "POST", prepared.full_url, prepared.url.origin_text, prepared.wire(), 5.0,
        schedule=(0, 300, 1800),
    ))
    relay.start()
    try:
        relay.wake()
        state = wait_until(lambda: _attempts(store, receipt.id) == 1 and
                           store.status(receipt.id).status == "pending", timeout=10)
        # the second attempt is due 300 s (+-20%) later, on the injected clock
        first_retry = store.status(receipt.id).next_attempt_at - now[0]
        assert 240 <= first_retry <= 360
        now[0] += first_retry - 1
        relay.wake()
        assert _attempts(store, receipt.id) == 1  # not yet due
        now[0] += 2
        relay.wake()
        wait_until(lambda: _attempts(store, receipt.id) == 2 and
                   store.status(receipt.id).status == "pending", timeout=10)
        second_retry = store.status(receipt.id).next_attempt_at - now[0]
        assert 1440 <= second_retry <= 2160
        now[0] += second_retry + 1
        relay.wake()
        state = wait_until(lambda: store.status(receipt.id).status == "dead", timeout=10)
        assert state
        assert len(srv.received) == 3
    finally:
        relay.stop(5)
        store.close()


def _attempts(store: Store, ident: str) -> int:
    state = store.status(ident)
    return state.attempts if state is not None else -1


def test_ordering_keys_arrive_in_order_through_random_failures(make_server, path):
    rng = random.Random(7)
    lock = threading.Lock()
    delivered: dict[str, list[int]] = defaultdict(list)  # per key, in the order answered 200

    def handler(req: Recorded) -> Reply:
        with lock:
            if rng.random() < 0.3:
                return Reply(503, b"try again")
            key, n = req.path.split("/")[1:]
            delivered[key].append(int(n))
        return Reply(200, b"ok")

    srv = make_server(handler)
    outbox = Outbox(path, schedule=(0,) + (0.01,) * 30, circuit=Circuit(failures=10_000))
    for n in range(1000):
        outbox.fire("POST", srv.url(f"/k{n % 10}/{n}"), json={"n": n}, ordering_key=f"k{n % 10}")
    assert outbox.flush(120)
    assert len(srv.received) > 1000  # some attempts failed and were retried
    assert sorted(delivered) == [f"k{i}" for i in range(10)]
    for key, numbers in delivered.items():
        assert numbers == sorted(numbers), key
        assert len(numbers) == 100
    outbox.close()


def test_a_read_only_file_raises_outbox_error_and_stores_nothing(tmp_path: Path, server):
    path = tmp_path / "ro.sqlite3"
    Outbox(str(path), relay=None).close()
    path.write_bytes(b"this is not a database, it was overwritten" * 100)
    with pytest.raises(OutboxError, match=r"(?i)corrupt|not an outbox|not a database"):
        Outbox(str(path)).fire("POST", server.url("/x"), json={})


def test_a_relay_keeps_the_leases_of_what_it_still_has_in_flight(make_server, path):
    """Answers take three leases long; a second relay on the same file must not send the
    messages again meanwhile: the first renews its leases while they are in flight."""
    srv = make_server(lambda req: Reply(200, b"ok", delay=1.5))
    first = Outbox(path, lease=0.5, connections_per_origin=4)
    for n in range(8):
        first.fire("POST", srv.url(f"/slow/{n}"), json={"n": n})
    wait_until_count = wait_until(lambda: srv.count >= 4, timeout=10)
    assert wait_until_count
    second = Outbox(path, lease=0.5)
    second.relay.wake()  # type: ignore[union-attr]
    assert first.flush(30)
    assert second.flush(30)
    paths = [rec.path for rec in srv.received]
    assert sorted(paths) == sorted(f"/slow/{n}" for n in range(8))  # each exactly once
    first.close()
    second.close()


class _OldStyleRelay:
    """A relay written for the keyword ``bind`` that came before RelayConfig."""

    def bind(self, store: Store, *, emitter: object, settings: object) -> None:
        raise AssertionError("never called")

    def wake(self) -> None: ...

    def flush(self, timeout: float | None = None) -> bool:
        return True

    def stop(self, timeout: float = 5.0) -> None: ...

    def counters(self) -> dict[str, object]:
        return {}


def test_a_relay_with_the_old_bind_signature_is_refused_with_a_clear_error(
    tmp_path: Path,
) -> None:
    with pytest.raises(TypeError, match=r"_OldStyleRelay\.bind must take \(store, config\)"):
        Outbox(tmp_path / "o.sqlite3", relay=_OldStyleRelay())  # type: ignore[arg-type]
    Outbox(tmp_path / "o.sqlite3", relay=None).close()  # the file was left usable


@pytest.mark.parametrize("timeout", [-1, 0, "1", True])
def test_a_bad_timeout_is_invalid_request_naming_it(tmp_path: Path, timeout: object) -> None:
    outbox = Outbox(tmp_path / "o.sqlite3", relay=None)
    try:
        with pytest.raises(InvalidRequest, match="timeout"):
            outbox.fire("GET", "http://127.0.0.1:1/", timeout=timeout)  # type: ignore[arg-type]
        assert outbox.stats()["total"] == 0
    finally:
        outbox.close()


@pytest.mark.parametrize(
    ("field", "value"),
    [("key", "order-1\r\nX-Injected: 1"), ("key", "order\x00"), ("key", "заказ-1"),
     ("key", "order\x7f"), ("ordering_key", "customer\x00"), ("ordering_key", "a\nb")],
)
def test_a_key_that_cannot_go_on_the_wire_is_refused_naming_it(
    tmp_path: Path, field: str, value: str
) -> None:
    """The key travels in every attempt's Idempotency-Key header: control characters (a
    header injected with CR LF) and text that is not latin-1 are refused at fire time, for
    fire() and execute() alike, and the message is not stored; the value is not echoed."""
    outbox = Outbox(tmp_path / "o.sqlite3", relay=None)
    try:
        with pytest.raises(InvalidRequest, match=field) as fired:
            outbox.fire("POST", "http://127.0.0.1:1/hook", json={}, **{field: value})
        assert value not in str(fired.value)
        request = Request("http://127.0.0.1:1/hook").method("POST")
        with pytest.raises(InvalidRequest, match=field):
            outbox.execute(request, **{field: value})
        assert outbox.stats()["total"] == 0
        outbox.fire("POST", "http://127.0.0.1:1/hook", json={}, key="order-1:paid é")
        assert outbox.stats()["total"] == 1  # latin-1 text is a fine key
    finally:
        outbox.close()


def test_a_stored_key_that_cannot_go_on_the_wire_kills_its_message_unsent(
    path: str, make_server: Callable[..., RecordingServer]
) -> None:
    """A file an older sendoff wrote may hold a key with CR LF in it (keys were not checked
    then): the relay checks the key at send time, so no header is injected; that message
    is dead with an error naming the header, and the others go out."""
    server = make_server()
    stored = Outbox(path, relay=None)
    bad = stored.fire("POST", server.url("/bad"), json={}, key="order-1")
    good = stored.fire("POST", server.url("/good"), json={}, key="order-2")
    own = stored.fire("POST", server.url("/own"), json={}, headers={"Idempotency-Key": "own-3"})
    stored.close()
    with sqlite3.connect(path) as conn:  # as an unchecked older version stored it
        for ident in (bad.id, own.id):
            conn.execute("UPDATE messages SET key = ? WHERE id = ?",
                         (f"{ident}\r\nX-Injected: 1", ident))  # fmt: skip
    outbox = Outbox(path, schedule=FAST)
    try:
        assert outbox.flush(20)
        dead, delivered = outbox.status(bad.id), outbox.status(good.id)
        assert dead is not None
        assert (dead.status, dead.attempts) == ("dead", 1)
        assert "Idempotency-Key" in (dead.last_error or "")
        assert "X-Injected" not in (dead.last_error or "")  # the value is not echoed
        assert delivered is not None
        assert delivered.status == "delivered"
        # a request that carries its own key header goes out with it (the column is unused)
        assert sorted(rec.path for rec in server.received) == ["/good", "/own"]
        [sent] = [rec for rec in server.received if rec.path == "/own"]
        assert sent.header("idempotency-key") == "own-3"
        assert all("x-injected" not in _headers(rec) for rec in server.received)
    finally:
        outbox.close()
