"""What the demo prints: a heading per section, and a progress line each second of a wait."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

SECTIONS = 6


def heading(number: int, title: str, proves: str) -> None:
    """One line: the section, and what it proves."""
    print(f"\n== {number}/{SECTIONS} {title}: {proves} ==\n", flush=True)


@contextmanager
def progress(what: str, status: Callable[[], str] | None = None,
             every: float = 1.0) -> Iterator[None]:
    """Print ``... what: status (N s)`` every ``every`` seconds while the block runs, so
    that no wait of more than a second is silent."""
    stop = threading.Event()
    started = time.perf_counter()

    def report() -> None:
        while not stop.wait(every):
            now = f": {status()}" if status is not None else ""
            print(f"   ... {what}{now} ({time.perf_counter() - started:.0f} s)", flush=True)

    thread = threading.Thread(target=report, name="demo-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
