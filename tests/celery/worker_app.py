"""The Celery app the workers of tests/celery run: the broker tests' app plus sendoff's task.

``celery -A tests.celery.worker_app worker`` (see :class:`tests.support.brokers.CeleryWorker`):
the broker URL comes from ``$SENDOFF_TEST_BROKER``, Celery settings from
``$SENDOFF_TEST_CELERY_CONF``. ``$SENDOFF_TEST_SIGN`` (a ``whsec_`` secret) makes the workers
sign every attempt; ``$SENDOFF_TEST_TAG=1`` adds ``X-Test-Task: <nodename> <pid> <task id>``
to every attempt, so a receiver can tell which worker process and which batch sent it.
"""

from __future__ import annotations

import os

from celery import current_task

from sendoff.celery import register
from sendoff.events import BeforeEvent, Emitter
from tests.support.celery_app import make_app

SIGN_ENV = "SENDOFF_TEST_SIGN"
TAG_ENV = "SENDOFF_TEST_TAG"
LIMITS_ENV = "SENDOFF_TEST_LIMITS"
TAG_HEADER = "X-Test-Task"


def tag(event: BeforeEvent) -> None:
    """Name the worker process and the task (the batch) that makes this attempt."""
    request = current_task.request
    event.request.headers(TAG_HEADER, f"{request.hostname} {os.getpid()} {request.id}")


emitter = Emitter()
if os.environ.get(TAG_ENV):
    emitter.on("before", tag)

app = make_app()
deliver = register(
    app, emitter=emitter, sign=os.environ.get(SIGN_ENV) or None,
    limits=os.environ.get(LIMITS_ENV) or "auto",
)
