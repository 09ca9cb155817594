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


# -- a response that does not reach the client drops its tasks ------------------------------
def gunicorn_like(app: Any, fail_write_at: int, error: BaseException) -> None:
    """gunicorn's sync/gthread handle_request: iterate and write, close in a finally."""
    result = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/t"}, lambda *a: None)
    try:
        for number, _part in enumerate(result, 1):
            if number == fail_write_at:
                raise error  # sock.sendall() to a client that reset
    finally:
        result.close()


def quiet_server(app: Any, parts: int) -> None:
    """A server (uWSGI, in C) that logs its write error, stops iterating and closes."""
    result = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/t"}, lambda *a: None)
    iterator = iter(result)
    for _ in range(parts):
        next(iterator)
    result.close()


def body_of(kind: str) -> Any:
    def generated() -> Iterator[bytes]:
        yield b"a"
        yield b"b"

    return {"list": [b"a", b"b"], "generator": generated()}[kind]


@pytest.mark.parametrize("kind", ["list", "generator"])
@pytest.mark.parametrize("error", [BrokenPipeError(32, "Broken pipe"),
                                   ConnectionResetError(104, "Connection reset by peer")])
def test_wsgi_a_write_that_fails_drops_the_tasks(
    kind: str, error: OSError, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> Any:
        background.add(events.append, "task")
        return body_of(kind)

    with pytest.raises(OSError, match=error.strerror):
        gunicorn_like(wsgi.BackgroundMiddleware(app), 2, error)
    assert events == []
    assert (f"background tasks of GET /t not run (the response did not reach the client: the"
            f" server was handling {type(error).__name__}: {error}): builtins.list.append"
            ) in caplog.text


@pytest.mark.parametrize("kind", ["list", "generator"])
def test_wsgi_a_server_that_stops_iterating_quietly_drops_the_tasks(
    kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> Any:
        background.add(events.append, "task")
        return body_of(kind)

    quiet_server(wsgi.BackgroundMiddleware(app), 1)
    assert events == []
    assert "not run (the server stopped sending the response after 1 part(s))" in caplog.text


def test_wsgi_every_part_taken_is_delivered_even_without_the_end_of_a_list() -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> Any:
        background.add(events.append, "task")
        return [b"a", b"b"]

    quiet_server(wsgi.BackgroundMiddleware(app), 2)  # all parts taken: nothing says lost
    assert events == ["task"]


def test_wsgi_an_exception_handled_before_close_is_not_a_failure() -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        background.add(events.append, "task")
        return [b"ok"]

    try:
        raise KeyError("handled by the server, over before close()")
    except KeyError:
        pass
    serve_wsgi(wsgi.BackgroundMiddleware(app))
    assert events == ["task"]


def test_wsgi_a_response_made_and_closed_while_handling_an_error_is_delivered() -> None:
    """An app called from an ``except`` block (an error listener making an in-process
    request, say): the exception being handled is not a failed write."""
    events: Events = []

    def app(environ: Any, start_response: Any) -> list[bytes]:
        background.add(events.append, "task")
        return [b"ok"]

    try:
        raise ConnectionResetError(104, "the error a listener is handling")
    except ConnectionResetError:
        serve_wsgi(wsgi.BackgroundMiddleware(app))
    assert events == ["task"]


def test_wsgi_file_wrapper_closed_while_sendfile_fails_drops_the_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: Events = []

    def app(environ: Any, start_response: Any) -> Any:
        background.add(events.append, "task")
        return environ["wsgi.file_wrapper"](io.BytesIO(b"file body"))

    result = wsgi.BackgroundMiddleware(app)(
        {"REQUEST_METHOD": "GET", "PATH_INFO": "/t", "wsgi.file_wrapper": FileWrapper},
        lambda *a: None,
    )
    def sendfile_then_close() -> None:
        try:
            raise BrokenPipeError(32, "Broken pipe")  # os.sendfile() to a gone client
        finally:
            result.close()

    with pytest.raises(BrokenPipeError):
        sendfile_then_close()
    assert events == []
    assert "the server was handling BrokenPipeError" in caplog.text


def serve_asgi_to(app: Any, *, receive_messages: list[dict[str, Any]],
                  send_error: BaseException | None = None) -> Events:
    """Drive ``app`` with a server whose receive yields ``receive_messages`` and then
    waits (a client still connected), and whose send may raise."""
    events: Events = []

    async def main() -> None:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        for message in receive_messages:
            queue.put_nowait(message)

        async def receive() -> dict[str, Any]:
            return await queue.get()

        async def send(message: dict[str, Any]) -> None:
            if send_error is not None and message["type"] == "http.response.body":
                raise send_error
            events.append(f"send {message['type']}")

        await app({"type": "http", "method": "GET", "path": "/t"}, receive, send)

    try:
        asyncio.run(main())
    except OSError as exc:
        events.append(f"raised {type(exc).__name__}")
    return events


REQUEST = {"type": "http.request", "body": b"", "more_body": False}
DISCONNECT = {"type": "http.disconnect"}


def test_asgi_a_client_gone_before_the_last_message_drops_the_tasks(
    caplog: pytest.LogCaptureFixture,
) -> None:
    ran: Events = []
    events = serve_asgi_to(asgi.BackgroundMiddleware(streaming_app(ran)),
                           receive_messages=[REQUEST, DISCONNECT])
    assert "send http.response.body" in events  # uvicorn: silently dropped
    assert ran == ["app returns"]  # and no "task"
    assert ("background tasks of GET /t not run (the client disconnected before the response"
            " was complete): builtins.list.append") in caplog.text


def test_asgi_a_connected_client_gets_its_tasks_run() -> None:
    ran: Events = []
    serve_asgi_to(asgi.BackgroundMiddleware(streaming_app(ran)), receive_messages=[REQUEST])
    assert ran == ["app returns", "task"]


def test_asgi_what_the_look_read_is_handed_to_the_app_in_order() -> None:
    seen: list[Any] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        background.add(seen.append, "task")
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})
        seen.append(await receive())  # after its response, as a listener would
        seen.append(await receive())

    serve_asgi_to(asgi.BackgroundMiddleware(app), receive_messages=[REQUEST, DISCONNECT])
    assert seen == [REQUEST, DISCONNECT]  # it was waiting before the last message: no task


def test_asgi_the_app_seeing_a_disconnect_drops_the_tasks() -> None:
    ran: Events = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        background.add(ran.append, "task")
        assert await receive() == REQUEST
        assert await receive() == DISCONNECT  # as Starlette's disconnect listener sees it
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    serve_asgi_to(asgi.BackgroundMiddleware(app), receive_messages=[REQUEST, DISCONNECT])
    assert ran == []


def test_asgi_a_send_that_raises_drops_the_tasks(caplog: pytest.LogCaptureFixture) -> None:
    ran: Events = []
    events = serve_asgi_to(asgi.BackgroundMiddleware(streaming_app(ran)),
                           receive_messages=[REQUEST],
                           send_error=ConnectionResetError(104, "Connection reset by peer"))
    assert events[-1] == "raised ConnectionResetError"
    assert ran == []
    assert "not run (the response did not reach the client: send raised ConnectionResetError)" \
        in caplog.text
