"""Processes the outbox tests start: ``python -m tests.outbox.workers COMMAND ...``."""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time

from sendoff.outbox import NewMessage, Store


def _msg(n: int, key: str | None = None, schedule: tuple[float, ...] | None = None) -> NewMessage:
    wire = f"POST /hook/{n} HTTP/1.1\r\nHost: r.example\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    extra = {} if schedule is None else {"schedule": schedule}
    return NewMessage("POST", f"http://r.example/hook/{n}", "http://r.example:80", wire, 10.0,
                      key=key, **extra)  # type: ignore[arg-type]  # fmt: skip


def status(path: str, ident: str) -> None:
    with Store(path) as s:
        st = s.status(ident)
        print(json.dumps(None if st is None else st.to_dict()))


def produce(path: str, threads: str, per_thread: str) -> None:
    """Add messages from several threads; write each id to stdout once add() returned."""
    store = Store(path)
    out = sys.stdout.fileno()

    def run(t: int) -> None:
        for i in range(int(per_thread)):
            added = store.add(_msg(i, key=f"t{t}-{i}"))
            os.write(out, f"{added.id} t{t}-{i}\n".encode())  # one write: whole lines only

    workers = [threading.Thread(target=run, args=(t,)) for t in range(int(threads))]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    os.write(out, b"DONE\n")


def claim(path: str, owner: str, lease: str, expected: str, deadline: str, seed: str) -> None:
    """Claim and deliver until ``expected`` messages are delivered (by anyone). One claim in
    five is abandoned (as by a crash) and must come back when its lease expires. Prints
    ``claim ID NOW EXPIRES`` and ``done ID TRUE|FALSE`` lines."""
    rng = random.Random(int(seed))
    store = Store(path, busy_timeout=10.0)
    lease_s = float(lease)
    out: list[str] = []
    stop_at = float(deadline)
    while time.time() < stop_at:
        now = time.time()
        claimed = store.claim(owner, 5, lease_s, now=now)
        for c in claimed:
            out.append(f"claim {c.id} {now!r} {c.lease_expires!r}")
            if rng.random() < 0.2:
                continue  # abandoned: the lease runs out
            ok = store.delivered(c.id, owner, 200, now=time.time())
            out.append(f"done {c.id} {ok}")
        if not claimed:
            s = store.stats()
            if s["delivered"] >= int(expected):
                break
            due = store.next_due()
            wait = 0.02 if due is None else min(0.05, max(0.0, due - time.time()))
            time.sleep(wait)  # a relay idles until the next message is due
    print("\n".join(out), flush=True)
    store.close()


def hold_lock(path: str) -> None:
    """Hold the write lock (BEGIN EXCLUSIVE) until a line arrives on stdin."""
    import sqlite3

    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("BEGIN EXCLUSIVE")
    print("locked", flush=True)
    sys.stdin.readline()
    conn.execute("COMMIT")
    conn.close()


def fill_to_limit(path: str, extra: str) -> None:
    """Under RLIMIT_FSIZE (SIGXFSZ ignored), add until the store reports the limit; then
    lift the limit and add again. Prints ``ok ID`` lines, ``error CAUSE MESSAGE``, ``after ID``."""
    import resource
    import signal

    from sendoff.outbox import OutboxError

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    store = Store(path)
    store.add(_msg(0))
    sizes = [os.path.getsize(path + s) for s in ("", "-wal") if os.path.exists(path + s)]
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (max(sizes) + int(extra), hard))
    big = b"x" * 20_000
    for i in range(10_000):
        try:
            added = store.add(NewMessage("POST", f"http://r.example/{i}", "http://r.example:80",
                                         big, 10.0))  # fmt: skip
        except OutboxError as exc:
            print(f"error {exc.cause} {exc}", flush=True)
            break
        print(f"ok {added.id}", flush=True)
    resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    print(f"after {store.add(_msg(1)).id}", flush=True)
    store.close()


def add_as(path: str, uid: str) -> None:
    """Drop to ``uid`` (the test runs as root, who may write anything), then try to add.
    Prints ``ok ID`` or ``error CAUSE MESSAGE``; reads first, to show they still work."""
    from sendoff.outbox import OutboxError

    os.setgid(int(uid))
    os.setuid(int(uid))
    try:
        store = Store(path)
        print(f"read {store.stats()['total']}", flush=True)
        print(f"ok {store.add(_msg(1)).id}", flush=True)
    except OutboxError as exc:
        print(f"error {exc.cause} {exc}", flush=True)


if __name__ == "__main__":
    commands = {"status": status, "produce": produce, "claim": claim, "hold_lock": hold_lock,
                "fill_to_limit": fill_to_limit, "add_as": add_as}  # fmt: skip
    commands[sys.argv[1]](*sys.argv[2:])
