"""Python's own ``http.server`` as an echo server: ``python echo_stdlib.py HOST PORT``.

ThreadingHTTPServer + BaseHTTPRequestHandler with ``protocol_version = "HTTP/1.1"`` (so
keep-alive; the handler reads every request body exactly, so pipelined requests
follow each other on the buffered socket file). Framing is written by hand:
``/len/`` Content-Length, ``/chunked/`` two chunks, ``/close/`` no length and
``Connection: close``, then the connection is closed. An HTTP/1.0 request to
``/chunked/`` gets the close-delimited answer (HTTP/1.0 has no chunked coding).
Requests are recorded as in ``echo_common``.
"""

from __future__ import annotations

import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from echo_common import body_parts, framing, record


class EchoHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def handle_any(self) -> None:
        request_id = self.headers.get("X-Request-Id", "-")
        self._discard_body()
        record(self.command, request_id)
        kind = framing(self.path)
        if kind == "chunked" and self.request_version == "HTTP/1.0":
            kind = "close"
        parts = body_parts(request_id)
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Request-Id", request_id)
        if kind == "len":
            self.send_header("Content-Length", str(sum(map(len, parts))))
        elif kind == "chunked":
            self.send_header("Transfer-Encoding", "chunked")
        else:
            self.send_header("Connection", "close")  # also sets self.close_connection
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        if kind == "chunked":
            for part in parts:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
        else:
            self.wfile.write(b"".join(parts))

    do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = do_OPTIONS = handle_any

    def _discard_body(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            while True:
                size = int(self.rfile.readline().split(b";", 1)[0], 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    return
                self._skip(size)
                self.rfile.readline()
        else:
            self._skip(int(self.headers.get("Content-Length") or 0))

    def _skip(self, n: int) -> None:
        while n > 0:
            data = self.rfile.read(min(n, 65536))
            if not data:
                raise ConnectionError("request body cut short")
            n -= len(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


class EchoServer(ThreadingHTTPServer):
    request_queue_size = 1024
    daemon_threads = True


if __name__ == "__main__":
    host, port = sys.argv[1], int(sys.argv[2])
    with EchoServer((host, port), EchoHandler) as server:
        print(f"serving on {host}:{port}", flush=True)
        server.serve_forever()
