"""The relay's per-attempt helpers on their own: the verdict on an answer, and the
idempotency header added at send time."""

from __future__ import annotations

import pytest

from sendoff import InvalidRequest, Response
from sendoff.core import errors
from sendoff.delivery.receipt import settled
from sendoff.http.url import parse_uri
from sendoff.outbox.relay import judge, with_header

WIRE = b"POST /hook HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n\r\n{}"
TARGET = parse_uri("http://example.com/hook")
NOW = 1_000_000.0


def answered(status: int, headers: dict[str, str] | None = None):
    return settled(WIRE, TARGET, Response(status, headers))


@pytest.mark.parametrize(
    ("status", "verdict"),
    [(200, "delivered"), (204, "delivered"), (400, "dead"), (410, "dead"), (500, "retry"),
     (408, "retry"), (302, "retry")],
)
def test_a_plain_answer_is_judged_the_same_every_time(status: int, verdict: str) -> None:
    first, second = judge(answered(status), NOW), judge(answered(status), NOW + 60)
    assert (first.verdict, first.status, first.error, first.retry_after) == (
        verdict, status, None, None,
    )
    assert second == first


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_is_read_from_each_answer_that_may_carry_it(status: int) -> None:
    assert judge(answered(status), NOW).retry_after is None
    assert judge(answered(status, {"Retry-After": "120"}), NOW).retry_after == 120.0
    assert judge(answered(status, {"Retry-After": "7"}), NOW).retry_after == 7.0
    assert judge(answered(status), NOW).retry_after is None


def test_an_attempt_that_failed_keeps_its_own_error_text() -> None:
    judge(answered(200), NOW)  # a plain 200 judged first must not answer for the others
    for error, verdict in (
        (errors.TimeoutError("timed out waiting for the response"), "retry"),
        (errors.ProtocolError("the response was cut after 3 of 10 body bytes"), "retry"),
    ):
        result = judge(settled(WIRE, TARGET, None, error), NOW)
        assert (result.verdict, result.status, result.error) == (verdict, None, str(error))


def test_the_key_is_added_once_before_the_blank_line() -> None:
    out = with_header(WIRE, "Idempotency-Key", "msg_1")
    assert out == (
        b"POST /hook HTTP/1.1\r\nHost: example.com\r\nContent-Length: 2\r\n"
        b"Idempotency-Key: msg_1\r\n\r\n{}"
    )


def test_a_request_that_has_the_header_in_any_case_keeps_its_own() -> None:
    wire = WIRE.replace(b"Host:", b"IDEMPOTENCY-key: mine\r\nHost:")
    assert with_header(wire, "Idempotency-Key", "msg_1") is wire


def test_a_key_that_would_inject_a_header_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="Idempotency-Key"):
        with_header(WIRE, "Idempotency-Key", "k\r\nX-Evil: 1")
