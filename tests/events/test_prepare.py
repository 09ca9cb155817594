"""The Prepare subscriber: body headers made explicit before signing."""

from __future__ import annotations

import gzip
import json

import pytest

from sendoff import External, Request
from sendoff.events import RequestEvents
from sendoff.subscribers import Prepare
from sendoff.subscribers.prepare import EXPECT_THRESHOLD, guess_type


def prepared_client(**kwargs) -> tuple[External, list[dict[str, str | None]]]:
    """A client with Prepare and a 'signer' recording what it sees at SIGN_REQUEST."""
    client = External("urllib3")
    client.emitter.attach(Prepare(**kwargs))
    seen: list[dict[str, str | None]] = []

    def sign(event) -> None:
        h = event.request.headers()
        seen.append({k: h.get(k) for k in ("Content-Type", "Content-Length", "Expect")})

    client.emitter.on("before", sign, RequestEvents.SIGN_REQUEST)
    return client, seen


def test_signer_sees_form_headers(server):
    client, seen = prepared_client()
    Request(server.url("/")).method("POST").post("a", "1").client(client).execute()
    assert seen == [{"Content-Type": "application/x-www-form-urlencoded",
                     "Content-Length": "3", "Expect": None}]
    got = server.wait_for(1)[0]
    assert (got.header("content-type"), got.header("content-length")) == (
        "application/x-www-form-urlencoded", "3")


def test_signer_sees_json_headers(server):
    client, seen = prepared_client()
    Request(server.url("/")).method("PUT").json({"k": 1}).client(client).execute()
    assert seen == [{"Content-Type": "application/json", "Content-Length": "7",
                     "Expect": None}]


def test_empty_post_gets_content_length_zero_and_no_type(server):
    client, seen = prepared_client()
    Request(server.url("/")).method("POST").client(client).execute()
    assert seen == [{"Content-Type": None, "Content-Length": "0", "Expect": None}]
    assert server.wait_for(1)[0].header("content-length") == "0"


def test_get_without_body_is_left_alone(server):
    client, seen = prepared_client()
    Request(server.url("/")).client(client).execute()
    assert seen == [{"Content-Type": None, "Content-Length": None, "Expect": None}]


def test_an_explicit_content_type_is_kept(server):
    client, seen = prepared_client()
    (Request(server.url("/")).method("POST").body(b'{"a": 1}')
     .headers("Content-Type", "application/vnd.api+json").client(client).execute())
    assert seen[0]["Content-Type"] == "application/vnd.api+json"
    assert server.wait_for(1)[0].header("content-type") == "application/vnd.api+json"


def test_content_length_follows_a_body_changed_between_sends(server):
    client, seen = prepared_client()
    request = Request(server.url("/")).method("POST").body(b"12345").client(client)
    request.execute()
    request.body(b"123")  # the request is reused: its stale length must not stay
    request.execute()
    assert [s["Content-Length"] for s in seen] == ["5", "3"]
    assert [r.body for r in server.wait_for(2)] == [b"12345", b"123"]


def test_large_body_expects_100_continue(server, backend):
    client = External(backend)
    client.emitter.attach(Prepare())
    body = b"\0" * EXPECT_THRESHOLD
    resp = Request(server.url("/upload")).method("PUT").body(body).client(client).execute()
    assert resp.status == 200
    got = server.wait_for(1)[0]
    assert got.header("expect") == "100-continue"
    assert got.header("content-type") == "application/octet-stream"
    assert len(got.body) == EXPECT_THRESHOLD


def test_body_just_below_the_threshold_does_not_expect(server):
    client, seen = prepared_client()
    Request(server.url("/")).method("PUT").body(b"a" * (EXPECT_THRESHOLD - 1)).client(client)\
        .execute()
    assert seen[0]["Expect"] is None


def test_expect_threshold_is_configurable_and_can_be_disabled(server):
    client, seen = prepared_client(expect_threshold=10)
    Request(server.url("/")).method("PUT").body(b"a" * 10).client(client).execute()
    client2, seen2 = prepared_client(expect_threshold=None)
    Request(server.url("/")).method("PUT").body(b"a" * EXPECT_THRESHOLD).client(client2)\
        .execute()
    assert seen[0]["Expect"] == "100-continue"
    assert seen2[0]["Expect"] is None


def test_http_10_never_expects(server):
    client, seen = prepared_client(expect_threshold=1)
    Request(server.url("/")).method("PUT").protocol("HTTP/1.0").body(b"abc").client(client)\
        .execute()
    assert seen[0]["Expect"] is None


def test_runs_at_prepare_request_priority():
    assert Prepare().get_events() == {"before": ("on_before", RequestEvents.PREPARE_REQUEST)}


@pytest.mark.parametrize(("body", "expected"), [
    (b"%PDF-1.7\n...", "application/pdf"),
    (b"\x89PNG\r\n\x1a\n\0\0", "image/png"),
    (b"\xff\xd8\xff\xe0JFIF", "image/jpeg"),
    (b"GIF89a...", "image/gif"),
    (gzip.compress(b"x"), "application/gzip"),
    (b"PK\x03\x04...", "application/zip"),
    (b'<?xml version="1.0"?><a/>', "application/xml"),
    (json.dumps({"a": [1, 2]}).encode(), "application/json"),
    (b"  [1, 2, 3]", "application/json"),
    (b"{not json", "text/plain; charset=utf-8"),
    ("héllo wörld\n".encode(), "text/plain; charset=utf-8"),
    (b"\x00\x01\x02binary", "application/octet-stream"),
    (b"\xc3\x28 invalid utf-8", "application/octet-stream"),
])
def test_guess_type(body, expected):
    assert guess_type(body) == expected


def test_guess_type_does_not_fail_on_a_utf8_sequence_cut_at_the_sniff_limit():
    body = b"a" * 8191 + "é".encode()  # the 8 KiB prefix ends inside the two-byte "é"
    assert guess_type(body) == "text/plain; charset=utf-8"
