"""A process that stores messages in an outbox and says so: ``python -m
tests.outbox.producer PATH URL COUNT LEASE``. Each key goes to stdout (one whole line per
write) only once ``fire()`` has returned, that is once its row is committed."""

from __future__ import annotations

import os
import sys

from sendoff import Outbox


def main() -> None:
    path, url, count, lease = sys.argv[1], sys.argv[2], int(sys.argv[3]), float(sys.argv[4])
    outbox = Outbox(path, lease=lease)
    out = sys.stdout.fileno()
    for n in range(count):
        outbox.fire("POST", url, json={"n": n}, key=f"k{n}")
        os.write(out, f"k{n}\n".encode())
    outbox.flush(60)


if __name__ == "__main__":
    main()
