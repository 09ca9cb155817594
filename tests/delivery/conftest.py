"""Fixtures of the delivery tests: clients with short timeouts, per-origin counters."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import sendoff
from sendoff import FireAndForget


@pytest.fixture
def client() -> Iterator[FireAndForget]:
    """A background FireAndForget that fails fast (no connect retries, 5 s timeout)."""
    ff = FireAndForget(timeout=5.0, retries=0)
    yield ff
    ff.flush(10)


def origin_stats(url: str) -> dict[str, Any]:
    """The process-wide counters of ``url``'s origin (each test server has its own port)."""
    scheme, _, rest = url.partition("://")
    label = f"{scheme}://{rest.split('/', 1)[0]}"
    return sendoff.stats()["origins"].get(label, {})
