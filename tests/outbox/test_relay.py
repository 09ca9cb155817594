"""The thread relay at work: waits, rather than claims in a loop, while its origins are
at their cap."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from sendoff import Outbox
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
