"""The event system's cost: ``emit()`` beside blinker and pyee, and the lifecycle's
overhead on a real External request against a loopback server.

Targets (DESIGN.md): ``emit()`` with 0 listeners <= 0.3 us, with 3 listeners <= 1.5 us.
The emitters are timed in one process, interleaved round by round, so that the ratios
hold even when the machine is busy; the table gives the median and the best round.
"""

from __future__ import annotations

import logging
import time
import timeit
from collections.abc import Callable

from bench.report import bar_plot, median, percentile, quick, table

QUICK = quick()  # SENDOFF_BENCH_QUICK=1: a smoke run, too few rounds to quote
EMIT_ROUNDS = 3 if QUICK else 9
EMIT_CALLS = 50_000 if QUICK else 200_000
HTTP_ROUNDS = 2 if QUICK else 7  # of the network-free lifecycle timing
HTTP_REQUESTS = 300 if QUICK else 2000  # per scenario, interleaved with the other scenarios


def _noop(event: object) -> None:
    pass


def _noop2(event: object) -> None:
    pass


def _noop3(event: object) -> None:
    pass


LISTENERS = (_noop, _noop2, _noop3)


def emit_cases() -> dict[str, Callable[[], None]]:
    """name -> a zero-argument function doing one emit, set up for timeit."""
    import blinker
    from pyee.base import EventEmitter

    from sendoff.events import Emitter, Event

    cases: dict[str, Callable[[], None]] = {}
    for count in (0, 3):
        em = Emitter()
        sig = blinker.Signal()
        ee = EventEmitter()
        for fn in LISTENERS[:count]:
            em.on("e", fn)
            sig.connect(fn, weak=False)
            ee.on("e", fn)
        event = Event()
        cases[f"sendoff Emitter.emit|{count}"] = _bind(em.emit, "e", event)
        cases[f"blinker Signal.send|{count}"] = _bind1(sig.send, event)
        cases[f"pyee EventEmitter.emit|{count}"] = _bind(ee.emit, "e", event)
    return cases


def _bind(fn: Callable[..., object], name: str, event: object) -> Callable[[], None]:
    def call() -> None:
        fn(name, event)

    return call


def _bind1(fn: Callable[..., object], event: object) -> Callable[[], None]:
    def call() -> None:
        fn(event)

    return call


def time_emits() -> dict[str, list[float]]:
    """ns per emit for every case, one sample per round; the rounds interleave the cases.

    Each sample is the time of ``EMIT_CALLS`` calls of a tiny wrapper, less the time of
    as many calls of an empty wrapper, so that the call into the wrapper is not counted.
    """
    cases = emit_cases()

    def empty() -> None:
        pass

    samples: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(EMIT_ROUNDS):
        base = min(timeit.repeat(empty, number=EMIT_CALLS, repeat=3))
        for name, call in cases.items():
            spent = min(timeit.repeat(call, number=EMIT_CALLS, repeat=3))
            samples[name].append(max(0.0, spent - base) / EMIT_CALLS * 1e9)
    return samples


def lifecycle_scenarios() -> dict[str, Callable[[object], None]]:
    """name -> a function that sets up a client's emitter for that scenario."""
    from sendoff.subscribers import History, HttpError, Log, Prepare, Retry

    def nothing(client: object) -> None:
        pass

    def one_end_listener(client: object) -> None:
        client.emitter.on("end", _noop)  # type: ignore[attr-defined]

    def every_event(client: object) -> None:
        for name in ("before", "headers", "complete", "error", "end"):
            client.emitter.on(name, _noop)  # type: ignore[attr-defined]

    def builtins(client: object) -> None:
        for sub in (Prepare(), HttpError(), Retry(), History(), Log()):
            client.emitter.attach(sub)  # type: ignore[attr-defined]

    return {
        "no listeners (fast path)": nothing,
        "1 listener on end": one_end_listener,
        "1 listener on each of 5 events": every_event,
        "Prepare+HttpError+Retry+History+Log": builtins,
    }


def time_lifecycle_alone() -> dict[str, list[float]]:
    """us per Client.send() whose transfer returns a ready response: the lifecycle's own
    cost, without any network."""
    from sendoff import Request, Response
    from sendoff.clients.base import Client

    class Canned(Client):
        def transfer(self, request: Request, transaction: object) -> Response:
            return Response(200, body=b"ok", request=request)

    logging.getLogger("sendoff").setLevel(logging.WARNING)
    clients = {}
    for name, setup in lifecycle_scenarios().items():
        client = Canned()
        setup(client)
        clients[name] = client
    samples: dict[str, list[float]] = {name: [] for name in clients}
    number = 1_000 if QUICK else 5_000
    for _ in range(HTTP_ROUNDS):
        for name, client in clients.items():
            request = Request("http://127.0.0.1:9/bench")
            spent = min(timeit.repeat(lambda c=client, r=request: c.send(r), number=number,
                                      repeat=3))
            samples[name].append(spent / number * 1e6)
    return samples


def time_lifecycle() -> dict[str, list[float]]:
    """us per GET against a loopback server, per scenario. The scenarios take turns
    request by request (in a rotating order), so that a load spike from elsewhere on the
    machine hits all of them alike."""
    from sendoff import External, Request
    from tests.support.recording_server import RecordingServer, Reply

    logging.getLogger("sendoff").setLevel(logging.WARNING)  # Log formats nothing at INFO
    srv = RecordingServer(lambda req: Reply(200, b"ok"))
    srv.start()
    clients = {}
    for name, setup in lifecycle_scenarios().items():
        client = External("urllib3")
        setup(client)
        clients[name] = client
    url = srv.url("/bench")
    samples: dict[str, list[float]] = {name: [] for name in clients}
    order = list(clients.items())
    try:
        for client in clients.values():  # warm up the pools and code paths
            for _ in range(20):
                Request(url).client(client).execute()
        for i in range(HTTP_REQUESTS):
            shift = i % len(order)
            for name, client in order[shift:] + order[:shift]:
                request = Request(url).client(client)
                t0 = time.perf_counter()
                request.execute()
                samples[name].append((time.perf_counter() - t0) * 1e6)
            if i % 200 == 0:
                srv.received.clear()  # keep the server's memory flat
    finally:
        for client in clients.values():
            client.close()
        srv.stop()
    return samples


def main() -> None:
    emits = time_emits()
    rows = []
    targets = {0: 300.0, 3: 1500.0}
    for key, values in emits.items():
        name, count = key.split("|")
        n = int(count)
        target = targets[n] if name.startswith("sendoff") else float("nan")
        verdict = ("meets" if median(values) <= target else "MISSES") if target == target else ""
        rows.append([name, n, median(values), min(values), target, verdict])
    table(
        f"emit() cost, ns per call ({EMIT_ROUNDS} interleaved rounds of "
        f"{EMIT_CALLS:,} calls; wrapper call subtracted)",
        ["emitter", "listeners", "median ns", "best ns", "target ns", "target"],
        rows,
    )
    bar_plot(
        "events_emit.png",
        "emit() cost: sendoff vs blinker vs pyee (median ns per call)",
        [f"{r[0]} ({r[1]} listeners)" for r in rows],
        [r[2] for r in rows],
        "ns per emit (lower is better)",
    )

    alone = time_lifecycle_alone()
    base = median(alone["no listeners (fast path)"])
    table(
        "The lifecycle alone: Client.send() with a transfer that returns a ready response "
        "(no network)",
        ["scenario", "median us/request", "added us"],
        [[name, median(v), median(v) - base] for name, v in alone.items()],
    )

    lifecycle = time_lifecycle()
    base = median(lifecycle["no listeners (fast path)"])
    rows = []
    for name, values in lifecycle.items():
        med = median(values)
        rows.append([name, med, percentile(values, 90), med - base, med / base])
    table(
        f"Lifecycle overhead on External(urllib3) GET to a loopback server "
        f"({HTTP_REQUESTS:,} requests per scenario, taking turns request by request)",
        ["scenario", "median us/request", "p90 us", "added us (median)", "ratio (median)"],
        rows,
    )


if __name__ == "__main__":
    main()
