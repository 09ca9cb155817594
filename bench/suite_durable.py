"""Durable enqueue: what the caller pays until a request to send is stored.

``python -m bench durable`` (``SENDOFF_BENCH_QUICK=1`` for a smoke run). DESIGN.md's target
for sendoff's Outbox ("returns after commit") is p50 ≤ 0.5x redis-py ``LPUSH`` and ≤ 0.05x
Celery ``.delay()``; those anchors, and a plain SQLite insert for reference, are measured
here in the same run, interleaved and repeated, each run in its own interpreter:

- redis-py ``LPUSH`` of a 300-byte record to a local redis-server (started from a temp dir
  on a free port, persistence off, stopped at the end);
- Celery ``.delay()`` of a request (~300-byte body) on that Redis as broker, no worker;
- SQLite: one row with a 300-byte blob, committed per row, WAL, ``synchronous=NORMAL``.

Every row says how many records ended up stored (the Redis list's length, the table's
row count), so a row that silently stored nothing shows.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

from bench import isolated
from bench.report import Spread, interleaved, machine_line, median, note, percentile, quick, table
from demo.redis_server import RedisServer

QUICK = quick()
CALLS = 300 if QUICK else 3_000  # per run
REPEATS = 1 if QUICK else 5

LPUSH = "redis-py LPUSH (300 B)"
CELERY = "Celery .delay() (Redis broker, no worker)"
SQLITE = "SQLite insert + commit (WAL, synchronous=NORMAL, 300 B blob)"
OUTBOX = "sendoff Outbox.fire() (returns after commit)"
OUTBOX_FULL = "sendoff Outbox.fire(), durability='full'"
THREADS = 8
GROUP_ROWS = 2_000 if QUICK else 20_000
DELIVER = 5_000 if QUICK else 50_000
BACKLOG = 50_000 if QUICK else 1_000_000


def outbox_cost(durability: str, path: str, n: int) -> dict[str, Any]:
    """µs per ``Outbox.fire()`` (a ~300-byte JSON webhook; no relay in this process)."""
    import gc
    import time

    from sendoff import Outbox

    outbox = Outbox(path, relay=None, durability=durability)  # type: ignore[arg-type]
    payload = {"event": "signup", "user": 42, "pad": "x" * 250}
    for _ in range(50):
        outbox.fire("POST", "http://127.0.0.1:9/hook", json=payload)
    gc.collect()
    samples = []
    clock = time.perf_counter_ns
    fire = outbox.fire
    for _ in range(n):
        start = clock()
        fire("POST", "http://127.0.0.1:9/hook", json=payload)
        samples.append((clock() - start) / 1000)
    stored = outbox.store.stats()["pending"] - 50
    outbox.close()
    return {"samples": samples, "calls": n, "stored": stored}


def group_commit(
    durability: str, path: str, threads: int, rows: int, shared: bool = True
) -> dict[str, Any]:
    """Rows per second stored by ``threads`` threads at once, and the transactions used.

    ``shared``: the threads share one Outbox (its group commit puts their rows in common
    transactions); else each thread has its own Outbox on the file, so every row is a
    commit of its own and the threads take turns at SQLite's write lock."""
    import threading
    import time

    from sendoff import Outbox

    def make() -> Outbox:
        return Outbox(path, relay=None, durability=durability)  # type: ignore[arg-type]

    first = make()
    outboxes = [first] * threads if shared else [first, *(make() for _ in range(threads - 1))]
    start_gate = threading.Barrier(threads + 1)
    each = rows // threads

    def work(outbox: Outbox) -> None:
        start_gate.wait()
        for _ in range(each):
            outbox.fire("POST", "http://127.0.0.1:9/hook", json={"n": 1})

    workers = [threading.Thread(target=work, args=(o,)) for o in outboxes]
    for w in workers:
        w.start()
    distinct = list({id(o): o for o in outboxes}.values())
    before = sum(o.store.transactions for o in distinct)
    start_gate.wait()
    began = time.perf_counter()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - began
    transactions = sum(o.store.transactions for o in distinct) - before
    stored = first.store.stats()["pending"]
    for o in distinct:
        o.close()
    return {"rate": each * threads / elapsed, "transactions": transactions, "stored": stored}


def deliver(kind: str, url: str, path: str, n: int) -> dict[str, Any]:
    """Delivered per second to nginx: the in-memory engine (fires then flush), or the
    outbox (n rows stored first, then a relay drains them)."""
    import time

    from sendoff import FireAndForget, Outbox

    if kind == "engine":
        client = FireAndForget(timeout=30, max_queue=10_000_000)
        began = time.perf_counter()
        for _ in range(n):
            client.fire("POST", url, json={"n": 1})
        assert client.flush(300)
        return {"rate": n / (time.perf_counter() - began), "delivered": client.stats()["delivered"]}
    stored = Outbox(path, relay=None)
    for _ in range(n):
        stored.fire("POST", url, json={"n": 1})
    stored.close()
    outbox = Outbox(path)
    began = time.perf_counter()
    outbox.relay.wake()  # type: ignore[union-attr]
    assert outbox.flush(600)
    rate = n / (time.perf_counter() - began)
    delivered = outbox.stats()["delivered"]
    outbox.close()
    return {"rate": rate, "delivered": delivered}


def backlog_memory(url: str, path: str, n: int) -> dict[str, Any]:
    """RSS (MiB) of a process with ``n`` rows waiting in its outbox while its relay works
    at them, against the same process before any row was stored."""
    import resource
    import time

    from sendoff import Outbox

    def rss() -> float:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20

    outbox = Outbox(path, relay=None)
    outbox.fire("POST", url, json={"n": 0})
    before = rss()
    for i in range(n):
        outbox.fire("POST", url, json={"n": i})
    stored = rss()
    outbox.close()
    relaying = Outbox(path)
    relaying.relay.wake()  # type: ignore[union-attr]
    samples = []
    for _ in range(20):
        time.sleep(0.25)
        samples.append(rss())
    pending = relaying.store.stats()["pending"]
    relaying.close()
    return {"before": before, "stored": stored, "relaying_max": max(samples), "pending": pending}


def _filesystem(path: str) -> str:
    out = subprocess.run(["df", "-T", path], capture_output=True, text=True, check=False)
    lines = out.stdout.splitlines()
    return lines[1].split()[1] if len(lines) > 1 else "unknown"


def main() -> None:
    note(f"**durable suite{' (quick)' if QUICK else ''}** · {machine_line()}")
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="sendoff-sqlite-") as tmp:
        runs = [0]

        def outbox_run(durability: str) -> dict[str, Any]:
            runs[0] += 1
            return isolated.run("bench.suite_durable:outbox_cost", durability=durability,
                                path=os.path.join(tmp, f"sendoff-{runs[0]}.sqlite3"), n=CALLS)

        def sqlite_run() -> dict[str, Any]:
            runs[0] += 1
            return isolated.run("bench.anchors:sqlite_insert_cost",
                                path=os.path.join(tmp, f"outbox-{runs[0]}.db"), n=CALLS)

        rows: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            (LPUSH, lambda: isolated.run("bench.anchors:redis_lpush_cost", port=redis.port,
                                         n=CALLS)),
            (CELERY, lambda: isolated.run("bench.anchors:celery_delay_cost", port=redis.port,
                                          n=CALLS)),
            (SQLITE, sqlite_run),
            (OUTBOX, lambda: outbox_run("normal")),
            (OUTBOX_FULL, lambda: outbox_run("full")),
        ]

        def progress(name: str, rnd: int, result: dict[str, Any]) -> None:
            print(f"  [round {rnd + 1}/{REPEATS}] {name}: p50 "
                  f"{percentile(result['samples'], 50):.1f} µs, stored {result['stored']}",
                  flush=True)

        print(f"{REPEATS} interleaved rounds of {CALLS} calls...", flush=True)
        results = interleaved(rows, REPEATS, progress=progress)
        filesystem = _filesystem(tmp)

    def p(q: float) -> Callable[[dict[str, Any]], float]:
        return lambda r: percentile(r["samples"], q)

    out = []
    for name, runs_ in results.items():
        p50s = [p(50)(r) for r in runs_]
        ratios = [p(50)(r) / p(50)(a) for r, a in zip(runs_, results[LPUSH], strict=True)]
        ratios_celery = [p(50)(r) / p(50)(a) for r, a in zip(runs_, results[CELERY],
                                                              strict=True)]
        out.append((name, f"{CALLS:,} x {len(runs_)}", str(Spread.of(p50s)),
                    str(Spread.of([p(99)(r) for r in runs_])), str(Spread.of(ratios)),
                    str(Spread.of(ratios_celery)),
                    f"{median([max(r['samples']) for r in runs_]):,.0f}",
                    sum(int(r["stored"]) for r in runs_)))
    table(
        f"Durable enqueue, caller's cost per record (µs), {REPEATS} interleaved rounds — median "
        f"(min-max) of each round's percentile; SQLite file on {filesystem}",
        ["way of enqueueing", "calls x rounds", "p50 µs", "p99 µs", "p50 x LPUSH p50",
         "p50 x Celery p50", "max µs (median)", "stored (all runs)"],
        out,
    )
    note("Targets: sendoff Outbox.fire() p50 ≤ 0.5x LPUSH and ≤ 0.05x Celery .delay().")
    _group_commit_table()
    _delivery_table()


def _group_commit_table() -> None:
    with tempfile.TemporaryDirectory(prefix="sendoff-group-") as tmp:
        rows = []
        for durability in ("normal", "full"):
            count = GROUP_ROWS if durability == "normal" else GROUP_ROWS // 5

            def run(name: str, threads: int, shared: bool, d: str = durability,
                    count: int = count) -> dict[str, Any]:
                return isolated.run(
                    "bench.suite_durable:group_commit", durability=d,
                    path=os.path.join(tmp, f"{name}-{d}-{os.urandom(4).hex()}.sqlite3"),
                    threads=threads, rows=count, shared=shared)

            results = interleaved([
                ("one", lambda run=run: run("one", 1, True)),
                ("apart", lambda run=run: run("apart", THREADS, False)),
                ("group", lambda run=run: run("group", THREADS, True)),
            ], 1 if QUICK else 3)
            one, apart, group = (results[k] for k in ("one", "apart", "group"))
            rows.append((
                durability,
                str(Spread.of([r["rate"] for r in one])),
                str(Spread.of([r["rate"] for r in apart])),
                str(Spread.of([r["rate"] for r in group])),
                str(Spread.of([g["rate"] / a["rate"] for g, a in zip(group, apart, strict=True)])),
                str(Spread.of([g["rate"] / o["rate"] for g, o in zip(group, one, strict=True)])),
                f"{count / max(1, median([r['transactions'] for r in group])):.1f}",
                f"{sum(r['stored'] for r in one):,} / {sum(r['stored'] for r in apart):,}"
                f" / {sum(r['stored'] for r in group):,} of {count * len(group):,} each",
            ))
    table(f"Group commit: rows/s stored, {THREADS} threads sharing one Outbox against one"
          f" commit per row (1 thread; and {THREADS} threads with an Outbox each)",
          ["durability", "1 thread, a commit per row", f"{THREADS} threads, a commit per row",
           f"{THREADS} threads, group commit", f"group x {THREADS} threads a commit per row",
           "group x 1 thread", "rows per transaction (group)",
           "stored (1 / apart / group)"], rows)
    note(f"Target: {THREADS} threads enqueueing at once ≥ 3x the one-commit-per-row rate"
         f" (the same {THREADS} threads committing each row on its own).")


def _delivery_table() -> None:
    from bench.nginx import Nginx

    with Nginx() as nginx, tempfile.TemporaryDirectory(prefix="sendoff-deliver-") as tmp:
        url = nginx.url("/")
        counter = [0]

        def run(kind: str) -> dict[str, Any]:
            counter[0] += 1
            before = nginx.requests()
            result = isolated.run("bench.suite_durable:deliver", kind=kind, url=url,
                                  path=os.path.join(tmp, f"d{counter[0]}.sqlite3"), n=DELIVER)
            result["nginx"] = nginx.requests() - before
            return result

        results = interleaved([("in-memory engine (FireAndForget)", lambda: run("engine")),
                               ("Outbox relay (stored first)", lambda: run("outbox"))],
                              1 if QUICK else 3)
        engine = results["in-memory engine (FireAndForget)"]
        rows = []
        for name, runs_ in results.items():
            ratios = [r["rate"] / e["rate"] for r, e in zip(runs_, engine, strict=True)]
            rows.append((name, f"{DELIVER:,} x {len(runs_)}",
                         str(Spread.of([r["rate"] for r in runs_])), str(Spread.of(ratios)),
                         sum(int(r["delivered"]) for r in runs_),
                         sum(int(r["nginx"]) for r in runs_)))
        table("Delivery to loopback nginx, 16 connections, requests/s", [
            "path", "requests x rounds", "req/s", "x in-memory engine", "delivered",
            "nginx received"], rows)
        note("Target: the outbox relay ≥ 0.5x the in-memory engine.")
        memory = isolated.run("bench.suite_durable:backlog_memory", url=url,
                              path=os.path.join(tmp, "backlog.sqlite3"), n=BACKLOG,
                              timeout=1800)
    table(f"Memory with {BACKLOG:,} rows waiting (RSS, MiB)", [
        "before any row", f"after storing {BACKLOG:,}", "while the relay works at them",
        "still pending after 5 s"], [(f"{memory['before']:.1f}", f"{memory['stored']:.1f}",
                                      f"{memory['relaying_max']:.1f}", f"{memory['pending']:,}")])


if __name__ == "__main__":
    main()
