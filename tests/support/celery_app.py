"""A tiny Celery app for broker tests: tasks append a line to a file.

Workers start it with ``celery -A tests.support.celery_app worker`` (see
:class:`tests.support.brokers.CeleryWorker`): the broker URL comes from
``$SENDOFF_TEST_BROKER``, extra settings from ``$SENDOFF_TEST_CELERY_CONF`` (JSON). A test
process makes its own app for the broker it talks to::

    app = make_app(broker_url, task_default_queue=queue)
    app.tasks[APPEND].delay(str(path), "line")

A line is ``"<text> <worker nodename> <pid>"``, written with one ``O_APPEND`` write, so any
number of pool processes can append to the same file without interleaving.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from celery import Celery

from demo.celery_tick import Tick

BROKER_ENV = "SENDOFF_TEST_BROKER"
CONF_ENV = "SENDOFF_TEST_CELERY_CONF"
APPEND = "sendoff_test.append"
SLOW_APPEND = "sendoff_test.slow_append"


def _write_line(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def make_app(broker_url: str | None = None, **conf: Any) -> Celery:
    """A Celery app on ``broker_url`` (default ``$SENDOFF_TEST_BROKER``) with the test tasks.

    Settings: ``$SENDOFF_TEST_CELERY_CONF``, then ``conf``; no result backend.
    """
    app = Celery(
        "sendoff_test", broker=broker_url or os.environ.get(BROKER_ENV), set_as_current=False
    )
    app.conf.update(
        task_ignore_result=True,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=True,
        worker_redirect_stdouts_level="INFO",
    )
    app.conf.update(json.loads(os.environ.get(CONF_ENV) or "{}"))
    app.conf.update(conf)
    app.steps["worker"].add(Tick)

    @app.task(name=APPEND, bind=True, shared=False)
    def append(self: Any, path: str, text: str) -> None:
        """Append ``text`` (and who ran it) as one line to the file ``path``."""
        _write_line(path, f"{text} {self.request.hostname} {os.getpid()}")

    @app.task(name=SLOW_APPEND, bind=True, shared=False)
    def slow_append(self: Any, path: str, text: str, seconds: float) -> None:
        """Write ``started <text> <nodename> <pid> redelivered=<bool>``, sleep ``seconds``,
        then append like ``append``.

        A test can kill the pool process (or the worker) while the task sleeps.
        """
        redelivered = bool(self.request.delivery_info.get("redelivered"))
        _write_line(
            path, f"started {text} {self.request.hostname} {os.getpid()} redelivered={redelivered}"
        )
        time.sleep(seconds)
        _write_line(path, f"{text} {self.request.hostname} {os.getpid()}")

    return app


app = make_app()
