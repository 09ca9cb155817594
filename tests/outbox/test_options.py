"""An Outbox's options and keys are checked when they are given, not when a relay thread
trips on them later; another application's database is refused and left as it was."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from sendoff import InvalidRequest, Outbox, OutboxError

URL = "http://127.0.0.1:9/hook"

BAD_OPTIONS = [
    ({"idempotency_header": "X-Idem\r\nX-Evil: injected"}, "idempotency_header"),
    ({"idempotency_header": "Bad Header"}, "idempotency_header"),
    ({"idempotency_header": ""}, "idempotency_header"),
    ({"lease": -1}, "lease"),
    ({"lease": float("nan")}, "lease"),
    ({"lease": 0}, "lease"),
    ({"deadline": float("inf")}, "deadline"),
    ({"keep_delivered": -5}, "keep_delivered"),
    ({"exit_timeout": True}, "exit_timeout"),
    ({"exit_timeout": float("nan")}, "exit_timeout"),
    ({"connections_per_origin": 0}, "connections_per_origin"),
    ({"connections_per_origin": 2.5}, "connections_per_origin"),
    ({"schedule": ()}, "schedule"),
    ({"schedule": (-1,)}, "schedule"),
    ({"max_rows": 1.5}, "max_rows"),
    ({"max_rows": float("inf")}, "max_rows"),
    ({"max_rows": "10"}, "max_rows"),
    ({"busy_timeout": "5"}, "busy_timeout"),
    ({"busy_timeout": float("nan")}, "busy_timeout"),
]


@pytest.mark.parametrize(("options", "field"), BAD_OPTIONS, ids=[f for _, f in BAD_OPTIONS])
def test_a_bad_option_is_refused_at_once_naming_it(
    tmp_path: Path, options: dict[str, Any], field: str
) -> None:
    """A negative lease used to be taken, and the relay thread died on it at its first
    claim while fire() went on storing messages nothing would send."""
    path = tmp_path / "o.sqlite3"
    with pytest.raises(ValueError) as info:
        Outbox(path, **options)
    assert str(info.value).startswith(f"{field}:") or f"{field}[" in str(info.value)
    assert "injected" not in str(info.value)
    assert not path.exists()  # refused before the file was made


@pytest.fixture
def outbox(tmp_path: Path) -> Any:
    box = Outbox(tmp_path / "o.sqlite3", relay=None)
    yield box
    box.close()


def test_the_stored_key_is_the_key_the_receiver_sees(outbox: Outbox) -> None:
    """The file deduplicates on the key; the receiver on the header. They must agree."""
    with pytest.raises(InvalidRequest) as info:
        outbox.fire("POST", URL, headers={"Idempotency-Key": "HDR"}, key="ARG")
    assert info.value.field == "key"
    same = outbox.fire("POST", URL, headers={"Idempotency-Key": "K1"}, key="K1")
    assert same.key == "K1"
    # a bytes header value is the key as sent, not its repr
    raw = outbox.fire("POST", URL, headers={"Idempotency-Key": b"BYT"})
    assert raw.key == "BYT"
    assert outbox.fire("POST", URL, key="BYT").existing
    assert outbox.store.stats()["pending"] == 2


@pytest.mark.parametrize("key", [" abc", "abc ", "\tabc", "abc\t"])
def test_a_key_with_outer_whitespace_is_refused(outbox: Outbox, key: str) -> None:
    """HTTP drops a header value's outer whitespace: stored as given, " abc " and "abc"
    would be two messages the receiver sees under one key."""
    with pytest.raises(InvalidRequest) as info:
        outbox.fire("POST", URL, key=key)
    assert info.value.field == "key"
    with pytest.raises(InvalidRequest):
        outbox.fire("POST", URL, headers={"Idempotency-Key": "x"}, key=key)
    assert outbox.store.stats()["pending"] == 0


@pytest.mark.parametrize("user_version", [0, 1, 2, 99])
def test_another_applications_database_is_refused_and_left_untouched(
    tmp_path: Path, user_version: int
) -> None:
    """Many applications set user_version: the outbox used to take one at 1 or 2 for its
    own (migrating it, or failing at the first fire) and switched every refused file to
    WAL before refusing it."""
    path = tmp_path / "theirs.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE users (id INTEGER)")
    conn.execute(f"PRAGMA user_version = {user_version}")
    conn.commit()
    conn.close()
    with pytest.raises(OutboxError) as info:
        Outbox(path, relay=None)
    assert info.value.cause == "not_an_outbox"
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == user_version
    tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master")}
    conn.close()
    assert tables == {"users"}


def test_nothing_starts_after_close(tmp_path: Path) -> None:
    """flush() after close() used to start a new relay thread on the closed file, which
    then logged a traceback twice a second until the process ended."""
    box = Outbox(tmp_path / "o.sqlite3")
    box.fire("POST", URL)
    box.close()
    for call in (lambda: box.flush(0.1), lambda: box.fire("POST", URL)):
        with pytest.raises(OutboxError) as info:
            call()
        assert info.value.cause == "closed"
    relay = box.relay
    assert relay is not None
    thread = relay._thread
    assert thread is None or not thread.is_alive()
