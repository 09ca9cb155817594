"""What every fixture app shares: the task functions and the test endpoints.

Tasks write files into ``$SENDOFF_TEST_DIR`` so that the test (another process) can see
what ran and when. Endpoints, under whatever prefix the app mounts them:

``/plain``                 no task
``/block?id=X&size=N``     a task that waits for ``release-X`` then writes ``done-X``;
                           the response body is N bytes
``/pair?id=X&other=Y``     adds ``record(X)`` (async apps: ``record_async``), writes
                           ``added-X``, waits for ``added-Y`` (so both requests are in
                           flight at once), answers with the tasks queued in its request
``/fail?id=X``             three tasks: ``first-X``, one that raises, ``third-X``
``/hold?id=X``             adds ``touch(ran-X)``, writes ``held-X``, waits for ``go-X``, then
                           answers (the test resets the connection in between)
``/stream?id=X``           (plain apps) the same, but sends a first part before waiting
``/linger?id=X``           a task that writes ``lingering-X``, waits for ``release-X``, then
                           writes ``done-X`` (for the shutdown tests)
``/thread?id=X``           a thread started by the handler calls background.add() (outside
                           the request's context); writes what that raised to ``thread-X``
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

from sendoff import background

logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
log = logging.getLogger("fixture")

DIR = Path(os.environ.get("SENDOFF_TEST_DIR", "."))
WAIT = 30.0  # the longest any fixture waits for the test; a bound, not a pace


def touch(name: str, text: str = "") -> None:
    """Write a file so that it appears complete (the test polls for it)."""
    partial = DIR / f".{name}.partial"
    partial.write_text(text)
    os.replace(partial, DIR / name)


def wait_for(name: str) -> None:
    deadline = time.monotonic() + WAIT
    while not (DIR / name).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} never appeared")
        time.sleep(0.005)


async def wait_for_async(name: str) -> None:
    deadline = time.monotonic() + WAIT
    while not (DIR / name).exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name} never appeared")
        await asyncio.sleep(0.005)


# -- tasks -------------------------------------------------------------------------------


def wait_then_write(rid: str) -> None:
    wait_for(f"release-{rid}")
    touch(f"done-{rid}", rid)


def linger(rid: str) -> None:
    touch(f"lingering-{rid}")
    wait_for(f"release-{rid}")
    touch(f"done-{rid}", rid)


async def linger_async(rid: str) -> None:
    touch(f"lingering-{rid}")
    await wait_for_async(f"release-{rid}")
    touch(f"done-{rid}", rid)


def record(rid: str) -> None:
    """Write ran-X, naming the scope that ran it; a second run would leave dup-X."""
    scope = background.current_scope()
    name = f"dup-{rid}" if (DIR / f"ran-{rid}").exists() else f"ran-{rid}"
    touch(name, f"{rid} {scope.label if scope else None}")


async def record_async(rid: str) -> None:
    """record() as a coroutine function: async apps add this one."""
    await asyncio.sleep(0)
    record(rid)


def boom(rid: str) -> None:
    raise ValueError(f"boom-{rid}")


# -- endpoints ---------------------------------------------------------------------------


def handle(path: str, params: dict[str, str]) -> str:
    """Serve a test endpoint from a sync handler; returns the response body."""
    if path.endswith("/hold"):
        hold(params["id"])
        wait_for(f"go-{params['id']}")
        return "held"
    if path.endswith("/linger"):
        background.add(linger, params["id"])
        return "lingering"
    if path.endswith("/thread"):
        add_from_a_thread(params["id"])
        return "threaded"
    if path.endswith("/pair"):
        _add_pair(params, record)
        wait_for(f"added-{params['other']}")
        return _queued()
    return _queue(path, params)


async def handle_async(path: str, params: dict[str, str]) -> str:
    """Serve a test endpoint from an async handler without blocking the loop."""
    if path.endswith("/hold"):
        hold(params["id"])
        await wait_for_async(f"go-{params['id']}")
        return "held"
    if path.endswith("/linger"):
        background.add(linger_async, params["id"])
        return "lingering"
    if path.endswith("/thread"):
        await asyncio.to_thread(add_from_a_thread, params["id"])
        return "threaded"
    if path.endswith("/pair"):
        _add_pair(params, record_async)
        await wait_for_async(f"added-{params['other']}")
        return _queued()
    return _queue(path, params)


def add_from_a_thread(rid: str) -> None:
    """background.add() in a plain thread: no request context there."""

    def outside() -> None:
        try:
            background.add(touch, f"ran-{rid}")
            touch(f"thread-{rid}", "accepted")
        except RuntimeError as exc:
            touch(f"thread-{rid}", str(exc))

    thread = threading.Thread(target=outside)
    thread.start()
    thread.join()


def hold(rid: str) -> None:
    """The first half of /hold and /stream: a task, then a sign that it is queued."""
    background.add(touch, f"ran-{rid}")
    touch(f"held-{rid}")


def _add_pair(params: dict[str, str], task: Callable[[str], object]) -> None:
    background.add(task, params["id"])
    touch(f"added-{params['id']}")


def _queued() -> str:
    return " ".join(f"{t.name.rsplit('.', 1)[-1]}:{t.args[0]}" for t in background.tasks())


def _queue(path: str, params: dict[str, str]) -> str:
    rid = params.get("id", "")
    if path.endswith("/block"):
        background.add(wait_then_write, rid)
        return f"queued {rid}\n".ljust(int(params.get("size", "0")), ".")
    if path.endswith("/fail"):
        background.add(touch, f"first-{rid}")
        background.add(boom, rid)
        background.add(touch, f"third-{rid}")
        return f"failing {rid}"
    return "plain"
