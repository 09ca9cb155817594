"""The two middlewares in-process, driven exactly as PEP 3333 / ASGI servers drive them."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Iterable, Iterator
from typing import Any
from wsgiref.util import FileWrapper

import pytest

from sendoff import asgi, background, wsgi

Events = list[str]


def serve_wsgi(app: Any, environ: dict[str, Any] | None = None) -> tuple[bytes, Iterable[bytes]]:
    """What a WSGI server does: call, iterate, close."""
    env = {"REQUEST_METHOD": "GET", "PATH_INFO": "/t", "wsgi.file_wrapper": FileWrapper,
           **(environ or {})}
    result = app(env, lambda status, headers, exc_info=None: None)
    try:
        body = b"".join(result)
    finally:
        result.close()
    return body, result


class Body:
    """A response iterable whose close() we can watch."""

    def __init__(self, events: Events) -> None:
        self.events = events

    def __iter__(self) -> Iterator[bytes]:
        self.events.append("sent")
        yield b"body"

    def close(self) -> None:
        self.events.append("inner close")


def test_wsgi_runs_tasks_after_the_app_iterable_is_closed() -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> Body:
        background.add(events.append, "task")
        return Body(events)

    body, _ = serve_wsgi(wsgi.BackgroundMiddleware(app))
    assert body == b"body"
    assert events == ["sent", "inner close", "task"]


def test_wsgi_generator_body_adds_tasks_to_its_own_request() -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        yield b"a"
        background.add(events.append, "added while iterating")
        events.append(f"queued: {len(background.tasks())}")
        yield b"b"

    assert serve_wsgi(wsgi.BackgroundMiddleware(app))[0] == b"ab"
    assert events == ["queued: 1", "added while iterating"]
    assert background.current_scope() is None  # nothing leaked into the server's context


def test_wsgi_file_wrapper_is_returned_as_is_for_sendfile() -> None:
    events: Events = []
    fh = io.BytesIO(b"file body")

    def app(environ: Any, start_response: Any) -> Any:
        background.add(events.append, "task")
        return environ["wsgi.file_wrapper"](fh)

    body, result = serve_wsgi(wsgi.BackgroundMiddleware(app))
    assert isinstance(result, FileWrapper)
    assert body == b"file body"
    assert fh.closed
    assert events == ["task"]


def test_wsgi_one_item_list_keeps_its_length() -> None:
    app = wsgi.BackgroundMiddleware(lambda environ, start_response: [b"x"])
    result = app({"REQUEST_METHOD": "GET"}, lambda *a: None)
    assert len(result) == 1  # type: ignore[arg-type]
    result.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("where", ["call", "iteration"])
def test_wsgi_failed_request_does_not_run_its_tasks(
    where: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> Iterator[bytes]:
        background.add(events.append, "task")
        if where == "call":
            raise RuntimeError("handler failed")
        return fail_while_sent()

    def fail_while_sent() -> Iterator[bytes]:
        yield b"partial"
        raise RuntimeError("body failed")

    with pytest.raises(RuntimeError):
        serve_wsgi(wsgi.BackgroundMiddleware(app))
    assert events == []
    assert "background tasks of GET /t not run" in caplog.text
    assert "builtins.list.append" in caplog.text


def test_wsgi_nested_middlewares_share_one_scope() -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        background.add(events.append, "task")
        return [b"ok"]

    serve_wsgi(wsgi.BackgroundMiddleware(wsgi.BackgroundMiddleware(app)))
    assert events == ["task"]


# -- ASGI --------------------------------------------------------------------------------


def serve_asgi(app: Any, scope_type: str = "http") -> tuple[list[Any], Events]:
    """Drive ``app`` once; return what it sent and the order things happened in."""
    sent: list[Any] = []
    events: Events = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        events.append(f"send {message['type']}{' more' if message.get('more_body') else ''}")

    scope = {"type": scope_type, "method": "GET", "path": "/t"}
    asyncio.run(app(scope, receive, send))
    return sent, events


def streaming_app(events_out: Events, *, fail: str = "") -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        background.add(events_out.append, "task")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        if fail == "before":
            raise RuntimeError("failed before the body")
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        await send({"type": "http.response.body", "body": b"b"})
        events_out.append("app returns")
        if fail == "after":
            raise RuntimeError("failed after the body")

    return app


def test_asgi_runs_tasks_after_the_last_body_and_the_app_returned() -> None:
    events: Events = []
    sent, order = serve_asgi(asgi.BackgroundMiddleware(streaming_app(events)))
    assert [m["type"] for m in sent] == ["http.response.start", *["http.response.body"] * 2]
    assert order == ["send http.response.start", "send http.response.body more",
                     "send http.response.body"]
    assert events == ["app returns", "task"]


def test_asgi_app_failing_after_the_response_still_owes_its_tasks() -> None:
    events: Events = []
    with pytest.raises(RuntimeError, match="after the body"):
        serve_asgi(asgi.BackgroundMiddleware(streaming_app(events, fail="after")))
    assert events == ["app returns", "task"]


def test_asgi_app_failing_before_the_response_is_complete_runs_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: Events = []
    with pytest.raises(RuntimeError, match="before the body"):
        serve_asgi(asgi.BackgroundMiddleware(streaming_app(events, fail="before")))
    assert events == []
    assert "not run (the application raised before finishing the response)" in caplog.text


@pytest.mark.parametrize("scope_type", ["lifespan", "websocket"])
def test_asgi_passes_other_scopes_through_untouched(scope_type: str) -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        seen.extend([scope, receive, send, background.current_scope()])

    async def receive() -> dict[str, Any]:
        return {}

    async def send(message: dict[str, Any]) -> None:
        pass

    scope = {"type": scope_type}
    asyncio.run(asgi.BackgroundMiddleware(app)(scope, receive, send))
    assert seen == [scope, receive, send, None]
