"""sendoff on Celery: the caller's cost and the workers' delivery rate, beside the anchors.

1. Caller cost on the same redis-server: ``outbox.fire()`` with a ``CeleryRelay`` (a local
   SQLite commit; the relay publishes in the background) beside Celery's ``.delay()`` of
   a task and redis-py ``LPUSH`` of the same JSON, in interleaved rounds.
2. Delivery rate to one nginx: two ``celery worker`` processes (``--concurrency 1`` each)
   delivering an outbox's messages (stored beforehand; timed from the relay's start to
   the last outcome written back) beside the single-process in-memory engine
   (``FireAndForget``, 16 connections, fire + flush), interleaved and repeated. The
   workers run twice: with the per-origin cap of 16 shared through Redis (the default on
   a Redis broker) and with it per worker process (``limits="local"``, what RabbitMQ
   gets). Every row says how many requests nginx received, and the CPU seconds each
   process used (the producer's relay, the two pool processes).

Run with ``python -m bench celery``. Loopback only; redis-server and nginx are Debian's.
"""

from __future__ import annotations

import gc
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.nginx import Nginx
from bench.report import percentile, table, timed_us
from sendoff import FireAndForget, Outbox
from sendoff.celery import CeleryRelay
from tests.support.brokers import CeleryWorker, RedisServer
from tests.support.celery_app import make_app

PAYLOAD = {"event": "order.paid", "order": 1042}
QUEUE = "sendoff-bench"
ROUNDS = 5
CALLS = 2000  # per round and way of calling
DELIVERY_ROUNDS = 3
MESSAGES = 20_000
CONNECTIONS = 16


def caller_cost(redis: RedisServer, scratch: Path) -> list[tuple[str, int, float, float, str]]:
    app = make_app(redis.url)

    @app.task(name="bench.noop", shared=False)
    def noop(payload: dict[str, Any]) -> None:
        pass

    outbox = Outbox(scratch / "caller.sqlite3", relay=CeleryRelay(app, queue=QUEUE))
    bare = Outbox(scratch / "bare.sqlite3", relay=None)
    client = redis.client()
    url = "http://127.0.0.1:9/hook"  # never delivered: no worker runs during this part
    body = json.dumps(PAYLOAD)
    ways: dict[str, Callable[[int], Any]] = {
        "outbox.fire() with CeleryRelay (SQLite commit)": lambda i: outbox.fire(
            "POST", url, json=PAYLOAD),
        "outbox.fire() without a relay (the bare commit)": lambda i: bare.fire(
            "POST", url, json=PAYLOAD),
        "Celery .delay() (Redis)": lambda i: noop.delay(PAYLOAD),
        "redis-py LPUSH": lambda i: client.lpush("bench:list", body),
    }
    for call in ways.values():  # warm up: connections, caches, the relay's threads
        for i in range(50):
            call(i)
    samples: dict[str, list[float]] = {name: [] for name in ways}
    for _ in range(ROUNDS):
        for name, call in ways.items():
            gc.collect()
            samples[name] += timed_us(CALLS, call)
    outbox.exit_timeout = 1.0
    outbox.close()
    bare.close()
    app.close()
    delay_p50 = percentile(samples["Celery .delay() (Redis)"], 50)
    lpush_p50 = percentile(samples["redis-py LPUSH"], 50)
    rows = []
    for name, got in samples.items():
        p50 = percentile(got, 50)
        rows.append((name, len(got), p50, percentile(got, 99),
                     f"{p50 / delay_p50:.3f}x .delay(), {p50 / lpush_p50:.2f}x LPUSH"))
    return rows


def engine_rate(url: str, nginx: Nginx) -> tuple[float, int, float]:
    """(req/s for fire N + flush, nginx received, CPU seconds) of the in-memory engine."""
    client = FireAndForget(max_queue=MESSAGES + 1, connections_per_origin=CONNECTIONS)
    client.fire("POST", url, json=PAYLOAD).wait(5)
    before = nginx.requests()
    gc.collect()
    cpu = time.process_time()
    start = time.perf_counter()
    for n in range(MESSAGES):
        client.fire("POST", url, json={**PAYLOAD, "n": n})
    assert client.flush(300)
    seconds = time.perf_counter() - start
    return MESSAGES / seconds, nginx.requests() - before, time.process_time() - cpu


def _cpu(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def celery_rate(redis: RedisServer, queue: str, workers: list[CeleryWorker], url: str,
                nginx: Nginx, scratch: Path, run: str) -> tuple[float, int, str]:
    """(messages/s from the relay's start to the last outcome, nginx received, CPU
    seconds): two workers, an outbox filled beforehand."""
    path = scratch / f"delivery-{run}.sqlite3"
    filler = Outbox(path, relay=None)
    for n in range(MESSAGES):
        filler.fire("POST", url, json={**PAYLOAD, "n": n})
    filler.close()
    app = make_app(redis.url)
    pools = [pid for worker in workers for pid in worker.child_pids()]
    before = nginx.requests()
    cpu_before = [_cpu(pid) for pid in pools]
    gc.collect()
    mine = time.process_time()
    start = time.perf_counter()
    outbox = Outbox(path, relay=CeleryRelay(app, queue=queue),
                    connections_per_origin=CONNECTIONS)
    assert outbox.flush(300)
    seconds = time.perf_counter() - start
    producer = time.process_time() - mine
    stats = outbox.stats()
    assert stats["delivered"] == MESSAGES, stats
    outbox.close()
    app.close()
    cpu = ", ".join(f"{_cpu(pid) - was:.2f}" for pid, was in zip(pools, cpu_before, strict=True))
    return MESSAGES / seconds, nginx.requests() - before, f"relay {producer:.2f}, pool {cpu}"


def main() -> None:
    scratch = Path(tempfile.mkdtemp(prefix="sendoff-bench-celery-"))
    try:
        with RedisServer() as redis:
            print("caller cost on one redis-server...", flush=True)
            rows = caller_cost(redis, scratch)
            table(f"Caller cost, p50/p99 in microseconds ({ROUNDS} interleaved rounds)",
                  ["way", "calls", "p50 us", "p99 us", "ratio"], rows)
            redis.flushall()

            print("delivery rate to nginx...", flush=True)
            modes = {"cap shared via Redis": "auto", "cap per worker process": "local"}
            workers: dict[str, list[CeleryWorker]] = {
                mode: [
                    CeleryWorker(redis.url, app="tests.celery.worker_app",
                                 queue=f"{QUEUE}-{limits}", concurrency=1,
                                 env={"SENDOFF_TEST_LIMITS": limits},
                                 data_dir=scratch / f"worker-{limits}-{i}")
                    for i in range(2)
                ]
                for mode, limits in modes.items()
            }
            for pair in workers.values():
                for worker in pair:
                    worker.launch()
            for pair in workers.values():
                for worker in pair:
                    worker.wait_ready()
            rows2: list[tuple[str, str, float, float, str, str]] = []
            engine: list[float] = []
            celery: list[tuple[str, int, float, int, str]] = []
            with Nginx() as nginx:
                url = nginx.url("/hook")
                for run in range(DELIVERY_ROUNDS):
                    rate, got, cpu_s = engine_rate(url, nginx)
                    engine.append(rate)
                    rows2.append(("in-memory engine (FireAndForget, 1 process, 16 conns)",
                                  str(run + 1), rate, 0.0, f"{got:,}", f"{cpu_s:.2f}"))
                    print(f"  engine: {rate:,.0f}/s", flush=True)
                    for mode, limits in modes.items():
                        rate, got, cpu = celery_rate(
                            redis, f"{QUEUE}-{limits}", workers[mode], url, nginx, scratch,
                            f"{limits}-{run}")
                        celery.append((mode, run, rate, got, cpu))
                        print(f"  2 celery workers, {mode}: {rate:,.0f}/s", flush=True)
            for pair in workers.values():
                for worker in pair:
                    worker.kill()
        engine_median = statistics.median(engine)
        rows2 = [(n, r, rate, rate / engine_median, got, cpu)
                 for n, r, rate, _, got, cpu in rows2]
        for mode, run, rate, got, cpu in celery:
            rows2.append((f"Outbox + CeleryRelay, 2 worker processes, {mode}", str(run + 1),
                          rate, rate / engine_median, f"{got:,}", cpu))
        table(f"Delivery of {MESSAGES:,} POSTs to nginx (ratio: to the engine's median)",
              ["sender", "run", "req/s", "ratio", "nginx received", "CPU s"], rows2)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
