"""Demo: 50 webhooks to a slow receiver, sent blocking and then fire-and-forget.

A local receiver takes 300 ms per request (like a busy partner API). The same 50
webhooks go out twice: with the blocking External client, the caller waits for every one;
with FireAndForget, the caller hands them over in microseconds, the engine delivers them
in the background, and the receiver's count proves that all 50 arrived.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import sendoff
from sendoff import External, FireAndForget, Request

WEBHOOKS = 50
RECEIVER_DELAY = 0.3


class Receiver(ThreadingHTTPServer):
    """Counts the webhooks it receives; answers each after RECEIVER_DELAY seconds."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.received: dict[str, int] = {}

    def count(self, batch: str) -> int:
        with self.lock:
            return self.received.get(batch, 0)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as real receivers do

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(RECEIVER_DELAY)
        server = self.server
        assert isinstance(server, Receiver)
        with server.lock:
            batch = self.path.split("/")[2]
            server.received[batch] = server.received.get(batch, 0) + 1
        self.send_response(204)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # quiet
        pass


def _webhook(url: str, i: int) -> Request:
    return Request(url, "POST").json({"event": "order.paid", "order": 1000 + i})


def main() -> None:
    receiver = Receiver()
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"
    print(f"\n== Webhooks: {WEBHOOKS} notifications to a receiver that takes "
          f"{RECEIVER_DELAY * 1000:.0f} ms per request ==")
    try:
        blocking = External(backend="urllib3")
        start = time.perf_counter()
        for i in range(WEBHOOKS):
            _webhook(f"{base}/blocking", i).client(blocking).execute()
        waited = time.perf_counter() - start
        print(f"blocking (External):            the caller waited {waited:8.3f} s"
              f"   receiver got {receiver.count('blocking')}/{WEBHOOKS}")

        client = FireAndForget()
        start = time.perf_counter()
        receipts = [_webhook(f"{base}/fired", i).client(client).execute()
                    for i in range(WEBHOOKS)]
        handed = time.perf_counter() - start
        client.flush(30)  # only so that the demo can count; a web app would not wait
        delivered = time.perf_counter() - start
        ok = sum(1 for r in receipts if r.response is not None and r.response.status == 204)
        print(f"fire-and-forget (FireAndForget): the caller waited {handed:8.5f} s"
              f"   ({handed / WEBHOOKS * 1e6:.0f} µs per webhook)")
        print(f"  ...the engine delivered them in the background in {delivered:.2f} s over "
              f"keep-alive connections; receiver got {receiver.count('fired')}/{WEBHOOKS}, "
              f"receipts confirm {ok} delivered")
        print(f"  the caller was {waited / handed:,.0f}x less delayed; "
              f"sendoff.stats(): delivered={sendoff.stats()['delivered']}, "
              f"failed={sendoff.stats()['failed']}")
    finally:
        receiver.shutdown()
        receiver.server_close()


if __name__ == "__main__":
    main()
