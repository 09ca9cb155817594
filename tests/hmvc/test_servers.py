"""The sample App served by real servers in subprocesses and hit over HTTP."""

from __future__ import annotations

import pytest

from sendoff import External, Request


@pytest.fixture(params=["gunicorn", "uvicorn"])
def base_url(request: pytest.FixtureRequest) -> str:
    return str(request.getfixturevalue(f"{request.param}_url"))


def fetch(url: str, **kwargs: object) -> object:
    with External(backend="urllib3", timeout=20) as ext:
        return Request(url, **kwargs).client(ext).execute()  # type: ignore[arg-type]


def test_hello_with_and_without_name(base_url: str) -> None:
    with External(backend="urllib3", timeout=20) as ext:
        named = Request(base_url + "/welcome?name=Ada").client(ext).execute()
        guest = Request(base_url + "/").client(ext).execute()
    assert (named.status, named.text.strip()) == (200, "<p>hello Ada!</p>")
    assert guest.text.strip() == "<p>hello Guest!</p>"
    assert guest.headers["content-type"] == "text/html; charset=utf-8"


def test_page_composed_from_sub_requests(base_url: str) -> None:
    with External(backend="urllib3", timeout=20) as ext:
        resp = Request(base_url + "/page").client(ext).execute()
    assert resp.status == 200
    assert resp.text == "<main>[news p1][weather p3]</main>"


def test_main_request_is_built_from_what_the_server_received(base_url: str) -> None:
    with External(backend="urllib3", timeout=20) as ext:
        resp = (
            Request(base_url + "/echo/index/7?a=1&a=2&b=%C3%A9")
            .client(ext)
            .method("POST")
            .post({"field": "value", "other": "x y"})
            .headers({"X-Custom": "yes", "X-Requested-With": "XMLHttpRequest"})
            .cookie("session", "abc123")
            .execute()
        )
    seen = resp.json()
    assert seen["method"] == "POST"
    assert seen["uri"] == "echo/index/7"
    assert seen["query"] == {"a": ["1", "2"], "b": "é"}
    assert seen["post"] == {"field": "value", "other": "x y"}
    assert seen["x_custom"] == "yes"
    assert seen["cookies"] == {"session": "abc123"}
    assert seen["client_ip"] == "127.0.0.1"
    assert seen["is_initial"] is True
    assert seen["is_ajax"] is True


def test_json_body(base_url: str) -> None:
    with External(backend="urllib3", timeout=20) as ext:
        resp = Request(base_url + "/echo").client(ext).method("PUT").json({"k": [1, 2]}).execute()
    assert resp.json()["json"] == {"k": [1, 2]}
    assert resp.json()["method"] == "PUT"


def test_error_statuses(base_url: str) -> None:
    with External(backend="urllib3", timeout=20) as ext:
        missing = Request(base_url + "/nowhere/at/all/really").client(ext).execute()
        no_action = Request(base_url + "/welcome/nothing").client(ext).execute()
        failed = Request(base_url + "/fail").client(ext).execute()
        teapot = Request(base_url + "/fail/teapot").client(ext).execute()
        head = Request(base_url + "/welcome").client(ext).method("HEAD").execute()
    assert missing.status == 404
    assert no_action.status == 404
    assert failed.status == 500
    assert "secret failure detail" not in failed.text
    assert (teapot.status, teapot.reason, teapot.text) == (418, "I'm a Teapot", "short and stout")
    assert head.status == 200
    assert head.body == b""
    assert int(head.headers["content-length"]) > 0
