"""Fixtures: one real server per target, shared by the tests of a module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.background.servers import TARGETS, Served, Target, start
from tests.support.process_server import (  # noqa: F401 - the hook attaches server output
    pytest_runtest_makereport,
)


@pytest.fixture(scope="module", params=TARGETS, ids=lambda t: t.name)
def served(request: pytest.FixtureRequest,
           tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    target: Target = request.param
    files = tmp_path_factory.mktemp(target.name)
    server = start(target.server, target.app, files)
    try:
        yield Served(server, files, target)
    finally:
        server.stop()
