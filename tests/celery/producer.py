"""A producer process for the tests: ``python -m tests.celery.producer BROKER QUEUE PATH URL N``
fires N messages (``json={"n": i}``) into the outbox at PATH through a CeleryRelay, prints
``fired`` and then keeps running until it is killed."""

from __future__ import annotations

import sys
import time

from sendoff import Outbox
from sendoff.celery import CeleryRelay
from tests.celery.helpers import LEASE
from tests.support.celery_app import make_app


def main(broker: str, queue: str, path: str, url: str, count: int) -> None:
    app = make_app(broker)
    outbox = Outbox(path, relay=CeleryRelay(app, queue=queue, batch=20),
                    connections_per_origin=4, lease=LEASE)
    for n in range(count):
        outbox.fire("POST", url, json={"n": n})
    print("fired", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main(*sys.argv[1:5], int(sys.argv[5]))
