"""A full queue under each on_full policy: drop, block, raise."""

from __future__ import annotations

import logging
import threading

import pytest

import sendoff
from sendoff import FireAndForget
from tests.delivery.conftest import origin_stats
from tests.support.recording_server import Reply


@pytest.fixture
def held(make_server):
    """A server that answers nothing until ``release`` is set; one connection's worth of
    work is in flight and the queue behind it cannot drain."""
    release = threading.Event()
    srv = make_server(lambda req: Reply(200, b"ok", hold=release))
    srv.release = release
    yield srv
    release.set()


def _fill(client, srv, n):
    first = client.fire("GET", srv.url("/0"))
    srv.wait_for(1)  # the engine took it: the queue is empty again
    queued = [client.fire("GET", srv.url(f"/{i}")) for i in range(1, n + 1)]
    assert origin_stats(srv.url())["queued"] == n
    return [first, *queued]


def test_drop_counts_and_logs_once_per_burst(held, caplog):
    client = FireAndForget(max_queue=2, connections_per_origin=1, retries=0)
    accepted = _fill(client, held, 2)
    with caplog.at_level(logging.WARNING, logger="sendoff"):
        dropped = [client.fire("GET", held.url(f"/drop/{i}")) for i in range(3)]
    for receipt in dropped:
        assert receipt.done()
        assert receipt.wait(0) is None
        assert isinstance(receipt.error, sendoff.QueueFull)
    full_lines = [r for r in caplog.records if "queue full" in r.getMessage()]
    assert len(full_lines) == 1
    assert origin_stats(held.url())["dropped"] == 3
    held.release.set()
    assert client.flush(10)
    assert all(r.response.status == 200 for r in accepted)
    assert sorted(r.path for r in held.received) == ["/0", "/1", "/2"]


def test_raise(held):
    client = FireAndForget(max_queue=2, connections_per_origin=1, on_full="raise", retries=0)
    _fill(client, held, 2)
    with pytest.raises(sendoff.QueueFull, match="max_queue=2"):
        client.fire("GET", held.url("/x"))
    assert origin_stats(held.url())["dropped"] == 1
    held.release.set()
    assert client.flush(10)
    assert held.count == 3


def test_block_waits_for_room(held):
    client = FireAndForget(max_queue=1, connections_per_origin=1, on_full="block", retries=0)
    _fill(client, held, 1)
    late: list[sendoff.Receipt] = []
    caller = threading.Thread(target=lambda: late.append(client.fire("GET", held.url("/late"))))
    caller.start()
    caller.join(0.3)
    assert caller.is_alive()  # blocked: the queue is full
    assert late == []
    held.release.set()
    caller.join(10)
    assert not caller.is_alive()
    assert client.flush(10)
    assert late[0].response.status == 200
    assert origin_stats(held.url())["dropped"] == 0
    assert held.count == 3


def test_block_gives_up_after_the_timeout(held):
    client = FireAndForget(
        timeout=0.2, max_queue=1, connections_per_origin=1, on_full="block", retries=0
    )
    client.fire("GET", held.url("/0"), timeout=30)
    held.wait_for(1)
    client.fire("GET", held.url("/1"), timeout=30)
    receipt = client.fire("GET", held.url("/2"))  # waits its own 0.2 s for room
    assert isinstance(receipt.error, sendoff.QueueFull)
    assert origin_stats(held.url())["dropped"] == 1
    held.release.set()
    assert client.flush(10)
    assert held.count == 2


def test_flush_times_out_while_the_server_holds(held):
    client = FireAndForget(connections_per_origin=1, retries=0)
    client.fire("GET", held.url("/"))
    assert client.flush(0.1) is False
    assert origin_stats(held.url())["in_flight"] == 1
    held.release.set()
    assert client.flush(10) is True
    assert sendoff.flush(10) is True


def test_settings_are_validated():
    for kwargs in ({"mode": "later"}, {"on_full": "ignore"}, {"max_queue": 0},
                   {"pipeline": 0}, {"retries": -1}, {"exit_timeout": -1}, {"timeout": 0}):
        with pytest.raises(ValueError):
            FireAndForget(**kwargs)
