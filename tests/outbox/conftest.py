"""Fixtures for the outbox store: a store on a fresh file, a message factory, a clock."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from sendoff.outbox import NewMessage, Store

ROOT = Path(__file__).resolve().parents[2]
WORKERS = "tests.outbox.workers"


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


def message(
    n: int = 0,
    origin: str = "http://a.example:80",
    **kwargs: object,
) -> NewMessage:
    """A small message to ``origin``; ``kwargs`` override NewMessage fields."""
    host = origin.split("://", 1)[1].rsplit(":", 1)[0]
    url = f"{origin.split('://')[0]}://{host}/hook/{n}?token=secret-{n}"
    wire = f"POST /hook/{n} HTTP/1.1\r\nHost: {host}\r\nContent-Length: 2\r\n\r\n{{}}".encode()
    fields: dict[str, object] = {
        "method": "POST",
        "url": url,
        "origin": origin,
        "wire": wire,
        "timeout": 10.0,
    }
    fields.update(kwargs)
    return NewMessage(**fields)  # type: ignore[arg-type]


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "outbox.sqlite3"


@pytest.fixture
def store(db_path: Path, clock: Clock) -> Iterator[Store]:
    s = Store(db_path, clock=clock)
    yield s
    s.close()


@pytest.fixture
def make_store(db_path: Path, clock: Clock) -> Iterator[Callable[..., Store]]:
    opened: list[Store] = []

    def make(path: Path | None = None, **kwargs: object) -> Store:
        kwargs.setdefault("clock", clock)
        s = Store(path or db_path, **kwargs)  # type: ignore[arg-type]
        opened.append(s)
        return s

    yield make
    for s in opened:
        s.close()


def worker(*args: str, **kwargs: object) -> subprocess.Popen[str]:
    """Start ``python -m tests.outbox.workers ARGS`` from the repository root."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, "-m", WORKERS, *args],
        cwd=ROOT,
        env=env,
        text=True,
        **kwargs,
    )
