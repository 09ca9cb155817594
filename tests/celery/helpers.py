"""Helpers of the sendoff-on-Celery tests (the fixtures are in conftest.py)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import Any

from sendoff import Outbox
from tests.support.brokers import CeleryWorker, launch_together
from tests.support.recording_server import Recorded

APP = "tests.celery.worker_app"
#: Lease of the tests' outboxes: how long an outcome may take before the relay publishes
#: the message again (short, so that a test waiting for it stays short).
LEASE = 10.0


def start_workers(
    factory: Callable[..., CeleryWorker],
    broker_url: str,
    queue: str,
    count: int = 2,
    *,
    concurrency: int = 1,
    env: dict[str, str] | None = None,
    conf: dict[str, Any] | None = None,
) -> list[CeleryWorker]:
    """``count`` workers of the sendoff test app on ``queue``, launched together."""
    return launch_together(
        factory(broker_url, app=APP, queue=queue, concurrency=concurrency, start=False,
                env=env or {}, conf=conf or {})
        for _ in range(count)
    )


def body_number(req: Recorded) -> int:
    """The ``n`` of a request fired with ``json={"n": n}``."""
    return int(json.loads(req.body)["n"])


def key_of(req: Recorded) -> str | None:
    return req.header("Idempotency-Key")


def fire_numbers(outbox: Outbox, url: str, count: int, start: int = 0) -> dict[int, str]:
    """Fire ``json={"n": n}`` for each n; {n: message id}."""
    return {n: outbox.fire("POST", url, json={"n": n}).id for n in range(start, start + count)}


def flushed(outbox: Outbox, timeout: float, workers: list[CeleryWorker]) -> float:
    """Flush ``outbox``; seconds it took. Fails with the workers' logs on a timeout."""
    began = time.monotonic()
    if not outbox.flush(timeout):
        logs = "\n".join(w.describe() for w in workers)
        raise AssertionError(f"not flushed in {timeout}s: {outbox.stats()}\n{logs}")
    return time.monotonic() - began


def status_reader(path: str, ident: str) -> str:
    """Python source a separate process runs to print a message's status from the file."""
    return (
        "from sendoff import Outbox\n"
        f"outbox = Outbox({path!r}, relay=None)\n"
        f"state = outbox.status({ident!r})\n"
        "print(state.status, state.attempts, state.last_status, state.key)\n"
    )


def settled(outbox: Outbox, count: int, timeout: float, workers: list[CeleryWorker]) -> None:
    """Wait until ``count`` messages are delivered or dead (``flush`` does not wait for
    retries that are due later)."""
    deadline = time.monotonic() + timeout
    while True:
        stats = outbox.stats()
        if stats["delivered"] + stats["dead"] >= count:
            return
        if time.monotonic() > deadline:
            logs = "\n".join(w.describe() for w in workers)
            raise AssertionError(f"not settled in {timeout}s: {stats}\n{logs}")
        time.sleep(0.05)
