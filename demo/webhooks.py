"""Demo: 50 webhooks to a slow receiver, sent blocking and then fire-and-forget.

A local receiver takes 300 ms per request (like a busy partner API). The same 50
webhooks go out twice: with the blocking External client, the caller waits for every one;
with FireAndForget, the caller hands them over in microseconds, the engine delivers them
in the background, and the receiver's count proves that all 50 arrived.
"""

from __future__ import annotations

import os
import time

from progress import heading, progress
from receiver import Receiver

import sendoff
from sendoff import External, FireAndForget, Request

WEBHOOKS = int(os.environ.get("SENDOFF_DEMO_WEBHOOKS", "50"))
RECEIVER_DELAY = 0.3


def _webhook(url: str, i: int) -> Request:
    return Request(url, "POST").json({"event": "order.paid", "order": 1000 + i})


def main() -> None:
    heading(4, f"Webhooks: {WEBHOOKS} to a receiver taking {RECEIVER_DELAY * 1000:.0f} ms each",
            "fire-and-forget costs the caller microseconds, and every one arrives")
    with Receiver(delay=RECEIVER_DELAY) as receiver:
        base = receiver.url("/hooks")
        blocking = External(backend="urllib3")
        start = time.perf_counter()
        with progress("blocking: the caller waits for each webhook",
                      lambda: f"{receiver.count('/hooks/blocking')}/{WEBHOOKS} answered"):
            for i in range(WEBHOOKS):
                _webhook(f"{base}/blocking", i).client(blocking).execute()
        waited = time.perf_counter() - start
        print(f"blocking (External):            the caller waited {waited:8.3f} s"
              f"   receiver got {receiver.count('/hooks/blocking')}/{WEBHOOKS}")

        client = FireAndForget()
        start = time.perf_counter()
        receipts = [_webhook(f"{base}/fired", i).client(client).execute()
                    for i in range(WEBHOOKS)]
        handed = time.perf_counter() - start
        with progress("the engine delivers in the background",
                      lambda: f"{receiver.count('/hooks/fired')}/{WEBHOOKS} arrived"):
            client.flush(30)  # only so that the demo can count; a web app would not wait
        delivered = time.perf_counter() - start
        ok = sum(1 for r in receipts if r.response is not None and r.response.ok)
        print(f"fire-and-forget (FireAndForget): the caller waited {handed:8.5f} s"
              f"   ({handed / WEBHOOKS * 1e6:.0f} µs per webhook)")
        print(f"  ...the engine delivered them in the background in {delivered:.2f} s over "
              f"keep-alive connections; receiver got {receiver.count('/hooks/fired')}/{WEBHOOKS}, "
              f"receipts confirm {ok} delivered")
        print(f"  the caller was {waited / handed:,.0f}x less delayed; "
              f"sendoff.stats(): delivered={sendoff.stats()['delivered']}, "
              f"failed={sendoff.stats()['failed']}")


if __name__ == "__main__":
    main()
