"""Response and Headers."""

from __future__ import annotations

import pytest

import sendoff
from sendoff import Headers, Response


def test_defaults():
    r = Response()
    assert (r.status, r.reason, r.body, r.text, r.ok) == (200, "OK", b"", "", True)
    assert Response(404).reason == "Not Found"
    assert Response(599).reason == ""


def test_body_accepts_str_bytes_and_renderables():
    r = Response(body="héllo")
    assert r.body == "héllo".encode()
    r.body = bytearray(b"x")
    assert r.body == b"x"

    class View:
        def render(self) -> str:
            return "<p>hi</p>"

    r.body = View()
    assert r.body == b"<p>hi</p>"
    with pytest.raises(TypeError):
        r.body = 12


def test_text_uses_the_declared_charset():
    latin = {"Content-Type": "text/plain; charset=latin-1"}
    r = Response(headers=latin, body="é".encode("latin-1"))
    assert r.text == "é"
    bogus = Response(headers={"Content-Type": "text/plain; charset=nope"}, body=b"ok")
    assert bogus.text == "ok"


def test_json_cookies_ok_and_raise_for_status():
    r = Response(500, [("Set-Cookie", "a=1; HttpOnly"), ("Set-Cookie", "b=two")], b'{"x": 1}')
    assert r.json() == {"x": 1}
    assert r.cookies == {"a": "1", "b": "two"}
    assert not r.ok
    with pytest.raises(sendoff.HttpError, match="HTTP 500 Internal Server Error"):
        r.raise_for_status()
    assert Response(302, {"Location": "/x"}).is_redirect


def test_headers_are_case_insensitive_multi_valued_and_mutable():
    h = Headers([("X-A", "1"), ("x-a", "2"), ("Other", "o")])
    assert h["X-A"] == "1, 2"
    assert h.get_all("X-a") == ["1", "2"]
    assert list(h) == ["X-A", "Other"]
    assert len(h) == 2
    assert "other" in h
    assert "nope" not in h
    assert 3 not in h
    h["x-A"] = "3"
    assert h.multi_items() == [("Other", "o"), ("x-A", "3")]
    h.add("Other", "p")
    del h["OTHER"]
    assert h.multi_items() == [("x-A", "3")]
    with pytest.raises(KeyError):
        del h["missing"]
    with pytest.raises(KeyError):
        h["missing"]
    assert h == {"X-A": "3"}
    assert h != {"X-A": "4"}
    copy = h.copy()
    copy["new"] = "1"
    assert "new" not in h


def test_headers_repr_redacts_credentials():
    h = Headers({"Authorization": "Bearer s3cret", "Cookie": "sid=s3cret", "X": "fine"})
    assert "s3cret" not in repr(h)
    assert "fine" in repr(h)


def test_headers_values_are_normalised():
    h = Headers({"A": "  padded\t", "B": 12, "C": b"bytes"})
    assert h.multi_items() == [("A", "padded"), ("B", "12"), ("C", "bytes")]
    with pytest.raises(sendoff.InvalidRequest, match="must be str, bytes or int"):
        Headers({"A": 1.5})


def test_an_http_error_escapes_the_servers_reason_phrase():
    """The reason phrase is the server's text: a terminal escape in it must not reach a
    terminal or a log viewer through the exception's message."""
    r = Response(500, reason="Bad\x1b[31mRED\x1b[0m\x85X")
    with pytest.raises(sendoff.HttpError) as info:
        r.raise_for_status()
    text = str(info.value)
    assert "\x1b" not in text
    assert "\x85" not in text
    assert "\\x1b[31mRED" in text
