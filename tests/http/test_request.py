"""The Kohana Request contract: chainable setters, getters, merging, rendering."""

from __future__ import annotations

import pytest

import sendoff
from sendoff import External, Headers, Request


def test_factory_and_constructor_are_the_same():
    a = Request.factory("http://example.com/x").render()
    b = Request("http://example.com/x").render()
    assert a == b == (b"GET /x HTTP/1.1\r\nHost: example.com\r\n"
                      b"User-Agent: sendoff/0.1.0\r\n\r\n")


def test_every_setter_chains_and_every_getter_reads_back():
    client = External("stdlib")
    r = (Request("http://example.com/submit")
         .client(client).method("post").protocol("HTTP/1.0")
         .query("a", "1").post("b", "2").headers("X-Id", "7").cookie("s", "v").timeout(3))
    assert isinstance(r, Request)
    assert (r.method(), r.protocol(), r.client(), r.timeout()) == ("POST", "HTTP/1.0", client, 3.0)
    assert (r.query("a"), r.post("b"), r.headers("x-id"), r.cookie("s")) == ("1", "2", "7", "v")
    assert r.query() == {"a": "1"}
    assert r.post() == {"b": "2"}
    assert r.cookie() == {"s": "v"}
    assert isinstance(r.headers(), Headers)
    assert r.uri() == "http://example.com/submit"


def test_getters_return_copies_not_the_internal_state():
    r = Request("http://example.com/").query("a", "1")
    r.query()["a"] = "changed"
    assert r.query("a") == "1"


def test_query_forms():
    r = Request("http://example.com/p?x=1&y=2&y=3")
    assert r.query() == {"x": "1", "y": ["2", "3"]}
    r.query({"x": "9", "z": 5}).query("list", ["a", "b"]).query("y", None)
    assert r.query() == {"x": "9", "z": "5", "list": ["a", "b"]}
    assert r.query("missing") is None
    assert r.render().split(b"\r\n")[0] == b"GET /p?x=9&z=5&list=a&list=b HTTP/1.1"


def test_seed_examples_render_as_documented():
    mixed = (Request.factory("http://example.com/submit").method("POST")
             .post("foo", "bar").post("baz", "qux")
             .query("corge", "grault").query("garply", "waldo"))
    assert mixed.render() == (
        b"POST /submit?corge=grault&garply=waldo HTTP/1.1\r\n"
        b"Host: example.com\r\n"
        b"User-Agent: sendoff/0.1.0\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n"
        b"Content-Length: 15\r\n"
        b"\r\n"
        b"foo=bar&baz=qux"
    )


def test_form_values_are_percent_encoded():
    r = Request("http://example.com/").method("POST").post("q", "a b&c=d/é").post("n", 3)
    assert r.body() == b"q=a+b%26c%3Dd%2F%C3%A9&n=3"


def test_json_body():
    r = Request("http://example.com/").method("POST").json({"a": [1, None], "é": True})
    assert r.body() == '{"a":[1,null],"é":true}'.encode()
    assert r.json() == {"a": [1, None], "é": True}
    assert r.headers("content-type") is None  # set at render time, not stored
    assert b"Content-Type: application/json\r\n" in r.render()


def test_raw_body_str_is_utf8_and_length_counts_bytes():
    r = Request("http://example.com/").method("PUT").body("héllo")
    assert r.body() == "héllo".encode()
    assert b"Content-Length: 6\r\n" in r.render()


def test_post_method_without_body_sends_content_length_zero():
    assert b"Content-Length: 0\r\n" in Request("http://example.com/").method("POST").render()
    assert b"Content-Length" not in Request("http://example.com/").render()


def test_user_headers_keep_their_order_and_override_defaults():
    r = (Request("http://example.com/").headers("X-B", "2").headers("User-Agent", "mine/1")
         .headers({"X-A": "1"}).headers("Host", "virtual.example"))
    lines = r.render().split(b"\r\n")
    assert lines[1:5] == [b"X-B: 2", b"User-Agent: mine/1", b"X-A: 1", b"Host: virtual.example"]
    assert b"sendoff/0.1.0" not in r.render()


def test_cookies_merge_with_a_cookie_header():
    r = Request("http://example.com/").headers("Cookie", "a=1").cookie("b", "2").cookie("c", 3)
    assert b"Cookie: a=1; b=2; c=3\r\n" in r.render()


def test_userinfo_becomes_basic_auth_and_is_redacted():
    r = Request("http://user:s3cret@example.com/x")
    assert b"Authorization: Basic dXNlcjpzM2NyZXQ=\r\n" in r.render()
    assert "s3cret" not in repr(r)
    assert "s3cret" not in r.url(redacted=True)
    assert r.url() == "http://user:s3cret@example.com/x"


@pytest.mark.parametrize(
    ("uri", "host", "target"),
    [
        ("http://example.com:8080/a", "example.com:8080", "/a"),
        ("https://example.com:443/", "example.com", "/"),
        ("https://example.com:80/", "example.com:80", "/"),
        ("http://[::1]:9000/v6", "[::1]:9000", "/v6"),
        ("http://[2001:DB8::1]/", "[2001:db8::1]", "/"),
        ("http://bücher.example/straße", "xn--bcher-kva.example", "/stra%C3%9Fe"),
        ("HTTP://EXAMPLE.com", "example.com", "/"),
        ("http://example.com/a b#frag", "example.com", "/a%20b"),
        ("http://example.com/%41%zz", "example.com", "/%41%25zz"),
    ],
)
def test_host_header_and_target(uri, host, target):
    lines = Request(uri).render().split(b"\r\n")
    assert lines[0] == f"GET {target} HTTP/1.1".encode()
    assert lines[1] == f"Host: {host}".encode()


def test_is_external_follows_kohana():
    assert Request("http://example.com/").is_external()
    assert not Request("welcome/index").is_external()
    assert Request("https://example.com/").secure()


def test_internal_request_has_no_wire_form():
    with pytest.raises(sendoff.InvalidRequest, match="internal"):
        Request("welcome/index").render()


def test_copy_is_independent():
    r = Request("http://example.com/").query("a", "1").headers("X", "1").post("p", ["1", "2"])
    c = r.copy()
    c.query("a", "2").headers("X", "2").post("p", "3")
    assert (r.query("a"), r.headers("x"), r.post("p")) == ("1", "1", ["1", "2"])
    assert c.render() != r.render()


def test_protocol_http10():
    r = Request("http://example.com/").protocol("HTTP/1.0")
    assert r.render().startswith(b"GET / HTTP/1.0\r\n")


def test_uri_setter_merges_its_query():
    r = Request("http://example.com/a?x=1").uri("http://example.com/b?y=2")
    assert r.url() == "http://example.com/b?x=1&y=2"


def test_parse_uri_cache_stays_bounded_and_correct_across_a_refill() -> None:
    """More distinct URLs than the cache holds: each still parses to the same URL as a
    fresh parse, and the cache never grows past its bound (it starts afresh)."""
    from sendoff.http import url as url_module

    first = url_module.parse_uri("http://127.0.0.1:9/first")
    largest = 0
    for i in range(20_000):
        text = f"http://10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:8080/p{i}?q={i}"
        parsed = url_module.parse_uri(text)
        assert (parsed.port, parsed.path, parsed.query) == (8080, f"/p{i}", f"q={i}")
        largest = max(largest, len(url_module._PARSED))
    assert largest == url_module._PARSED_MAX  # it filled up, and went no further
    again = url_module.parse_uri("http://127.0.0.1:9/first")
    assert (again, again.origin_text) == (first, "http://127.0.0.1:9")
