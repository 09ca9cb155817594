"""Distributed delivery on Celery: an outbox's messages delivered by Celery workers.

::

    from celery import Celery
    from sendoff import Outbox
    from sendoff.celery import CeleryRelay, register

    app = Celery("proj", broker="redis://127.0.0.1:6379/0")    # or amqp://... (RabbitMQ)
    register(app)                    # the delivery task (the workers import this module)
    outbox = Outbox("sendoff.sqlite3", relay=CeleryRelay(app))
    outbox.fire("POST", "https://example.com/hook", json={"n": 1})   # one local commit
    # on any number of machines:  celery -A proj worker

The SQLite file stays the source of truth: callers pay the local commit; a
:class:`CeleryRelay` in the producer's process publishes batches of due messages as
Celery tasks and writes the outcomes the workers report back into the file (retries on
the outbox's schedule, dead letters, replay, ``outbox.status(id)``). Workers deliver each
batch through sendoff's engine, many requests in flight per process, and share per-origin
limits through Redis (:mod:`sendoff.celery.limits`). The design, and what happens when a
worker, the broker or the producer dies: :mod:`sendoff.celery.relay` and the README's
"Scaling out".
"""

from __future__ import annotations

from .limits import CircuitRule, LocalLimits, OriginLimits, RedisLimits
from .payload import OUTCOME_EXCHANGE, TASK_NAME, Batch, Message
from .relay import CeleryRelay, default_reply_queue
from .worker import Worker, register

__all__ = [
    "OUTCOME_EXCHANGE",
    "TASK_NAME",
    "Batch",
    "CeleryRelay",
    "CircuitRule",
    "LocalLimits",
    "Message",
    "OriginLimits",
    "RedisLimits",
    "Worker",
    "default_reply_queue",
    "register",
]
