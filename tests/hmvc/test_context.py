"""Request.initial() / current() through nested sub-requests, threads and asyncio tasks."""

from __future__ import annotations

import asyncio
import io
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from sendoff import Internal, InvalidRequest, Request
from sendoff.hmvc import App, Controller, RecursionLimit


def who() -> str:
    initial, current = Request.initial(), Request.current()
    assert initial is not None
    assert current is not None
    return f"{initial.uri()}>{current.uri()}"


def make_app() -> App:
    app = App()
    app.route("default", "<controller>(/<action>(/<id>))")

    @app.controller("outer")
    class Outer(Controller):
        def action_index(self) -> None:
            before = who()
            middle = Request("middle").execute().text
            after = who()
            self.response.body = f"{before} [{middle}] {after} {self.request.is_initial()}"

    @app.controller("middle")
    class Middle(Controller):
        def action_index(self) -> None:
            inner = Request("inner/index/x").execute().text
            self.response.body = f"{who()} [{inner}] {who()} {self.request.is_initial()}"

    @app.controller("inner")
    class Inner(Controller):
        def action_index(self) -> None:
            ip = self.request.client_ip()
            self.response.body = f"{who()} {self.request.is_initial()} {ip}"

    @app.controller("loop")
    class Loop(Controller):
        def action_index(self) -> None:
            self.response.body = Request("loop").execute().body

    @app.controller("tasks")
    class Tasks(Controller):
        def action_index(self) -> None:
            async def sub(n: int) -> str:
                seen_in_task = who()
                await asyncio.sleep(0)  # let the other tasks interleave
                text = Request(f"inner/index/{n}").execute().text
                return f"{seen_in_task} {text} {who()}"

            async def both() -> list[str]:
                return list(await asyncio.gather(sub(1), sub(2)))

            self.response.body = " | ".join(asyncio.run(both()))

    return app


def test_nested_sub_requests() -> None:
    app = make_app()
    response = Request("outer").client(Internal(app)).client_ip("10.1.2.3").execute()
    assert response.text == (
        "outer>outer "
        "[outer>middle [outer>inner/index/x False 10.1.2.3] outer>middle False] "
        "outer>outer True"
    )
    assert Request.initial() is None
    assert Request.current() is None


def test_recursion_is_bounded(caplog: pytest.LogCaptureFixture) -> None:
    app = make_app()
    with caplog.at_level(logging.ERROR, logger="sendoff.hmvc"):
        response = Request("loop").client(Internal(app)).execute()
    assert response.status == 500
    [record] = caplog.records  # raised up to the outer request, logged once
    assert record.exc_info is not None
    assert isinstance(record.exc_info[1], RecursionLimit)
    assert "nested more than 20 deep ('loop' -> 'loop')" in str(record.exc_info[1])


def test_max_depth_is_configurable() -> None:
    app = make_app()
    app.max_depth = 1
    assert Request("middle").client(Internal(app)).execute().status == 200  # depth 1
    assert Request("outer").client(Internal(app)).execute().status == 500  # depth 2


def test_concurrent_threads_see_their_own_requests() -> None:
    app = make_app()
    gate = threading.Barrier(4)

    @app.controller("wait")
    class Wait(Controller):
        def action_index(self) -> None:
            gate.wait(timeout=30)  # all four are inside a controller at once
            inner = Request(f"inner/index/{self.request.param('id')}").execute().text
            self.response.body = f"{who()} {inner} {who()}"

    def serve(n: int) -> tuple[int, str]:
        environ = {
            "REQUEST_METHOD": "GET", "PATH_INFO": f"/wait/index/{n}", "QUERY_STRING": "",
            "REMOTE_ADDR": f"10.0.0.{n}", "wsgi.input": io.BytesIO(),
        }
        status: list[str] = []
        body = b"".join(app(environ, lambda s, h, e=None: status.append(s)))  # type: ignore[misc]
        return n, f"{status[0]} {body.decode()}"

    with ThreadPoolExecutor(4) as pool:
        results = dict(pool.map(serve, range(4)))
    for n in range(4):
        assert results[n] == (
            f"200 OK wait/index/{n}>wait/index/{n} "
            f"wait/index/{n}>inner/index/{n} False 10.0.0.{n} wait/index/{n}>wait/index/{n}"
        )


def test_asyncio_tasks_inherit_and_restore() -> None:
    response = Request("tasks").client(Internal(make_app())).execute()
    assert response.text == (
        "tasks>tasks tasks>inner/index/1 False None tasks>tasks | "
        "tasks>tasks tasks>inner/index/2 False None tasks>tasks"
    )


def test_concurrent_asgi_requests_see_their_own_initial() -> None:
    app = make_app()

    async def one(n: int) -> str:
        scope: dict[str, Any] = {
            "type": "http", "method": "GET", "path": f"/inner/index/{n}", "query_string": b"",
            "headers": [], "client": (f"10.9.0.{n}", 5000),
        }
        sent: list[dict[str, Any]] = []
        messages = [{"type": "http.request", "body": b"", "more_body": False}]

        async def receive() -> dict[str, Any]:
            return messages.pop()

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app.asgi(scope, receive, send)
        return bytes(sent[1]["body"]).decode()

    async def main() -> list[str]:
        return list(await asyncio.gather(*(one(n) for n in range(3))))

    assert asyncio.run(main()) == [
        f"inner/index/{n}>inner/index/{n} True 10.9.0.{n}" for n in range(3)
    ]


def test_internal_request_without_an_app_is_a_clear_error() -> None:
    with pytest.raises(InvalidRequest, match="no App is serving"):
        Request("widget/list").execute()
