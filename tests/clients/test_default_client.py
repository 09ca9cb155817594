"""The default client (Kohana's Request_Client_External::$client)."""

from __future__ import annotations

import pytest

import sendoff
from sendoff import Client, External, Request, Response


class Recording(Client):
    """A client that answers from memory: proves which client executed."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[Request] = []

    def transfer(self, request, transaction):
        self.seen.append(request)
        return Response(299, body=b"from memory", request=request)


@pytest.fixture(autouse=True)
def restore_default():
    yield
    sendoff.set_default_client(None)


def test_built_in_default_is_a_blocking_external(server):
    client = sendoff.get_default_client()
    assert isinstance(client, External)
    assert sendoff.get_default_client() is client
    assert Request(server.url("/")).execute().status == 200


def test_set_default_client_is_used_by_requests_without_a_client():
    mine = Recording()
    sendoff.set_default_client(mine)
    assert sendoff.get_default_client() is mine
    request = Request("http://example.invalid/x")
    assert request.client() is mine
    assert request.execute().status == 299
    assert mine.seen == [request]


def test_an_explicit_client_wins_over_the_default():
    sendoff.set_default_client(Recording())
    mine = Recording()
    Request("http://example.invalid/").client(mine).execute()
    assert len(mine.seen) == 1


def test_only_clients_can_be_the_default():
    with pytest.raises(TypeError):
        sendoff.set_default_client("External")


def test_internal_request_without_an_app_is_a_clear_error():
    hint = r"internal request .* \.client\(Internal\(app\)\)"
    with pytest.raises(sendoff.InvalidRequest, match=hint):
        Request("welcome/index").execute()
