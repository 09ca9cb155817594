"""After-response tasks on real servers: gunicorn (sync, gthread), uvicorn, Django, Flask,
FastAPI and Starlette, each started as a subprocess on 127.0.0.1.

No test sleeps or times anything: a task that must still be running blocks until the test
creates its ``release-<id>`` file, which the test does only after it holds what it checks.
"""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.background.servers import TARGETS, Served, new_id

ASGI = [t for t in TARGETS if t.server == "uvicorn"]
RECIPES = [t for t in TARGETS if not t.app.startswith("plain_")]


def test_client_has_the_whole_response_while_the_task_still_waits(served: Served) -> None:
    rid = new_id()
    status, body = served.request(f"/block?id={rid}&size=200000")

    assert status == 200
    assert len(body) == 200000
    assert body.startswith(f"queued {rid}".encode())
    assert not served.path(f"done-{rid}").exists()  # the task waits for us
    served.release(rid)
    assert served.wait_file(f"done-{rid}") == rid


def test_concurrent_requests_never_run_each_others_tasks(served: Served) -> None:
    a, b = new_id(), new_id()
    # Each handler adds its task, then waits until the other has added its own: both
    # requests are in flight at once, on two threads, workers or event-loop tasks.
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(served.request, f"/pair?id={a}&other={b}")
        second = pool.submit(served.request, f"/pair?id={b}&other={a}")
        responses = first.result(), second.result()

    # Each lists its own task only (record, or record_async in async apps).
    assert [status for status, _ in responses] == [200, 200]
    assert [body.decode().replace("_async", "") for _, body in responses] == [
        f"record:{a}", f"record:{b}"
    ]
    assert served.wait_file(f"ran-{a}").startswith(f"{a} GET ")
    assert served.wait_file(f"ran-{b}").startswith(f"{b} GET ")
    assert not list(served.files.glob("dup-*"))  # and each ran exactly once


def test_a_failing_task_is_logged_with_its_traceback(served: Served) -> None:
    assert served.target is not None
    rid = new_id()
    status, body = served.request(f"/fail?id={rid}")
    assert (status, body) == (200, f"failing {rid}".encode())

    assert served.wait_file(f"first-{rid}") == ""
    output = served.server.wait_for_output(f"ValueError: boom-{rid}")
    assert "Traceback (most recent call last)" in output
    summary = served.server.wait_for_output(f"common.boom (ValueError: boom-{rid})")
    assert "BackgroundTasksFailed" in summary
    if served.target.on_error == "continue":
        served.wait_file(f"third-{rid}")
    else:  # "stop": the summary, logged after the run, names the skipped task
        assert "skipped after the failure: common.touch" in summary
        assert not served.path(f"third-{rid}").exists()


# Under WSGI, inline tasks hold the worker (and so its connection) by design.
@pytest.mark.parametrize("served", ASGI, indirect=True, ids=lambda t: t.name)
def test_next_request_on_the_same_connection_does_not_wait(served: Served) -> None:
    rid = new_id()
    conn = served.connection()
    try:
        assert served.request(f"/block?id={rid}", conn=conn)[0] == 200
        sock = conn.sock
        assert served.request("/plain", conn=conn) == (200, b"plain")
        assert conn.sock is sock  # the same keep-alive connection
    finally:
        conn.close()
    assert not served.path(f"done-{rid}").exists()
    served.release(rid)
    served.wait_file(f"done-{rid}")


@pytest.mark.parametrize("served", RECIPES, indirect=True, ids=lambda t: t.name)
def test_readme_recipe_route(served: Served) -> None:
    order = new_id()[1:]
    status, body = served.request(f"/orders/{order}", method="POST", prefixed=False)
    assert status == 200
    assert json.loads(body) == {"order": int(order), "status": "placed"}
    output = served.server.wait_for_output(f"receipt for order {order} sent")
    assert output.count(f"receipt for order {order} sent") == 1


PLAIN = [t for t in TARGETS if t.app.startswith("plain_")]


@pytest.mark.parametrize("served", PLAIN, indirect=True, ids=lambda t: t.name)
def test_readme_plain_recipe(served: Served) -> None:
    assert served.request("/readme", prefixed=False) == (200, b"ok")
    served.server.wait_for_output("after the response to /readme")
