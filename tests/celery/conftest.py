"""Fixtures for sendoff on Celery: real brokers, real ``celery worker`` processes running
``tests.celery.worker_app`` (sendoff's task registered), and an outbox whose relay
publishes to them.

Nothing is mocked: redis-server and rabbitmq-server are Debian's (installed when missing,
see tests/support/brokers.py), each worker is a ``celery -A ... worker`` subprocess. The
broker fixtures come from ``tests.support.broker_fixtures``, which each test module that
uses them names in its ``pytest_plugins`` (pytest takes that only from the root conftest
or from test modules).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from sendoff import Outbox
from sendoff.celery import CeleryRelay
from tests.celery.helpers import LEASE, start_workers
from tests.support.brokers import CeleryWorker
from tests.support.celery_app import make_app


@pytest.fixture
def sendoff_workers(
    celery_worker_factory: Callable[..., CeleryWorker], celery_queue: str
) -> Callable[..., list[CeleryWorker]]:
    """``sendoff_workers(broker_url, count=2, env={...})`` -> started workers of the
    sendoff test app on the test's queue (killed at teardown)."""

    def make(broker_url: str, count: int = 2, **kwargs: Any) -> list[CeleryWorker]:
        return start_workers(celery_worker_factory, broker_url, celery_queue, count, **kwargs)

    return make


@pytest.fixture
def celery_outbox(tmp_path: Path, celery_queue: str) -> Iterator[Callable[..., Outbox]]:
    """``celery_outbox(broker_url, **outbox_kwargs)`` -> an Outbox on a fresh file whose
    CeleryRelay publishes to the test's queue (lease ``LEASE``); closed at teardown."""
    made: list[tuple[Outbox, Any]] = []

    def make(broker_url: str, *, path: Path | None = None, batch: int = 200,
             **kwargs: Any) -> Outbox:
        app = make_app(broker_url)
        kwargs.setdefault("lease", LEASE)
        outbox = Outbox(
            path or tmp_path / f"outbox-{len(made)}.sqlite3",
            relay=CeleryRelay(app, queue=celery_queue, batch=batch), **kwargs,
        )
        made.append((outbox, app))
        return outbox

    yield make
    for outbox, app in made:
        outbox.exit_timeout = 0.5
        outbox.close()
        app.close()
