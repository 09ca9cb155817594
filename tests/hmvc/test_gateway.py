"""The main request as WSGI and ASGI servers hand it over, and what goes back."""

from __future__ import annotations

import asyncio
import io
import json
from typing import Any

import pytest

from sendoff.hmvc import App, Controller


def make_app(**options: Any) -> App:
    app = App(**options)
    app.route("any", "<path>", {"controller": "show"}, regex={"path": ".*"})

    @app.controller("show")
    class Show(Controller):
        def action_index(self) -> None:
            r = self.request
            self.response.headers.add("Set-Cookie", "a=1")
            self.response.headers.add("Set-Cookie", "b=2")
            self.response.body = json.dumps(
                {"path": r.param("path"), "ip": r.client_ip(), "post": r.post(),
                 "body": r.body().decode(), "query": r.query()}
            )

    return app


def call_wsgi(
    app: App, path: str = "/", **environ: Any
) -> tuple[str, list[tuple[str, str]], bytes]:
    body = environ.pop("body", b"")
    env: dict[str, Any] = {
        "REQUEST_METHOD": "GET", "PATH_INFO": path, "QUERY_STRING": "",
        "REMOTE_ADDR": "127.0.0.1", "wsgi.input": io.BytesIO(body),
        "CONTENT_LENGTH": str(len(body)) if body else "", **environ,
    }
    seen: list[Any] = []
    out = b"".join(app(env, lambda status, headers, exc=None: seen.extend([status, headers])))
    return seen[0], seen[1], out


def test_decoded_path_with_question_mark_is_routed_whole() -> None:
    # "/a%3Fb/%C3%A9" as a server decodes it into PATH_INFO (latin-1 of the bytes)
    path = "/a?b/é".encode().decode("latin-1")
    status, headers, body = call_wsgi(make_app(), path, QUERY_STRING="q=%C3%A9")
    assert status == "200 OK"
    assert json.loads(body)["path"] == "a?b/é"
    assert json.loads(body)["query"] == {"q": "é"}
    assert [v for k, v in headers if k == "Set-Cookie"] == ["a=1", "b=2"]


def test_form_body_becomes_post_fields() -> None:
    _, _, body = call_wsgi(
        make_app(), REQUEST_METHOD="POST", body=b"a=1&b=x+y&a=2",
        CONTENT_TYPE="application/x-www-form-urlencoded; charset=utf-8",
    )
    assert json.loads(body)["post"] == {"a": ["1", "2"], "b": "x y"}


def test_other_bodies_stay_raw() -> None:
    _, _, body = call_wsgi(make_app(), REQUEST_METHOD="POST", body=b"<xml/>",
                           CONTENT_TYPE="text/xml")
    assert json.loads(body)["body"] == "<xml/>"
    assert json.loads(body)["post"] == {}


@pytest.mark.parametrize(
    ("trusted", "expected"),
    [
        ((), "127.0.0.1"),  # a peer that is no proxy: X-Forwarded-For is ignored
        (("127.0.0.1",), "10.0.0.2"),  # the hop before the trusted proxy
        (("127.0.0.1", "10.0.0.2"), "203.0.113.9"),  # past every trusted hop
    ],
)
def test_forwarded_for_is_believed_from_trusted_proxies_only(
    trusted: tuple[str, ...], expected: str
) -> None:
    app = make_app(trusted_proxies=trusted)
    _, _, body = call_wsgi(app, HTTP_X_FORWARDED_FOR="198.51.100.1, 203.0.113.9, 10.0.0.2")
    assert json.loads(body)["ip"] == expected


def test_body_over_the_limit_is_413() -> None:
    status, _, _ = call_wsgi(make_app(max_body=4), REQUEST_METHOD="POST", body=b"12345")
    assert status == "413 Request Entity Too Large"


def test_unusable_request_is_400() -> None:
    status, _, body = call_wsgi(make_app(), REQUEST_METHOD="GE T")
    assert status == "400 Bad Request"
    assert b"method" in body


def asgi_call(app: App, scope: dict[str, Any], chunks: list[bytes]) -> list[dict[str, Any]]:
    messages = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app.asgi(scope, receive, send))
    return sent


def test_asgi_request_in_chunks() -> None:
    scope = {
        "type": "http", "method": "POST", "path": "/x/y", "query_string": b"k=v",
        "headers": [(b"content-type", b"application/x-www-form-urlencoded")],
        "client": ("192.0.2.5", 1234),
    }
    start, body = asgi_call(make_app(), scope, [b"a=1", b"&b=2"])
    assert start["status"] == 200
    assert (b"content-type", b"text/html; charset=utf-8") in start["headers"]
    seen = json.loads(body["body"])
    assert seen["post"] == {"a": "1", "b": "2"}
    assert (seen["path"], seen["ip"], seen["query"]) == ("x/y", "192.0.2.5", {"k": "v"})


def test_asgi_lifespan_and_other_scopes() -> None:
    app = make_app()
    incoming = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return incoming.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app.asgi({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    with pytest.raises(ValueError, match="HTTP only"):
        asyncio.run(app.asgi({"type": "websocket"}, receive, send))
