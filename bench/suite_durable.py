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
from bench.redis_server import RedisServer
from bench.report import Spread, interleaved, machine_line, median, note, percentile, quick, table

QUICK = quick()
CALLS = 300 if QUICK else 3_000  # per run
REPEATS = 1 if QUICK else 5

LPUSH = "redis-py LPUSH (300 B)"
CELERY = "Celery .delay() (Redis broker, no worker)"
SQLITE = "SQLite insert + commit (WAL, synchronous=NORMAL, 300 B blob)"


def _filesystem(path: str) -> str:
    out = subprocess.run(["df", "-T", path], capture_output=True, text=True, check=False)
    lines = out.stdout.splitlines()
    return lines[1].split()[1] if len(lines) > 1 else "unknown"


def main() -> None:
    note(f"**durable suite{' (quick)' if QUICK else ''}** · {machine_line()}")
    with RedisServer() as redis, tempfile.TemporaryDirectory(prefix="sendoff-sqlite-") as tmp:
        runs = [0]

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
            # -- sendoff Outbox rows go here (issue: durable enqueue). Each is a
            # ("sendoff Outbox ...", lambda: isolated.run("bench.suite_durable:outbox_cost",
            # ...)) returning {"samples": [µs...], "calls": n, "stored": rows committed},
            # measured beside the anchors above in the same interleaved rounds.
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
    note("Targets for the sendoff Outbox rows (to come): p50 ≤ 0.5x LPUSH and ≤ 0.05x "
         "Celery .delay().")


if __name__ == "__main__":
    main()
