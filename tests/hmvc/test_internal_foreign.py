"""Internal against other frameworks' applications, in-process: Flask (WSGI), Django
(WSGI and ASGI) and FastAPI (ASGI, with its lifespan)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import fastapi
import pytest

from sendoff import Internal, Request, TimeoutError

# -- Flask ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def flask_app() -> Any:
    import flask

    app = flask.Flask("sendoff_test")

    @app.route("/users/<int:user_id>", methods=["GET", "POST"])
    def user(user_id: int) -> Any:
        req = flask.request
        resp = flask.jsonify(
            id=user_id, method=req.method, args=req.args.to_dict(flat=False),
            form=req.form.to_dict(), cookie=req.cookies.get("sid"),
            header=req.headers.get("X-Token"), host=req.host, remote=req.remote_addr,
        )
        resp.set_cookie("seen", "yes")
        return resp

    @app.route("/boom")
    def boom() -> str:
        raise RuntimeError("flask failure")

    return app


def test_flask_get_and_post(flask_app: Any) -> None:
    client = Internal(flask_app)
    assert client.kind == "wsgi"
    got = Request("users/7?tag=a&tag=b").client(client).cookie("sid", "s1").execute()
    assert got.status == 200
    assert got.json() == {
        "id": 7, "method": "GET", "args": {"tag": ["a", "b"]}, "form": {}, "cookie": "s1",
        "header": None, "host": "localhost", "remote": "127.0.0.1",
    }
    assert got.cookies == {"seen": "yes"}
    posted = (
        Request("http://api.example:8080/users/8").client(client).method("POST")
        .post("name", "Ada").headers("X-Token", "t0k").execute()
    )
    data = posted.json()
    assert (data["method"], data["form"], data["header"]) == ("POST", {"name": "Ada"}, "t0k")
    assert data["host"] == "api.example:8080"


def test_flask_error_and_missing_route(flask_app: Any) -> None:
    client = Internal(flask_app)
    assert Request("boom").client(client).execute().status == 500
    assert Request("nowhere").client(client).execute().status == 404


# -- Django -----------------------------------------------------------------------------


def _django_view(request: Any, item: str) -> Any:
    from django.http import JsonResponse

    return JsonResponse(
        {"item": item, "method": request.method, "q": request.GET.get("q"),
         "form": request.POST.dict(), "ua": request.headers.get("User-Agent")}
    )


urlpatterns: list[Any] = []


@pytest.fixture(scope="module")
def django_configured() -> None:
    import django
    from django.conf import settings
    from django.urls import path

    if not settings.configured:
        settings.configure(
            DEBUG=False, SECRET_KEY="sendoff-tests", ALLOWED_HOSTS=["localhost"],
            ROOT_URLCONF=__name__, MIDDLEWARE=[], INSTALLED_APPS=[], USE_TZ=True,
        )
        django.setup()
    # internal URIs lose their trailing slash, as in Kohana: no slash in the pattern
    urlpatterns[:] = [path("items/<str:item>", _django_view)]


@pytest.mark.usefixtures("django_configured")
@pytest.mark.parametrize("interface", ["wsgi", "asgi"])
def test_django(interface: str) -> None:
    if interface == "wsgi":
        from django.core.wsgi import get_wsgi_application

        client = Internal(get_wsgi_application())
    else:
        from django.core.asgi import get_asgi_application

        client = Internal(get_asgi_application())
    try:
        assert client.kind == interface
        got = Request("items/tea?q=green").client(client).execute()
        assert got.status == 200
        assert got.json() == {
            "item": "tea", "method": "GET", "q": "green", "form": {}, "ua": "sendoff/0.1.0",
        }
        posted = Request("items/cup").client(client).method("POST").post("size", "L").execute()
        assert posted.json()["form"] == {"size": "L"}
        assert Request("items").client(client).execute().status == 404
    finally:
        client.close()


# -- FastAPI ----------------------------------------------------------------------------


@pytest.fixture
def fastapi_app() -> tuple[Any, list[str]]:
    events: list[str] = []
    never = asyncio.Event()

    @asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, Any]]:
        events.append("startup")
        yield {"greeting": "hi"}
        events.append("shutdown")

    app = fastapi.FastAPI(lifespan=lifespan)

    @app.post("/items/{item_id}")
    async def create(item_id: int, payload: dict[str, Any], request: fastapi.Request) -> Any:
        return {
            "id": item_id, "payload": payload, "greeting": request.state.greeting,
            "verbose": request.query_params.get("verbose"),
            "x": request.headers.get("x-trace"),
        }

    @app.get("/stuck")
    async def stuck() -> None:
        await never.wait()

    return app, events


def test_fastapi_with_lifespan(fastapi_app: tuple[Any, list[str]]) -> None:
    app, events = fastapi_app
    client = Internal(app)
    assert client.kind == "asgi"
    try:
        got = (
            Request("items/3").client(client).method("POST").query("verbose", "1")
            .json({"name": "pen"}).headers("X-Trace", "abc").execute()
        )
        assert got.status == 200, got.text
        assert got.json() == {
            "id": 3, "payload": {"name": "pen"}, "greeting": "hi", "verbose": "1", "x": "abc",
        }
        bad = Request("items/notanumber").client(client).method("POST").json({}).execute()
        assert bad.status == 422
        assert events == ["startup"]
    finally:
        client.close()
    assert events == ["startup", "shutdown"]


def test_fastapi_timeout(fastapi_app: tuple[Any, list[str]]) -> None:
    client = Internal(fastapi_app[0], timeout=0.2)
    try:
        with pytest.raises(TimeoutError, match="did not answer GET /stuck"):
            Request("stuck").client(client).execute()
    finally:
        client.close()
    assert fastapi_app[1] == ["startup", "shutdown"]


def test_asgi_app_calling_itself_through_internal_is_refused() -> None:
    client: Internal

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # no lifespan
        try:
            Request("again").client(client).execute()
            text = b"no error"
        except RuntimeError as exc:
            text = str(exc).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": text})

    client = Internal(app)
    try:
        assert "from inside that app's own requests" in Request("x").client(client).execute().text
    finally:
        client.close()


def test_kind_can_be_forced_and_is_checked(flask_app: Any) -> None:
    assert Internal(flask_app.wsgi_app, kind="wsgi").kind == "wsgi"
    with pytest.raises(ValueError, match="kind must be"):
        Internal(flask_app, kind="cgi")
