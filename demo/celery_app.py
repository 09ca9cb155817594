"""The Celery app of demo section 6: ``celery -A celery_app worker`` (run from demo/).

The broker URL comes from ``$SENDOFF_DEMO_BROKER``. The workers register sendoff's
delivery task with one listener that names, on every attempt, the worker that makes it
(``X-Delivered-By: <node name>``), so that the receiver can count who delivered what.
"""

from __future__ import annotations

import os

from celery import Celery, current_task
from celery_tick import Tick

from sendoff.celery import register
from sendoff.events import BeforeEvent, Emitter

BROKER_ENV = "SENDOFF_DEMO_BROKER"
WORKER_HEADER = "X-Delivered-By"


def name_the_worker(event: BeforeEvent) -> None:
    """A ``before`` listener: the attempt says which worker (Celery node) sends it."""
    event.request.headers(WORKER_HEADER, str(current_task.request.hostname))


def make_app(broker_url: str | None, *, worker: bool = False) -> Celery:
    """The app on ``broker_url``: the producer's (it only names the task), or with
    ``worker=True`` the workers' (the task, the listener, the tick)."""
    app = Celery("sendoff_demo", broker=broker_url, set_as_current=False)
    app.conf.update(task_ignore_result=True, broker_connection_retry_on_startup=True)
    emitter = Emitter()
    if worker:
        emitter.on("before", name_the_worker)
        app.steps["worker"].add(Tick)
    register(app, emitter=emitter)
    return app


app = make_app(os.environ.get(BROKER_ENV), worker=True)
