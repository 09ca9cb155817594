"""Real processes on one file: a producer killed with SIGKILL, claimers racing for leases."""

from __future__ import annotations

import itertools
import os
import random
import signal
import sqlite3
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest

from sendoff.outbox import Store

from .conftest import message, worker


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_of_a_producer_loses_nothing_add_acknowledged(db_path: Path, seed: int) -> None:
    """4 threads x 5,000 adds; each id is printed once add() returned. SIGKILL at a random
    point: every printed id is in the file when it is opened again."""
    kill_after = random.Random(seed).randrange(500, 12_000)
    proc = worker("produce", str(db_path), "4", "5000", stdout=-1, stderr=-3, bufsize=0)
    assert proc.stdout is not None
    fd = proc.stdout.fileno()
    data = b""
    killed = False
    while chunk := os.read(fd, 65536):  # raw reads: every byte the producer wrote is seen
        data += chunk
        if not killed and data.count(b"\n") >= kill_after:
            proc.send_signal(signal.SIGKILL)
            killed = True
    proc.wait(timeout=30)
    lines = data.decode().splitlines()
    acked = [tuple(line.split()) for line in lines if line.startswith("msg_")]
    assert proc.returncode == -signal.SIGKILL
    assert len(acked) >= kill_after
    with Store(db_path) as s:  # a restart: recovery of the WAL happens here
        missing = []
        for ident, key in acked:
            st = s.status(ident)
            if st is None or st.key != key:
                missing.append(ident)
        assert missing == []
        total = s.stats()["total"]
        assert len(acked) <= total <= len(acked) + 4  # one add in flight per thread, at most
        s.add(message(1))  # usable after the crash
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    conn.close()


def test_four_processes_never_hold_the_same_lease(db_path: Path) -> None:
    """Four claimer processes with 0.3 s leases while messages keep arriving; one claim in
    five is abandoned (as by a crash) and must come back once its lease has expired."""
    total, lease = 400, 0.3
    schedule = (0,) + (0.0,) * 40
    deadline = time.time() + 40
    with Store(db_path) as producer:
        first = [producer.add(message(i, schedule=schedule)).id for i in range(total // 2)]

        def claimer_args(owner: str, seed: int) -> list[str]:
            return ["claim", str(db_path), owner, str(lease), str(total), str(deadline), str(seed)]

        procs = [worker(*claimer_args(f"p{n}", n), stdout=-1, stderr=-1) for n in range(4)]
        later: list[str] = []

        def add_more() -> None:  # messages arrive while the claimers run
            for i in range(total // 2):
                later.append(producer.add(message(i, schedule=schedule)).id)

        t = threading.Thread(target=add_more)
        t.start()
        t.join()
        outputs = []
        for p in procs:
            out, err = p.communicate(timeout=60)
            assert p.returncode == 0, err
            outputs.append(out)
        final = producer.stats()
    claims: dict[str, list[tuple[float, float, str]]] = defaultdict(list)
    delivered_ok: dict[str, int] = defaultdict(int)
    for n, out in enumerate(outputs):
        for line in out.splitlines():
            parts = line.split() or [""]
            if parts[0] == "claim":
                claims[parts[1]].append((float(parts[2]), float(parts[3]), f"p{n}"))
            elif parts[0] == "done" and parts[2] == "True":
                delivered_ok[parts[1]] += 1
    assert set(claims) == set(first) | set(later)
    reclaimed = 0
    for ident, seen in claims.items():
        seen.sort()
        for (_, expires, _), (t1, _, _) in itertools.pairwise(seen):
            assert t1 >= expires, f"{ident} claimed again at {t1} before {expires}"
        reclaimed += len(seen) > 1
    assert reclaimed > 0  # abandoned leases did come back
    assert all(n == 1 for n in delivered_ok.values())  # never recorded delivered twice
    assert len(delivered_ok) == total
    assert (final["delivered"], final["pending"], final["delivering"]) == (total, 0, 0)


def test_a_relay_killed_with_leases_held_loses_nothing(db_path: Path) -> None:
    """A claimer killed with SIGKILL while holding 1000 s leases: nobody gets those messages
    before the leases expire, and another owner gets every one of them after."""
    with Store(db_path) as s:
        ids = {s.add(message(i)).id for i in range(50)}
        proc = worker("claim", str(db_path), "doomed", "1000", "999999", str(time.time() + 60),
                      "1", stdout=-1, stderr=-1)  # fmt: skip
        deadline = time.monotonic() + 30
        while s.stats()["delivering"] == 0:  # it holds some leases
            assert time.monotonic() < deadline, "the claimer took nothing"
            time.sleep(0.005)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        held = {m.id for m in s.list(status="delivering", limit=1000)}
        assert held
        assert all(m.lease_owner == "doomed" for m in s.list(status="delivering", limit=1000))
        now = time.time()
        free = s.claim("heir", 100, 30.0, now=now)
        assert not {c.id for c in free} & held  # valid leases are respected
        for c in free:
            assert s.delivered(c.id, "heir", 200, now=now)
        expired = s.claim("heir", 100, 30.0, now=now + 1001)
        assert {c.id for c in expired} == held  # and come back once expired
        assert all(c.attempt == 2 for c in expired)
        for c in expired:
            assert s.delivered(c.id, "heir", 200, now=now + 1001)
        st = s.stats()
        assert (st["delivered"], st["pending"], st["delivering"]) == (len(ids), 0, 0)
