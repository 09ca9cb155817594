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
    ("https://x/?access_key=a&private_key=p&code=c&sig=s&postcode=1",
     f"https://x/?access_key={REDACTED}&private_key={REDACTED}&code={REDACTED}&sig={REDACTED}"
     "&postcode=1"),
    ("https://x/?Client-Secret=s&API_KEY=k", f"https://x/?Client-Secret={REDACTED}&API_KEY={REDACTED}"),
    ("https://ghp_token@github.com/o/r", f"https://{REDACTED}@github.com/o/r"),
    ("https://x/cb#access_token=t&state=1", f"https://x/cb#access_token={REDACTED}&state=1"),
    ("https://x/#section", "https://x/#section"),
    # not readable by urlsplit (an unclosed IPv6 literal): cut by hand, the same parts
    ("http://u:pw@[::1/x?token=t&a=1", f"http://u:{REDACTED}@[::1/x?token={REDACTED}&a=1"),
    ("http://tok@[::1/x#code=c", f"http://{REDACTED}@[::1/x#code={REDACTED}"),
])
def test_redact_url(url, expected):
    assert redact_url(url) == expected


def test_requests_show_redacted_urls():
    r = Request("https://user:pw@api.example.com/v1?token=t0k3n&q=ok")
    assert "t0k3n" not in repr(r)
    assert "pw" not in r.url(redacted=True)
    assert r.url(redacted=True).endswith(f"token={REDACTED}&q=ok")
    assert "t0k3n" in r.url()


@pytest.mark.parametrize("url", [
    "http://user:se%23cretPW@host.example/",
    "http://user:p%40ss%2FwordSECRETPW@host.example/",
    "http://user:x%3FSECRETPW@host.example/",
    "http://tok%3Fen%26SECRETPW@host.example/x",
])
def test_percent_encoded_credentials_stay_redacted(url):
    """A '#', '/', '?' or '@' written encoded in the userinfo used to come back decoded,
    where it ended the userinfo early: redaction then showed the rest in clear."""
    r = Request(url)
    for shown in (repr(r), r.url(redacted=True), str(r)):
        assert "cretPW" not in shown
    assert Request(r.url()).url() == r.url()  # the URL it gives parses back to itself


def test_redact_headers():
    pairs = [("Authorization", "Bearer x"), ("cookie", "a=b"), ("Set-Cookie", "s=1"),
             ("Proxy-Authorization", "Basic y"), ("X-Api-Key", "k"), ("x-auth-token", "t"),
             ("X-Hub-Signature-256", "sha256=s"), ("X-Ok", "fine")]
    assert redact_headers(pairs) == [(k, REDACTED) for k, _ in pairs[:7]] + [("X-Ok", "fine")]


def test_the_public_module_is_the_core_policy():
    from sendoff import redaction
    from sendoff.core import log

    assert redaction.redact_url is log.redact_url
    assert redaction.redact_headers is log.redact_headers
    assert redaction.REDACTED == REDACTED
