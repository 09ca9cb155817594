"""Demo: one outbox, two Celery workers on one Redis: the workers share the webhooks, and
every one arrives.

A redis-server on a free loopback port is the broker (Debian's, installed if missing and
we are root); two ``celery worker`` processes, one pool process each, run sendoff's
delivery task (demo/celery_app.py). The producer stores 2,000 webhooks in an outbox file
whose CeleryRelay publishes them as batches; each worker delivers the batches it takes
and reports the outcomes back, and the relay writes them to the file. Every attempt names
the worker that made it (``X-Delivered-By``), so the receiver counts who delivered what.
Without Redis (or Celery) the section says so and is skipped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from progress import heading, progress
from receiver import Receiver
from redis_server import RedisServer, redis_binary

from sendoff import Outbox

MESSAGES = 2000
BATCH = 100  # messages per Celery task, at most
RECEIVER_DELAY = 0.02  # a partner API taking 20 ms per webhook
WORKERS = ("worker1@demo", "worker2@demo")
HERE = Path(__file__).resolve().parent


class Worker:
    """``celery -A celery_app worker -n NAME`` in its own session (it and its pool process
    are stopped together), logging to a file in ``tmp``."""

    def __init__(self, name: str, broker_url: str, tmp: str) -> None:
        self.name = name
        self.broker_url = broker_url
        self.log = Path(tmp) / f"{name}.log"
        self.out = Path(tmp) / f"{name}.out"
        self.proc: subprocess.Popen[bytes] | None = None

    def launch(self) -> None:
        from celery_app import BROKER_ENV

        path = os.pathsep.join(p for p in (str(HERE), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": path, BROKER_ENV: self.broker_url}
        with open(self.out, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "celery_app", "worker",
                 "--pool", "prefork", "--concurrency", "1", "-n", self.name,
                 "--without-gossip", "--without-mingle", "--without-heartbeat",
                 "--loglevel", "INFO", "--logfile", str(self.log)],
                cwd=HERE, env=env, stdin=subprocess.DEVNULL, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def ready(self) -> bool:
        """True once it has logged that it consumes."""
        return self.log.exists() and f"{self.name} ready." in self.log.read_text(errors="replace")

    def check(self) -> None:
        """Raise, with the end of its logs, if it has exited."""
        if self.proc is not None and self.proc.poll() is not None:
            tail = "\n".join(p.read_text(errors="replace")[-2000:]
                             for p in (self.log, self.out) if p.exists())
            raise RuntimeError(f"{self.name} exited {self.proc.returncode}:\n{tail}")


def stop_all(workers: list[Worker], timeout: float = 10.0) -> list[int | None]:
    """SIGTERM each (warm shutdown), wait for all until ``timeout``, then SIGKILL whatever
    is left of each session; the exit codes."""
    procs = [w.proc for w in workers if w.proc is not None]
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for proc in procs:
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(max(0.0, deadline - time.monotonic()))
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)  # the worker, or a pool process it left
        proc.wait()
    return [w.proc.returncode if w.proc is not None else None for w in workers]


def wait_ready(workers: list[Worker], timeout: float = 30.0) -> None:
    """Poll every 50 ms until every worker consumes; RuntimeError if one exits first or
    the deadline passes."""
    deadline = time.monotonic() + timeout
    while not all(w.ready() for w in workers):
        for worker in workers:
            worker.check()
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not start within {timeout:.0f} s")
        time.sleep(0.05)


def main() -> None:
    heading(6, "Distributed delivery on Celery",
            f"two workers on one Redis share the {MESSAGES:,} webhooks of one outbox, and "
            "all arrive")
    try:
        from celery_app import WORKER_HEADER, make_app

        from sendoff.celery import CeleryRelay
    except ImportError:
        print("skipped: Celery is not installed (pip install 'sendoff[celery]')")
        return
    with progress("looking for redis-server (installing Debian's if missing)"):
        binary = redis_binary()
    if binary is None:
        print("skipped: Redis is not available (no redis-server, and it could not be "
              "installed)")
        return
    with contextlib.ExitStack() as stack:  # unwinds backwards, on an error too
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="sendoff-demo-"))
        redis = stack.enter_context(RedisServer(binary))
        receiver = stack.enter_context(Receiver(delay=RECEIVER_DELAY))
        workers = [Worker(name, redis.url(), tmp) for name in WORKERS]
        stack.callback(stop_all, workers)
        start = time.monotonic()
        for worker in workers:
            worker.launch()
        with progress("2 celery workers start",
                      lambda: f"{sum(w.ready() for w in workers)}/2 ready"):
            wait_ready(workers)
        print(f"redis-server on 127.0.0.1:{redis.port}; {' and '.join(WORKERS)} ready "
              f"(one pool process each) in {time.monotonic() - start:.1f} s")

        app = make_app(redis.url())
        stack.callback(app.close)
        outbox = Outbox(os.path.join(tmp, "outbox.sqlite3"),
                        relay=CeleryRelay(app, batch=BATCH))
        stack.callback(outbox.close)  # before the workers stop
        start = time.monotonic()
        for n in range(MESSAGES):
            outbox.fire("POST", receiver.url("/hooks"), json={"event": "order.paid", "n": n},
                        key=f"order-{n}")
        print(f"producer: stored {MESSAGES:,} webhooks in {time.monotonic() - start:.2f} s; "
              f"its CeleryRelay publishes them as tasks of up to {BATCH}")
        with progress("the workers deliver",
                      lambda: f"{len(receiver.received)}/{MESSAGES} received"):
            assert outbox.flush(60), outbox.stats()
        took = time.monotonic() - start

        by = Counter(dict(r.headers).get(WORKER_HEADER) for r in receiver.received)
        keys = Counter(dict(r.headers).get("Idempotency-Key") for r in receiver.received)
        stats = outbox.stats()
        print("shared: " + ", ".join(f"{name} delivered {by[name]}" for name in WORKERS)
              + f" (in {stats['relay']['batches']} Celery tasks)")
        print(f"receiver got {len(keys)}/{MESSAGES} in {took:.1f} s after the first fire(); "
              f"sent twice: {sum(1 for n in keys.values() if n > 1)}; the outbox file: "
              f"{stats['delivered']} delivered, {stats['pending']} pending, "
              f"{stats['delivering']} out with a worker, {stats['dead']} dead")

        outbox.close()  # the stack would too, on an error: both are idempotent
        with progress("the workers stop (SIGTERM: warm shutdown)"):
            codes = stop_all(workers)
        print(f"stopped: the workers (SIGTERM, exit {', '.join(map(str, codes))}), then "
              f"redis-server")
