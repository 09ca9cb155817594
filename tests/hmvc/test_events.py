"""The event lifecycle runs for internal requests as for external ones."""

from __future__ import annotations

import io
from typing import Any

import pytest

from sendoff import Internal, Request, Response
from sendoff.hmvc import App


def test_before_complete_end_fire_in_order(app: App) -> None:
    client = Internal(app)
    seen: list[str] = []
    client.emitter.on("before", lambda e: seen.append(f"before {e.request.uri()}"))
    client.emitter.on("complete", lambda e: seen.append(f"complete {e.response.status}"))
    client.emitter.on("end", lambda e: seen.append("end"))
    client.emitter.on("error", lambda e: seen.append("error"))
    response = Request("welcome/nothing").client(client).execute()
    assert response.status == 404
    assert seen == ["before welcome/nothing", "complete 404", "end"]


def test_sub_requests_go_through_the_same_client(app: App) -> None:
    client = Internal(app)
    uris: list[str] = []
    client.emitter.on("before", lambda e: uris.append(e.request.uri()))
    assert Request("page").client(client).execute().status == 200
    assert uris == ["page", "widget/news", "widget/weather/3"]


def test_app_internal_client_sees_main_and_sub_requests_served_over_wsgi(app: App) -> None:
    uris: list[str] = []

    def listener(event: Any) -> None:
        uris.append(event.request.uri())

    app.internal.emitter.on("complete", listener)
    try:
        environ = {"REQUEST_METHOD": "GET", "PATH_INFO": "/page", "wsgi.input": io.BytesIO()}
        body = b"".join(app(environ, lambda *args: None))
    finally:
        app.internal.emitter.off("complete", listener)
    assert body == b"<main>[news p1][weather p3]</main>"
    assert uris == ["widget/news", "widget/weather/3", "page"]


def test_before_may_intercept(app: App) -> None:
    client = Internal(app)
    client.emitter.on("before", lambda e: e.intercept(Response(203, body=b"cached")))
    response = Request("fail").client(client).execute()  # the failing controller never runs
    assert (response.status, response.body) == (203, b"cached")


def test_error_fires_when_a_wsgi_app_raises() -> None:
    def broken(environ: Any, start_response: Any) -> Any:
        raise ConnectionResetError("backend gone")

    client = Internal(broken)
    errors: list[BaseException] = []
    client.emitter.on("error", lambda e: errors.append(e.exception))
    with pytest.raises(ConnectionResetError, match="backend gone"):
        Request("x").client(client).execute()
    assert [type(e) for e in errors] == [ConnectionResetError]


def test_error_listener_may_recover() -> None:
    def broken(environ: Any, start_response: Any) -> Any:
        raise ConnectionResetError("backend gone")

    client = Internal(broken)
    client.emitter.on("error", lambda e: e.intercept(Response(503, body=b"later")))
    assert Request("x").client(client).execute().status == 503


def test_retry_runs_the_app_again(app: App) -> None:
    client = Internal(app)
    attempts: list[int] = []

    def complete(event: Any) -> None:
        attempts.append(event.response.status)
        if event.retry_count == 0:
            event.retry()

    client.emitter.on("complete", complete)
    assert Request("widget/a").client(client).execute().text == "[a p1]"
    assert attempts == [200, 200]
