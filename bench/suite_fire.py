"""Fire-and-forget: caller cost, delivered requests/s and queue memory, beside the peers.

1. Caller cost of one request while the server takes 100 ms to answer (a loopback asyncio
   server), for sendoff and for what people do instead: blocking requests/httpx/urllib3/
   pycurl, a thread per request, ThreadPoolExecutor.submit, the seed's raw socket write
   and the seed's ``curl &``.
2. Delivered requests/s from one process to nginx (installed from Debian when missing,
   else the asyncio server, as the table says), 16 keep-alive connections: sendoff with and
   without pipelining beside urllib3, pycurl, aiohttp and httpx at the same concurrency.
3. Memory while 1,000,000 small fires are queued (nginx paused with SIGSTOP, then resumed
   so that all of them are delivered).

Every row says how many requests the server received. Bounded in count and time;
loopback only.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import sendoff
from bench.nginx import Nginx
from bench.report import bar_plot, percentile, quick, table, timed_us
from sendoff import FireAndForget, Request
from tests.support.recording_server import RecordingServer, Reply

QUICK = quick()  # SENDOFF_BENCH_QUICK=1: a smoke run, every count a tenth or less
CONNECTIONS = 16
ROW_SECONDS = 1.0 if QUICK else 3.0  # slow peers stop after this long (their count says so)
THROUGHPUT_N = 10_000 if QUICK else 200_000
PEER_N = 5_000 if QUICK else 50_000
MEMORY_N = 50_000 if QUICK else 1_000_000


def _n(full: int) -> int:
    """A caller-cost row's call count: a tenth (at least 5) in a quick run."""
    return max(5, full // 10) if QUICK else full
PAYLOAD = {"event": "signup", "user": 42}


# -- 1. caller cost -------------------------------------------------------------------------
def caller_cost() -> list[tuple[str, int, list[float], int]]:
    """(name, calls, microseconds per call, server received) per way of sending."""
    import pycurl
    import requests
    import urllib3

    slow = RecordingServer(lambda req: Reply(200, b"ok", delay=0.1))
    slow.start()
    rows: list[tuple[str, int, list[float], int]] = []
    url = slow.url("/hook")
    wire = Request(url, "POST").json(PAYLOAD).render()

    def row(name: str, n: int, call: Callable[[int], Any], drain: Callable[[], None]) -> None:
        before = slow.count
        gc.collect()
        samples = timed_us(n, call)
        drain()
        deadline = time.monotonic() + 60
        while slow.count - before < n and time.monotonic() < deadline:
            time.sleep(0.05)
        rows.append((name, n, samples, slow.count - before))
        print(f"  {name}: p50 {percentile(samples, 50):.1f} us", flush=True)

    try:
        client = FireAndForget()
        client.fire("GET", slow.url("/warm")).wait(5)
        slow.wait_for(1)
        row("sendoff.fire(POST, url, json=...)", _n(2000),
            lambda i: sendoff.fire("POST", url, json=PAYLOAD), lambda: sendoff.flush(60))
        requests_ = [Request(url, "POST").json(PAYLOAD).client(client) for _ in range(_n(1000))]
        row("FireAndForget.execute(request)", _n(1000), lambda i: requests_[i].execute(),
            lambda: sendoff.flush(60))

        pool = urllib3.PoolManager(maxsize=CONNECTIONS)
        with ThreadPoolExecutor(CONNECTIONS) as executor:
            futures: list[Any] = []
            row("ThreadPoolExecutor(16).submit(urllib3)", _n(500),
                lambda i: futures.append(executor.submit(pool.request, "POST", url, body=b"x")),
                lambda: [f.result() for f in futures])
        threads: list[threading.Thread] = []

        def start_thread(i: int) -> None:
            t = threading.Thread(target=pool.request, args=("POST", url), kwargs={"body": b"x"})
            t.start()
            threads.append(t)

        row("threading.Thread per request", _n(300), start_thread,
            lambda: [t.join() for t in threads])

        def raw_socket(i: int) -> None:
            sock = socket.create_connection(("127.0.0.1", slow.port))
            sock.sendall(wire)
            sock.close()

        row("raw socket connect+write+close (seed)", _n(500), raw_socket, lambda: None)
        row("`curl ... &` via the shell (seed)", _n(50),
            lambda i: subprocess.call(f"curl -s -X POST -d x {url} >/dev/null 2>&1 &",
                                      shell=True), lambda: None)
        session = requests.Session()
        row("requests (blocking)", 5, lambda i: session.post(url, data=b"x"), lambda: None)
        import httpx

        with httpx.Client() as hx:
            row("httpx (blocking)", 5, lambda i: hx.post(url, content=b"x"), lambda: None)
        row("urllib3 (blocking)", 5, lambda i: pool.request("POST", url, body=b"x"),
            lambda: None)
        curl = pycurl.Curl()
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.POSTFIELDS, "x")
        curl.setopt(pycurl.WRITEFUNCTION, lambda data: None)
        row("pycurl (blocking)", 5, lambda i: curl.perform(), lambda: None)
    finally:
        slow.stop()
    return rows


# -- 2. throughput --------------------------------------------------------------------------
class Counting:
    """nginx, or the asyncio server when nginx cannot run; ``received()`` counts requests."""

    def __init__(self) -> None:
        self.nginx: Nginx | None = None
        self.fallback: RecordingServer | None = None
        try:
            self.nginx = Nginx().__enter__()
            self.name = "nginx 1 worker"
        except (RuntimeError, OSError) as exc:
            print(f"  nginx unavailable ({exc}); using the asyncio server", flush=True)
            self.fallback = RecordingServer()
            self.fallback.start()
            self.name = "asyncio+httptools server (no nginx)"

    def url(self, path: str = "/") -> str:
        return self.nginx.url(path) if self.nginx else self.fallback.url(path)  # type: ignore[union-attr]

    def received(self) -> int:
        return self.nginx.requests() if self.nginx else self.fallback.count  # type: ignore[union-attr]

    def close(self) -> None:
        if self.nginx:
            self.nginx.__exit__()
        if self.fallback:
            self.fallback.stop()


def sendoff_throughput(server: Counting, n: int, pipeline: int) -> tuple[float, float, int]:
    """(end-to-end req/s for fire N + flush, engine drain req/s, server received)."""
    client = FireAndForget(max_queue=n + 1, pipeline=pipeline, connections_per_origin=CONNECTIONS)
    url = server.url("/t")
    client.fire("GET", url).wait(5)
    before = server.received()
    gc.collect()
    start = time.perf_counter()
    for _ in range(n):
        client.fire("GET", url)
    fired = time.perf_counter()
    delivered_while_firing = client.stats()["delivered"]
    assert client.flush(120)
    end = time.perf_counter()
    drained = client.stats()["delivered"] - delivered_while_firing
    return n / (end - start), drained / (end - fired), server.received() - before


def _threads(n: int, work: Callable[[], Any]) -> tuple[int, float]:
    """Run ``work`` from CONNECTIONS threads until n calls or ROW_SECONDS; (calls, seconds)."""
    lock = threading.Lock()
    done = [0]
    stop_at = time.perf_counter() + ROW_SECONDS

    def loop() -> None:
        while time.perf_counter() < stop_at:
            with lock:
                if done[0] >= n:
                    return
                done[0] += 1
            work()

    threads = [threading.Thread(target=loop) for _ in range(CONNECTIONS)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return done[0], time.perf_counter() - start


def urllib3_throughput(url: str, n: int) -> tuple[int, float]:
    import urllib3

    pool = urllib3.PoolManager(maxsize=CONNECTIONS, block=True)
    return _threads(n, lambda: pool.request("GET", url).data)


def pycurl_throughput(url: str, n: int) -> tuple[int, float]:
    import pycurl

    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, CONNECTIONS)
    handles = []
    for _ in range(CONNECTIONS):
        curl = pycurl.Curl()
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.WRITEFUNCTION, lambda data: None)
        handles.append(curl)
    done = started = 0
    start = time.perf_counter()
    stop_at = start + ROW_SECONDS
    for curl in handles:
        multi.add_handle(curl)
        started += 1
    while done < started:
        multi.perform()
        _, ok, failed = multi.info_read()
        for curl in ok + [f[0] for f in failed]:
            done += 1
            multi.remove_handle(curl)
            if started < n and time.perf_counter() < stop_at:
                multi.add_handle(curl)
                started += 1
        multi.select(0.01)
    return done, time.perf_counter() - start


def _async_workers(n: int, setup: Callable[[], Any]) -> tuple[int, float]:
    """CONNECTIONS asyncio workers until n calls or ROW_SECONDS. ``await setup()`` gives
    (fetch, close): ``await fetch()`` makes one request, ``await close()`` cleans up."""
    done = 0
    stop_at = time.perf_counter() + ROW_SECONDS

    async def main() -> float:
        nonlocal done
        fetch, close = await setup()

        async def worker() -> None:
            nonlocal done
            while done < n and time.perf_counter() < stop_at:
                done += 1
                await fetch()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
        seconds = time.perf_counter() - start
        await close()
        return seconds

    seconds = asyncio.run(main())
    return done, seconds


def aiohttp_throughput(url: str, n: int) -> tuple[int, float]:
    import aiohttp

    async def setup() -> Any:
        session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=CONNECTIONS))

        async def fetch() -> None:
            async with session.get(url) as resp:
                await resp.read()

        return fetch, session.close

    return _async_workers(n, setup)


def httpx_throughput(url: str, n: int) -> tuple[int, float]:
    import httpx

    async def setup() -> Any:
        client = httpx.AsyncClient(limits=httpx.Limits(max_connections=CONNECTIONS))

        async def fetch() -> None:
            (await client.get(url)).read()

        return fetch, client.aclose

    return _async_workers(n, setup)


def throughput(server: Counting) -> list[tuple[str, int, float, str, int]]:
    rows: list[tuple[str, int, float, str, int]] = []
    n = THROUGHPUT_N
    for pipeline in (1, 8):
        rate, drain, got = sendoff_throughput(server, n, pipeline)
        name = f"sendoff FireAndForget, 16 conns, pipeline={pipeline}"
        rows.append((name, n, rate, f"engine alone {drain:,.0f}/s", got))
        print(f"  {name}: {rate:,.0f}/s", flush=True)
    url = server.url("/t")
    for name, run in (
        ("urllib3, 16 threads, 16 conns", urllib3_throughput),
        ("pycurl CurlMulti, 16 handles", pycurl_throughput),
        ("aiohttp, 16 conns", aiohttp_throughput),
        ("httpx async, 16 conns", httpx_throughput),
    ):
        before = server.received()
        done, seconds = run(url, PEER_N)
        rows.append((name, done, done / seconds, f"{seconds:.1f} s", server.received() - before))
        print(f"  {name}: {done / seconds:,.0f}/s", flush=True)
    return rows


# -- 3. memory ------------------------------------------------------------------------------
def _rss() -> int:
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def memory(server: Counting, n: int = MEMORY_N) -> tuple[int, float, float, int]:
    """(queued, bytes per queued request, seconds to deliver them all, server received)."""
    client = FireAndForget(max_queue=n + 1, timeout=300)
    url = server.url("/m")
    client.fire("POST", url, json={"i": 0}).wait(5)
    before_count = server.received()
    paused = server.nginx is not None and server.nginx.proc is not None
    if paused:
        os.kill(server.nginx.proc.pid, signal.SIGSTOP)  # type: ignore[union-attr]
    gc.collect()
    before = _rss()
    for i in range(n):
        client.fire("POST", url, json={"i": i})
    queued = client.stats()["queued"]
    per_request = (_rss() - before) / n
    if paused:
        os.kill(server.nginx.proc.pid, signal.SIGCONT)  # type: ignore[union-attr]
    start = time.perf_counter()
    assert client.flush(300)
    return queued, per_request, time.perf_counter() - start, server.received() - before_count


def main() -> None:
    print("caller cost (server answers in 100 ms)...", flush=True)
    cost = caller_cost()
    table(
        "Caller cost of one request while the server takes 100 ms (µs)",
        ["way of sending", "calls", "p50 µs", "p99 µs", "max µs", "server received"],
        [(name, n, percentile(s, 50), percentile(s, 99), max(s), got) for name, n, s, got in cost],
    )
    bar_plot("fire_caller_cost.png", "Caller cost per request, server takes 100 ms (p50, log)",
             [r[0] for r in cost], [percentile(r[2], 50) for r in cost], "microseconds", log=True)

    server = Counting()
    try:
        print(f"throughput against {server.name}...", flush=True)
        rates = throughput(server)
        table(
            f"Delivered requests/s, one process, loopback {server.name}",
            ["client", "requests", "req/s", "note", "server received"],
            rates,
        )
        bar_plot("fire_throughput.png", f"Delivered requests/s to {server.name}",
                 [r[0] for r in rates], [r[2] for r in rates], "requests per second")
        print(f"memory of {MEMORY_N:,} queued fires...", flush=True)
        queued, per_request, seconds, got = memory(server)
        table(
            f"Memory while {MEMORY_N:,} small fires are queued",
            ["fires", "queued at peak", "bytes per queued request", "delivered after",
             "server received"],
            [(MEMORY_N, queued, per_request, f"{seconds:.1f} s", got)],
        )
    finally:
        server.close()
    sys.stdout.flush()


if __name__ == "__main__":
    main()
