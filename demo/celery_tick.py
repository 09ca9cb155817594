"""A Celery worker step that makes warm shutdown prompt: ``app.steps["worker"].add(Tick)``.

A worker notices SIGTERM (warm shutdown) only when its event loop wakes up, and an idle
loop may sleep in ``epoll`` up to 10 s (kombu's ``Hub.fire_timers`` ``max_delay``); with
a repeating 0.2 s timer a worker stops in a second or two instead of up to ~11 s. Used by
the demo's workers and the tests' (``tests/support/celery_app.py``).
"""

from __future__ import annotations

from typing import Any

from celery import bootsteps


class Tick(bootsteps.StartStopStep):
    """Wake the worker's event loop every 0.2 s."""

    requires = ("celery.worker.components:Hub",)

    def start(self, worker: Any) -> None:
        if worker.hub is not None:
            worker.hub.call_repeatedly(0.2, _noop)


def _noop() -> None:
    pass
