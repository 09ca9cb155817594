"""pytest fixtures for :mod:`tests.support.real_servers`.

    from tests.support.real_server_fixtures import real_server  # noqa: F401

    def test_something(real_server):       # runs once per server in SERVERS
        real_server.url("/chunked/x"), real_server.supports, real_server.received()

``real_server`` is module-scoped: each server starts once per test module (pytest orders
the module's tests server by server) and is stopped before the next one starts. For a
subset of servers or another scope, make your own::

    from tests.support.real_server_fixtures import real_server_fixture

    c_server = real_server_fixture("nginx", "apache", "lighttpd", scope="session")

A server that cannot be installed or started makes the fixture FAIL (an error for every
test using it, with the reason and the server's output), never skip: a missing
dependency must not pass unnoticed.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.real_servers import SERVERS, RealServer, ServerUnavailable, start_server


def serve(name: str) -> Iterator[RealServer]:
    """Body of the fixtures: start ``name``, yield it, stop it; pytest.fail if it cannot."""
    with contextlib.ExitStack() as stack:
        problem = ""
        try:
            server = stack.enter_context(start_server(name))
        except ServerUnavailable as exc:
            problem = f"real server {name!r} is not installed and could not be: {exc}"
        except RuntimeError as exc:
            problem = f"real server {name!r} did not start: {exc}"
        if problem:  # failed outside the except blocks: no chained traceback to wade through
            pytest.fail(problem, pytrace=False)
        yield server


def real_server_fixture(
    *names: str, scope: Any = "module"
) -> Callable[..., Iterator[RealServer]]:
    """A fixture parametrised over ``names`` (default: every server), ids = names."""
    chosen = names or SERVERS
    unknown = set(chosen).difference(SERVERS)
    if unknown:
        raise ValueError(f"unknown servers {sorted(unknown)}; choose from {SERVERS}")

    @pytest.fixture(scope=scope, params=chosen, ids=list(chosen))
    def fixture(request: pytest.FixtureRequest) -> Iterator[RealServer]:
        yield from serve(request.param)

    return fixture


real_server = real_server_fixture()
