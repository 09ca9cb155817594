"""The real servers of tests.support.real_servers do what their docstring promises.

Per server and framing, 20 requests of mixed methods over one keep-alive connection
(``http.client``): every answer echoes its own id, is framed as asked, and the server
recorded every id exactly once. Per server, 10 requests pipelined in one ``sendall`` on a
raw socket, the answers read in order with h11.
"""

from __future__ import annotations

import http.client
import itertools
import socket

import h11

from tests.support.real_server_fixtures import real_server  # noqa: F401
from tests.support.real_servers import FRAMINGS, RealServer, Record, new_id

MB = 1024 * 1024
# (method, request body size): every method, the 1 MB body on POST
METHOD_MIX = [("GET", 0), ("POST", MB), ("PUT", 64 * 1024), ("DELETE", 0), ("HEAD", 0)]


def _check_framing(server: RealServer, framing: str, method: str,
                   response: http.client.HTTPResponse, body: bytes) -> None:
    length = response.getheader("Content-Length")
    chunked = "chunked" in (response.getheader("Transfer-Encoding") or "").lower()
    if method == "HEAD":
        assert body == b""
        return
    if framing == "len":
        assert (length, chunked) == (str(len(body)), False)
    elif framing == "chunked":
        assert (length, chunked) == (None, True)
    else:
        assert (length, chunked) == (None, False)
        assert "close" in (response.getheader("Connection") or "").lower()


def test_mixed_methods_on_one_connection(real_server: RealServer) -> None:  # noqa: F811
    """Every framing the server can produce (``srv.supports``, see its notes for why a
    server cannot produce the others)."""
    assert real_server.supports <= set(FRAMINGS)
    assert "len" in real_server.supports
    for framing in sorted(real_server.supports):
        _mixed_methods(real_server, framing)


def _mixed_methods(srv: RealServer, framing: str) -> None:
    mark = srv.count()
    sent: list[Record] = []
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=15)
    first_socket = None
    try:
        for i, (method, size) in zip(range(20), itertools.cycle(METHOD_MIX), strict=False):
            request_id = new_id(f"{srv.name}-{framing}-{i}")
            conn.request(method, f"/{framing}/item/{i}", body=b"x" * size if size else None,
                         headers={"X-Request-Id": request_id})
            used = conn.sock
            response = conn.getresponse()
            body = response.read()
            sent.append(Record(method, request_id))

            assert 200 <= response.status < 300, (method, response.status, body[:200])
            assert response.getheader("X-Request-Id") == request_id
            if method != "HEAD":
                assert body == f"id={request_id}\n".encode()
            _check_framing(srv, framing, method, response, body)

            if framing == "close" and method != "HEAD":
                assert conn.sock is None, "the server did not close after a close-delimited body"
            elif not srv.keepalive:
                assert conn.sock is None, f"{srv.name} kept the connection open"
            elif framing != "close":
                first_socket = first_socket or used
                assert conn.sock is used is first_socket, "the keep-alive connection was lost"
    finally:
        conn.close()

    received = srv.wait_for_ids(record.id for record in sent)
    assert {record.id: received[record.id] for record in sent} == {r.id: 1 for r in sent}
    # Exactly these requests, each with its own method, and nothing else since the mark.
    assert sorted(srv.records(since=mark)) == sorted(sent)


PIPELINE_MIX = [("GET", 0), ("POST", 32 * 1024), ("HEAD", 0), ("PUT", 1000), ("DELETE", 0)]


def _raw_request(method: str, path: str, request_id: str, size: int) -> bytes:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Request-Id: {request_id}\r\n"
    if size:
        head += f"Content-Length: {size}\r\n"
    return head.encode() + b"\r\n" + b"p" * size


def _read_response(conn: h11.Connection, sock: socket.socket
                   ) -> tuple[h11.Response, bytes] | None:
    """The next response's head and body, or None if the server closed first."""
    response = None
    body = b""
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            conn.receive_data(sock.recv(65536))
        elif isinstance(event, h11.Response):
            response = event
        elif isinstance(event, h11.Data):
            body += event.data
        elif isinstance(event, h11.EndOfMessage):
            assert response is not None
            return response, body
        elif isinstance(event, h11.ConnectionClosed):
            assert response is None, "connection closed in the middle of a response"
            return None


def test_pipelined_requests_answered_in_order(real_server: RealServer) -> None:  # noqa: F811
    srv = real_server
    paths = [f"/{framing}/p" for framing in ("len", "chunked") if framing in srv.supports]
    requests = [
        (method, f"{paths[i % len(paths)]}{i}", new_id(f"{srv.name}-pipe-{i}"), size)
        for i, (method, size) in zip(range(10), itertools.cycle(PIPELINE_MIX), strict=False)
    ]
    mark = srv.count()
    answers: list[tuple[h11.Response, bytes]] = []
    with socket.create_connection((srv.host, srv.port), timeout=15) as sock:
        sock.sendall(b"".join(_raw_request(m, path, rid, size) for m, path, rid, size in requests))
        conn = h11.Connection(h11.CLIENT)
        for method, path, _, _ in requests:
            if answers:
                if conn.their_state is not h11.DONE:
                    break  # the server announced it closes
                conn.start_next_cycle()
            # Tell the parser which request this answer belongs to (HEAD has no body).
            conn.send(h11.Request(method=method, target=path, headers=[("Host", "127.0.0.1")]))
            conn.send(h11.EndOfMessage())
            answer = _read_response(conn, sock)
            if answer is None:
                break
            answers.append(answer)
        rest = b"" if conn.their_state is h11.DONE else sock.recv(65536)

    expected = requests if srv.pipelining else requests[:1]
    assert len(answers) == len(expected), f"{len(answers)} answers to {len(requests)} requests"
    for (method, path, request_id, _), (response, body) in zip(expected, answers, strict=True):
        headers = {name.decode(): value.decode() for name, value in response.headers}
        assert response.status_code == 200
        assert headers["x-request-id"] == request_id
        assert body == (b"" if method == "HEAD" else f"id={request_id}\n".encode())
        if method != "HEAD":
            framing = path.split("/")[1]
            assert ("content-length" in headers) == (framing == "len"), headers
            assert (headers.get("transfer-encoding") == "chunked") == (framing == "chunked")
    if not srv.pipelining:
        assert rest == b"", "the server answered after announcing it closes"

    sent = [Record(method, request_id) for method, _, request_id, _ in expected]
    received = srv.wait_for_ids(record.id for record in sent)
    assert [received[record.id] for record in sent] == [1] * len(sent)
    assert sorted(srv.records(since=mark)) == sorted(sent)
