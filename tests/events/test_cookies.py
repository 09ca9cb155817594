"""The Cookies subscriber: a jar across requests, through redirects."""

from __future__ import annotations

from http.cookiejar import CookieJar

from sendoff import External, Request, Response
from sendoff.events import RequestEvents
from sendoff.subscribers import Cookies, Mock, Redirect
from tests.support.recording_server import Reply


def cookie_server(make_server):
    """/login sets sid; /prefs sets a path-bound cookie; everything else echoes Cookie."""

    def handler(req):
        if req.path == "/login":
            return Reply(200, b"in", [("Set-Cookie", "sid=abc123; Path=/"),
                                      ("Set-Cookie", "theme=dark; Path=/")])
        if req.path == "/logout":
            return Reply(200, b"out", [("Set-Cookie", "sid=; Path=/; Max-Age=0")])
        if req.path == "/prefs/set":
            return Reply(200, b"", [("Set-Cookie", "lang=fr; Path=/prefs")])
        if req.path == "/hop":
            return Reply(302, b"", [("Location", "/landing"),
                                    ("Set-Cookie", "hop=1; Path=/")])
        return Reply(200, (req.header("cookie") or "").encode())

    return make_server(handler)


def jar_client(cookies: Cookies | None = None) -> tuple[External, Cookies]:
    cookies = Cookies() if cookies is None else cookies
    client = External("urllib3")
    client.emitter.attach(cookies)
    return client, cookies


def test_cookies_set_by_one_response_are_sent_with_the_next_request(make_server):
    srv = cookie_server(make_server)
    client, cookies = jar_client()
    Request(srv.url("/login")).client(client).execute()
    assert Request(srv.url("/echo")).client(client).execute().body == b"sid=abc123; theme=dark"
    assert srv.wait_for(2)[0].header("cookie") is None
    assert len(cookies) == 2
    assert cookies.get("sid") == "abc123"
    assert cookies.get("missing", "none") == "none"


def test_expired_cookies_are_dropped(make_server):
    srv = cookie_server(make_server)
    client, cookies = jar_client()
    Request(srv.url("/login")).client(client).execute()
    Request(srv.url("/logout")).client(client).execute()
    assert Request(srv.url("/echo")).client(client).execute().body == b"theme=dark"
    assert cookies.get("sid") is None


def test_path_rules_apply(make_server):
    srv = cookie_server(make_server)
    client, _ = jar_client()
    Request(srv.url("/prefs/set")).client(client).execute()
    assert Request(srv.url("/prefs/page")).client(client).execute().body == b"lang=fr"
    assert Request(srv.url("/elsewhere")).client(client).execute().body == b""


def test_cookies_are_not_sent_to_another_host(make_server):
    srv = cookie_server(make_server)
    other = cookie_server(make_server)
    client, _ = jar_client()
    Request(srv.url("/login")).client(client).execute()
    assert Request(other.url("/echo", host="localhost")).client(client).execute().body == b""


def test_a_cookie_set_by_a_redirect_reaches_its_target(make_server):
    srv = cookie_server(make_server)
    client, _ = jar_client()
    client.emitter.attach(Redirect())
    resp = Request(srv.url("/hop")).client(client).execute()
    assert resp.body == b"hop=1"
    order = [type(fn.__self__) for fn in client.emitter.listeners("complete")]
    assert order == [Cookies, Redirect]
    assert Cookies().get_events()["complete"] == ("on_complete", RequestEvents.EARLY)


def test_the_callers_request_is_left_unchanged(make_server):
    srv = cookie_server(make_server)
    client, _ = jar_client()
    Request(srv.url("/login")).client(client).execute()
    request = Request(srv.url("/echo")).client(client)
    assert request.execute().body == b"sid=abc123; theme=dark"
    assert request.headers("Cookie") is None


def test_own_cookie_header_and_cookie_values_are_kept_and_sent_first(make_server):
    srv = cookie_server(make_server)
    client, _ = jar_client()
    Request(srv.url("/login")).client(client).execute()
    request = (Request(srv.url("/echo")).client(client)
               .headers("Cookie", "mine=1").cookie("also", "2"))
    assert request.execute().body == b"mine=1; sid=abc123; theme=dark; also=2"


def test_jar_cookies_are_recomputed_on_a_retry_not_repeated(make_server):
    srv = cookie_server(make_server)
    client, _ = jar_client()
    Request(srv.url("/login")).client(client).execute()
    client.emitter.on("complete", lambda e: e.retry_count == 0 and e.retry())
    request = Request(srv.url("/echo")).client(client).headers("Cookie", "mine=1")
    assert request.execute().body == b"mine=1; sid=abc123; theme=dark"
    assert srv.wait_for(3)[2].header("cookie") == "mine=1; sid=abc123; theme=dark"


def test_a_jar_is_shared_between_clients(make_server):
    srv = cookie_server(make_server)
    jar = CookieJar()
    first, _ = jar_client(Cookies(jar))
    second, _ = jar_client(Cookies(jar))
    Request(srv.url("/login")).client(first).execute()
    assert Request(srv.url("/echo")).client(second).execute().body == b"sid=abc123; theme=dark"


def test_cookies_from_mocked_responses_are_kept():
    client, cookies = jar_client()
    client.emitter.attach(Mock([Response(200, headers={"Set-Cookie": "token=t0k3n; Path=/"})]))
    Request("http://api.example.test/auth").client(client).execute()
    assert cookies.get("token") == "t0k3n"


def test_clear_forgets_everything(make_server):
    srv = cookie_server(make_server)
    client, cookies = jar_client()
    Request(srv.url("/login")).client(client).execute()
    cookies.clear()
    assert len(cookies) == 0
    assert Request(srv.url("/echo")).client(client).execute().body == b""
