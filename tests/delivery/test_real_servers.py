"""2,000 mixed requests through the engine to eight real servers, with pipelining off,
2 and 8: every request is received exactly once and every receipt carries its own answer.

The servers (nginx, Apache, lighttpd, gunicorn, uvicorn, hypercorn, Node's ``http``,
``http.server``) are installed and started by tests/support/real_servers.py; each echoes
the ``X-Request-Id`` it got, in a header and in the body, and logs it. The requests mix
GET, POST, PUT, DELETE and HEAD, 1 MB bodies, and length-delimited, chunked and
close-delimited answers (where the server can produce them).
"""

from __future__ import annotations

import random
from collections import Counter

import pytest

from sendoff import FireAndForget, Request
from tests.support.real_servers import SERVERS, RealServer, new_id, start_server

REQUESTS = 2000
BIG = b"x" * (1024 * 1024)
#: (method, share of the requests)
MIX = [("GET", 40), ("POST", 20), ("PUT", 10), ("DELETE", 10), ("HEAD", 20)]


@pytest.fixture(scope="module", params=SERVERS)
def real(request: pytest.FixtureRequest):
    with start_server(request.param) as srv:
        yield srv


def _plan(srv: RealServer, seed: int) -> list[tuple[str, str, str, bytes]]:
    """(id, method, path, body) for each request: a reproducible mix."""
    rng = random.Random(seed)
    methods = [m for m, share in MIX for _ in range(share)]
    framings = sorted(srv.supports)
    plan = []
    for n in range(REQUESTS):
        method = rng.choice(methods)
        framing = rng.choice(framings)
        body = b""
        if method in ("POST", "PUT"):
            body = BIG if n % 200 == 7 else f"n={n}".encode()
        plan.append((new_id(f"p{n}"), method, f"/{framing}/{n}", body))
    return plan


@pytest.mark.parametrize("pipeline", [1, 2, 8])
def test_each_request_once_each_receipt_its_own_answer(real: RealServer, pipeline: int):
    plan = _plan(real, seed=pipeline)
    client = FireAndForget(timeout=30, pipeline=pipeline, connections_per_origin=8, retries=0)
    since = real.count()
    receipts = []
    for rid, method, path, body in plan:
        request = Request(real.url(path), method).headers("X-Request-Id", rid)
        if body:
            request.body(body)
        receipts.append(client.execute(request))
    assert client.flush(120)

    wrong = []
    for (rid, method, path, _), receipt in zip(plan, receipts, strict=True):
        response = receipt.response
        if response is None:
            wrong.append((rid, method, path, repr(receipt.error)))
            continue
        echoed = response.headers.get("x-request-id")
        expected_body = b"" if method == "HEAD" else f"id={rid}\n".encode()
        if response.status != 200 or echoed != rid or response.body != expected_body:
            wrong.append((rid, method, path, response.status, echoed, response.body[:40]))
    assert wrong == [], f"{len(wrong)} wrong, first: {wrong[:3]}"

    real.wait_for_ids([rid for rid, *_ in plan], timeout=30)
    new = Counter(real.received(since=since))
    assert set(new) == {rid for rid, *_ in plan}
    assert max(new.values()) == 1, [rid for rid, n in new.items() if n > 1][:5]
    stats = client.stats()
    assert stats["failed"] == 0
    assert stats["delivered"] >= REQUESTS
