"""A tiny Celery app for the durable-enqueue anchor: ``.delay()`` on a Redis broker.

No worker is started: the row measures only what the caller pays to enqueue (the message
is serialized and LPUSHed to the queue's Redis list), which is what sendoff's Outbox is to
be compared with. Results are ignored, so no result backend is touched.
"""

from __future__ import annotations

from typing import Any


def make_app(broker_url: str) -> tuple[Any, Any]:
    """(app, task): ``task.delay(method, url, body)`` enqueues one request to send."""
    from celery import Celery

    app = Celery("sendoff_bench", broker=broker_url)
    app.conf.update(
        task_ignore_result=True,
        task_default_queue="sendoff-bench-celery",
        broker_connection_retry_on_startup=False,
        task_serializer="json",
        accept_content=["json"],
    )

    @app.task(name="sendoff_bench.deliver")
    def deliver(method: str, url: str, body: str) -> None:  # pragma: no cover - no worker
        raise RuntimeError("the benchmark starts no Celery worker")

    return app, deliver
