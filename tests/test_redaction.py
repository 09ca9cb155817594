"""Credentials never reach a log line: URL passwords, secret query values, headers."""

from __future__ import annotations

import pytest

from sendoff import Request
from sendoff.core.log import REDACTED, redact_headers, redact_url


@pytest.mark.parametrize(("url", "expected"), [
    ("http://example.com/a?b=1", "http://example.com/a?b=1"),
    ("http://u:pw@example.com/", f"http://u:{REDACTED}@example.com/"),
    ("http://u:pw@[::1]:81/", f"http://u:{REDACTED}@[::1]:81/"),
    ("https://x/?api_key=abc&page=2", f"https://x/?api_key={REDACTED}&page=2"),
    ("https://x/?access_token=t&Signature=s&key=k&monkey=m",
     f"https://x/?access_token={REDACTED}&Signature={REDACTED}&key={REDACTED}&monkey=m"),
    ("https://x/?client%5Fsecret=s&flag", f"https://x/?client%5Fsecret={REDACTED}&flag"),
    ("https://x/?password=", f"https://x/?password={REDACTED}"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_requests_show_redacted_urls():
    r = Request("https://user:pw@api.example.com/v1?token=t0k3n&q=ok")
    assert "t0k3n" not in repr(r)
    assert "pw" not in r.url(redacted=True)
    assert r.url(redacted=True).endswith(f"token={REDACTED}&q=ok")
    assert "t0k3n" in r.url()


def test_redact_headers():
    pairs = [("Authorization", "Bearer x"), ("cookie", "a=b"), ("Set-Cookie", "s=1"),
             ("Proxy-Authorization", "Basic y"), ("X-Ok", "fine")]
    assert redact_headers(pairs) == [(k, REDACTED) for k, _ in pairs[:4]] + [("X-Ok", "fine")]
