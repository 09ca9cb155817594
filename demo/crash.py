"""Demo: a producer is killed with kill -9 in the middle of storing webhooks, then started
again; every webhook it had stored arrives, each once per key.

The producer stores webhooks in an outbox file (each `fire()` returns once its row is
committed) and prints each key when `fire()` has returned. We kill it with SIGKILL while
it works: no exit hook, no drain, nothing in memory survives. Then a new process opens the
same file; its relay delivers what the first one had stored, and the receiver's count
matches the keys the producer had acknowledged.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

from progress import heading, progress
from receiver import Receiver

from sendoff import Outbox

MESSAGES = 3000
KILL_AFTER = 1200

PRODUCER = """
import os, sys
from sendoff import Outbox
outbox = Outbox(sys.argv[1], lease=1)
for n in range(int(sys.argv[3])):
    outbox.fire("POST", sys.argv[2], json={"event": "order.paid", "n": n}, key=f"order-{n}")
    os.write(1, f"order-{n}\\n".encode())
"""


def main() -> None:
    heading(5, "Outbox", "a producer killed with kill -9 mid-stream loses no webhook it stored")
    with Receiver() as receiver, tempfile.TemporaryDirectory(prefix="sendoff-demo-") as tmp:
        path = os.path.join(tmp, "outbox.sqlite3")
        producer = subprocess.Popen(
            [sys.executable, "-c", PRODUCER, path, receiver.url("/hooks"), str(MESSAGES)],
            stdout=subprocess.PIPE,
        )
        assert producer.stdout is not None
        acknowledged = []
        for line in producer.stdout:
            acknowledged.append(line.decode().strip())
            if len(acknowledged) == KILL_AFTER:
                producer.send_signal(signal.SIGKILL)
                break
        acknowledged += [line.decode().strip() for line in producer.stdout]
        producer.wait()
        print(f"producer: stored {len(acknowledged)} webhooks, then was killed with SIGKILL "
              f"(exit {producer.returncode}); the receiver has {len(receiver.received)} so far")
        start = time.monotonic()
        outbox = Outbox(path, lease=1)  # a new process opens the same file
        stats = outbox.stats()
        print(f"restarted: the file holds {stats['pending']} pending and "
              f"{stats['delivering']} leased to the dead process (reclaimed after 1 s)")
        with progress("the restarted relay delivers",
                      lambda: f"{outbox.stats()['pending']} pending, "
                              f"{len(receiver.received)} received"):
            assert outbox.flush(60)
        keys = Counter(dict(r.headers).get("Idempotency-Key") for r in receiver.received)
        missing = [key for key in acknowledged if key not in keys]
        twice = sum(1 for n in keys.values() if n > 1)
        print(f"after {time.monotonic() - start:.1f} s: every acknowledged webhook arrived: "
              f"{not missing} ({len(acknowledged) - len(missing)}/{len(acknowledged)}); "
              f"sent twice (in flight at the kill, same key): {twice}")
        first = outbox.status(outbox.store.by_key(acknowledged[0]).id)  # type: ignore[union-attr]
        assert first is not None
        print(f"receipt status of {acknowledged[0]}: {first.status} after {first.attempts} "
              f"attempt(s), answered {first.last_status}")
        outbox.close()
