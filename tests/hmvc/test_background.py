"""Background tasks inside the App: no middleware, after the response, dropped on failure."""

from __future__ import annotations

import pathlib
import time

import pytest

from sendoff import External, Request
from sendoff.background import RequestScope
from sendoff.hmvc import App


def poll(check, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met before the deadline")
        time.sleep(0.02)


@pytest.fixture(params=["gunicorn", "uvicorn"])
def base_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def test_tasks_run_after_the_client_has_the_response(base_url, tmp_path):
    out, release = tmp_path / "out.txt", tmp_path / "release"
    with External("urllib3", timeout=20) as ext:
        resp = Request(f"{base_url}/tasks/add").query({"out": str(out), "release": str(release)})\
            .client(ext).execute()
    # the task is still waiting for the release: the response did not wait for it
    assert (resp.status, resp.text) == (200, "queued")
    assert not out.exists()
    release.touch()
    poll(out.exists)
    assert out.read_text() == "done"


def test_tasks_of_a_controller_that_raised_are_dropped_and_logged(base_url, tmp_path):
    out = tmp_path / "never.txt"
    with External("urllib3", timeout=20) as ext:
        resp = Request(f"{base_url}/tasks/fail").query("out", str(out)).client(ext).execute()
    assert resp.status == 500
    log = tmp_path / "server.log"
    poll(lambda: "write_when_released" in log.read_text(errors="replace"))
    assert "not run ('tasks/fail' raised)" in log.read_text()
    assert not out.exists()


def test_a_failing_sub_request_drops_only_its_own_tasks(app: App, tmp_path: pathlib.Path):
    out = str(tmp_path / "out")
    scope = RequestScope(label="test")
    with scope.active():
        resp = app.serve(Request("tasks/parent").query("out", out))
    assert resp.text == "parent done, sub-request answered 500"
    queued = [task.args[0] for task in scope.pending()]
    assert queued == [out + ".before", out + ".after"]
