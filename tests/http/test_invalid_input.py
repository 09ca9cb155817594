"""Every kind of bad input raises InvalidRequest at once, naming the field."""

from __future__ import annotations

import pytest

from sendoff import InvalidRequest, Request

URL = "http://example.com/"


def raises(field: str, text: str):
    return pytest.raises(InvalidRequest, match=rf"^{field}: .*{text}")


@pytest.mark.parametrize("bad", ["\r", "\n", "\x00"])
def test_control_characters_in_method(bad):
    with raises("method", ""):
        Request(URL).method(f"GET{bad}X")
    with raises("method", ""):
        Request(URL, method=f"PO{bad}ST")


@pytest.mark.parametrize(("bad", "name"), [("\r", "CR"), ("\n", "LF"), ("\x00", "NUL")])
def test_control_characters_in_path(bad, name):
    with raises("uri", name):
        Request(f"http://example.com/a{bad}b")


@pytest.mark.parametrize(("bad", "name"), [("\r", "CR"), ("\n", "LF"), ("\x00", "NUL")])
def test_control_characters_in_header_names_and_values(bad, name):
    with raises("header name", name):
        Request(URL).headers(f"X-A{bad}", "v")
    with raises("header 'X-A'", name):
        Request(URL).headers("X-A", f"v{bad}injected: 1")
    with raises("header 'X-A'", name):
        Request(URL).headers().add("X-A", f"v{bad}")
    with raises("header 'X-A'", name):
        Request(URL, headers={"X-A": f"v{bad}"})


def test_header_injection_through_the_live_headers_object_is_refused():
    r = Request(URL)
    with raises("header 'X-A'", "CR"):
        r.headers()["X-A"] = "v\r\nX-Evil: 1"
    assert b"X-Evil" not in r.render()


def test_header_name_must_be_a_token():
    with raises("header name", "' ' at position 3: not allowed in an HTTP token"):
        Request(URL).headers("Bad Name", "v")


def test_header_value_must_be_latin1():
    with raises("header 'X-A'", "not latin-1"):
        Request(URL).headers("X-A", "snow ☃")


@pytest.mark.parametrize("uri", ["ftp://example.com/", "file:///etc/passwd", "ws://x/"])
def test_unsupported_scheme(uri):
    with raises("uri", "not supported; use http or https"):
        Request(uri)


@pytest.mark.parametrize("uri", ["http:///path", "http://:80/", "https://user@/x"])
def test_no_host(uri):
    with raises("uri", "no host"):
        Request(uri)


@pytest.mark.parametrize(("uri", "text"), [
    ("http://example.com:0/", "port 0 is outside 1-65535"),
    ("http://example.com:65536/", "port 65536 is outside 1-65535"),
    ("http://example.com:99999999/", "outside 1-65535"),
    ("http://example.com:http/", "the port is not a number"),
    ("http://example.com:-1/", "not a number"),
    ("http://example.com:\u00b2/", "not a number"),  # superscript two: a digit to isdigit()
    ("http://example.com:\u0668\u0660/", "not a number"),  # Arabic-Indic 80
])
def test_bad_port(uri, text):
    with raises("uri", text):
        Request(uri)


@pytest.mark.parametrize("uri", [
    "https://admin:s3cr3tPW/x@example.com/",
    "https://admin:s3cr3tPW#x@example.com/",
    "https://admin:s3cr3tPW?x@example.com/",
    "https://user:s3cr3tPW@example.com:s3cr3tPW/",
])
def test_a_password_the_parser_takes_for_a_port_is_not_echoed(uri):
    """An unencoded '/', '?' or '#' ends the authority early: what precedes it in the
    password is then read as a port, and the error used to quote it."""
    with pytest.raises(InvalidRequest) as info:
        Request(uri)
    assert "s3cr3t" not in str(info.value)
    assert "percent-encoded" in str(info.value)


def test_credentials_without_a_scheme_are_refused_unechoed():
    with pytest.raises(InvalidRequest) as info:
        Request("user:s3cr3tPW@example.com/x")
    assert info.value.field == "uri"
    assert "s3cr3t" not in str(info.value)


def test_bad_hosts():
    with raises("uri", "not an IPv6 address"):
        Request("http://[nope]/")
    with raises("uri", "IPv6 addresses need brackets"):
        Request("http://::1:80/")
    with raises("uri", "IPv6 addresses need brackets"):
        Request("http://fe80::1/")
    with raises("uri", "not allowed in a host"):
        Request("http://exa mple.com/")


def test_post_fields_with_raw_body():
    with raises("body", "cannot be combined with post"):
        Request(URL).post("a", "1").body(b"raw")
    with raises("post", "cannot be combined"):
        Request(URL).body(b"raw").post("a", "1")
    with raises("json", "cannot be combined with post"):
        Request(URL).post("a", "1").json({"x": 1})
    with raises("post", "cannot be combined"):
        Request(URL).json([1]).post({"a": "1"})


@pytest.mark.parametrize("value", [1.5, None.__class__, object(), {"a": 1}, [[1]]])
def test_values_that_are_not_str_bytes_or_int(value):
    with raises("query 'k'", ""):
        Request(URL).query("k", value)
    with raises("post 'k'", ""):
        Request(URL).post("k", value)


def test_non_str_keys_and_bodies():
    with raises("query", "keys must be str"):
        Request(URL).query({1: "a"})
    with raises("body", "must be bytes or str"):
        Request(URL).body(12)
    with raises("json", "not JSON-serialisable"):
        Request(URL).json({"a": object()})
    with raises("timeout", "positive"):
        Request(URL).timeout(0)
    with raises("protocol", "HTTP/2"):
        Request(URL).protocol("HTTP/2")


def test_cookie_values():
    with raises("cookie name", "token"):
        Request(URL).cookie("a b", "1")
    with raises("cookie 'a'", "LF"):
        Request(URL).cookie("a", "1\n")
    with raises("cookie 'a'", "';'"):
        Request(URL).cookie("a", "1; b=2")


def test_content_length_and_transfer_encoding_are_checked_at_render():
    with raises("headers", "does not match the body"):
        Request(URL).method("POST").body(b"abc").headers("Content-Length", "10").render()
    with raises("headers", "Transfer-Encoding"):
        Request(URL).headers("Transfer-Encoding", "chunked").render()


def test_invalid_request_is_a_value_error():
    with pytest.raises(ValueError):
        Request("gopher://x/")


# -- control characters (RFC 9110 section 5.5): C0 but HTAB, DEL and C1 never reach the wire --
@pytest.mark.parametrize(("char", "name"), [
    ("\x0b", "VT"), ("\x0c", "FF"), ("\x7f", "DEL"), ("\x01", "SOH"), ("\x1b", "ESC"),
    ("\r", "CR"), ("\n", "LF"), ("\x00", "NUL"),
])
def test_cookie_values_refuse_control_characters(char, name):
    with raises("cookie 'sid'", f"contains {name} at position 3"):
        Request(URL).cookie("sid", f"abc{char}def")


@pytest.mark.parametrize("code", [0x80, 0x85, 0x9B, 0x9F])
def test_header_values_refuse_c1_controls_as_str_and_as_bytes(code):
    with raises("header 'X-A'", f"U\\+{code:04X} \\(C1 control"):
        Request(URL).headers("X-A", f"v{chr(code)}")
    with raises("header 'X-A'", f"U\\+{code:04X} \\(C1 control"):
        Request(URL).headers("X-A", b"v" + bytes([code]))  # bytes are latin-1


def test_byte_0x85_is_refused_in_every_way_a_header_is_set():
    value = b"next\x85line"
    for setter in (lambda r: r.headers("X-A", value),
                   lambda r: r.headers({"X-A": value}),
                   lambda r: r.headers().add("X-A", value),
                   lambda r: r.headers().__setitem__("X-A", value)):
        with raises("header 'X-A'", "NEL"):
            setter(Request(URL))
    with raises("header 'X-A'", "NEL"):
        Request(URL, headers=[("X-A", value)])


@pytest.mark.parametrize("char", ["\x7f", "\x0b", "\x0c", "\x1f"])
def test_header_values_refuse_del_and_c0_but_htab(char):
    with raises("header 'X-A'", "at position 1"):
        Request(URL).headers("X-A", f"a{char}b")


def test_htab_and_obs_text_are_allowed_in_header_values():
    r = Request(URL).headers("X-Tab", "a\tb").headers("X-Latin", "caf\xe9 \xa0\xff")
    r.headers("X-Bytes", b"\xa0\xe9")
    wire = r.render()
    assert b"X-Tab: a\tb\r\n" in wire
    assert b"X-Latin: caf\xe9 \xa0\xff\r\n" in wire
    assert b"X-Bytes: \xa0\xe9\r\n" in wire


def test_messages_name_the_field_and_the_character_never_the_value():
    cases = [
        (lambda: Request(URL).headers("Authorization", "Bearer sekrit-value\r\n"), "CR"),
        (lambda: Request(URL).cookie("sid", "sekrit-value\x7f"), "DEL"),
        (lambda: Request(URL).headers("X-Api-Key", "sekrit-value\u2603"), "U+2603"),
        (lambda: Request(URL).cookie("sid", "sekrit-value\u00e9"), "U+00E9"),
        (lambda: Request(f"{URL}?api_key=sekrit-value\r"), "CR"),
        (lambda: Request(URL).headers("Host", "sekrit-value/x").render(), "Host"),
        (lambda: Request(URL).query("token", "sekrit-value\udc80"), "U+DC80"),
    ]
    for call, named in cases:
        with pytest.raises(InvalidRequest) as info:
            call()
        assert named in str(info.value)
        assert "sekrit" not in str(info.value)
