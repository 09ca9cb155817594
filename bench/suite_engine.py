"""The delivery engine against the anchors, in the same run (issue 10, Deliver point 7).

``python -m bench engine`` (``SENDOFF_BENCH_QUICK=1`` for a < 60 s smoke run). Against one
loopback nginx (1 worker process, ``return 200``), plain HTTP then TLS (a trustme
certificate the clients verify), 16 keep-alive connections, one request per connection at
a time (``pipeline=1``):

- the anchors of bench/anchors.py: the minimal Python loop (the pure-Python limit), wrk
  (the machine's limit), pycurl CurlMulti, aiohttp;
- **sendoff engine drain**: the engine alone, with the caller not running. The child warms
  a ``FireAndForget`` (its 16 connections open), pauses nginx with SIGSTOP, queues ``n``
  ``fire("GET", url)`` calls (the kernel holds the 16 requests already written; nothing is
  answered, so nothing is delivered while the caller runs — the row checks that), resumes
  nginx with SIGCONT and times ``flush()`` from that moment: the caller is blocked in
  ``flush`` and only the engine's thread runs. CPU is the process's during that window, so
  the engine's alone. Only the public API is used (``fire``, ``flush``, ``stats``).
- **sendoff fire()+drain end to end**: ``n`` ``client.fire("GET", url)`` then
  ``client.flush()``, timed from the first fire to flush's return; CPU is caller + engine.

Each run is one child interpreter (bench/isolated.py); rows are interleaved and rotated
(A B C..., B C...A, ...) and repeated; tables give the median with min-max over the repeats,
ratios to the minimal loop and to wrk as the median of the per-round ratios, CPU seconds
per 100,000 delivered, and what nginx's ``stub_status`` says it received for the row
(sendoff's warm-up requests subtracted). Each row's ``n`` is calibrated once before the
repeats so that a run lasts about ROW_SECONDS on this machine.

Then the caller-cost table: ``client.fire()`` p50/p99 beside
``ThreadPoolExecutor(16).submit`` of a blocking urllib3 request while the server (its own
process) takes 100 ms per answer; every run waits until the server has answered all.

Last, a table for reading (no target): delivery while another thread of the process runs
Python without pause. A thread that waits for a socket lets go of the GIL and must then
wait for it up to the interpreter's switch interval (``sys.setswitchinterval``, 5 ms by
default), so the minimal loop suffers as sendoff's engine does; the table shows both at
the default interval and at 1 ms.
"""

from __future__ import annotations

import gc
import os
import signal
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from bench import isolated
from bench.anchors import CONNECTIONS, PAYLOAD, Meter, wrk_binary
from bench.nginx import Nginx
from bench.report import (
    Spread,
    bar_plot,
    interleaved,
    machine_line,
    median,
    note,
    percentile,
    quick,
    save_json,
    table,
)
from bench.slow_server import SlowServer

QUICK = quick()
ROW_SECONDS = 0.5 if QUICK else 1.5  # each throughput run lasts about this long
WRK_SECONDS = max(1, round(ROW_SECONDS))  # wrk counts whole seconds
REPEATS = 1 if QUICK else 7
CALIBRATE_N = 3_000 if QUICK else 20_000  # requests of the one calibration run per row
MAX_N = 2_000_000
CALLER_CALLS = 100 if QUICK else 400  # per caller-cost run: 400 answers take 2.5 s
CALLER_REPEATS = 1 if QUICK else 7
WARMUP = 64  # sendoff requests sent (and flushed) before timing: its connections open
FLUSH_TIMEOUT = 300.0


# -- sendoff rows, each run in a child interpreter --------------------------------------------
def _client(n: int, ca_file: str | None) -> Any:
    from sendoff import FireAndForget

    return FireAndForget(timeout=120, connections_per_origin=CONNECTIONS, pipeline=1,
                         max_queue=n + WARMUP + 1, ca_bundle=ca_file)


def _warm(client: Any, url: str) -> int:
    for _ in range(WARMUP):
        client.fire("GET", url)
    if not client.flush(30):
        raise RuntimeError("sendoff's warm-up requests were not delivered in 30 s")
    return WARMUP


def _counts(client: Any) -> tuple[int, int, int]:
    stats = client.stats()
    return stats["delivered"], stats["failed"], stats["dropped"]


def established_to(port: int) -> int:
    """ESTABLISHED IPv4 TCP connections on this machine whose remote port is ``port``."""
    count = 0
    with open("/proc/net/tcp") as fh:
        next(fh)
        for line in fh:
            fields = line.split()
            if fields[3] == "01" and int(fields[2].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count


def sendoff_drain(url: str, n: int, nginx_pid: int, ca_file: str | None = None
                  ) -> dict[str, Any]:
    """The engine alone: queue ``n`` fires while nginx is stopped, time the drain."""
    client = _client(n, ca_file)
    warm = _warm(client, url)
    connections = established_to(urlsplit(url).port or 80)
    delivered0, failed0, dropped0 = _counts(client)
    gc.collect()
    os.kill(nginx_pid, signal.SIGSTOP)
    try:
        meter = Meter()
        for _ in range(n):
            client.fire("GET", url)
        fired, fire_cpu, _ = meter.read()
        while_paused = client.stats()["delivered"] - delivered0
    finally:
        os.kill(nginx_pid, signal.SIGCONT)
    meter.restart()
    flushed = client.flush(FLUSH_TIMEOUT)
    elapsed, used, kernel = meter.read()
    delivered, failed, dropped = _counts(client)
    return {"elapsed": elapsed, "cpu": used, "sys": kernel, "delivered": delivered - delivered0,
            "failed": failed - failed0, "dropped": dropped - dropped0, "flushed": flushed,
            "warmup": warm, "fire_us": fired / n * 1e6, "fire_cpu": fire_cpu,
            "delivered_while_paused": while_paused, "connections": connections}


def sendoff_end_to_end(url: str, n: int, ca_file: str | None = None) -> dict[str, Any]:
    """``n`` x ``client.fire("GET", url)`` then ``flush()``: caller and engine together."""
    client = _client(n, ca_file)
    warm = _warm(client, url)
    delivered0, failed0, dropped0 = _counts(client)
    gc.collect()
    meter = Meter()
    for _ in range(n):
        client.fire("GET", url)
    fired = meter.read()[0]
    flushed = client.flush(FLUSH_TIMEOUT)
    elapsed, used, kernel = meter.read()
    delivered, failed, dropped = _counts(client)
    return {"elapsed": elapsed, "cpu": used, "sys": kernel, "delivered": delivered - delivered0,
            "failed": failed - failed0, "dropped": dropped - dropped0, "flushed": flushed,
            "warmup": warm, "fire_us": fired / n * 1e6}


def sendoff_fire_cost(url: str, n: int, method: str = "POST") -> dict[str, Any]:
    """µs per ``client.fire(...)`` while the server takes 100 ms per answer (the 16
    connections are busy, so fires queue); returns once all have been answered."""
    from sendoff import FireAndForget

    client = FireAndForget(timeout=60, connections_per_origin=CONNECTIONS, pipeline=1,
                           max_queue=n + 100)
    for _ in range(CONNECTIONS):
        client.fire("GET", url)
    if not client.flush(30):
        raise RuntimeError("warm-up requests to the slow server were not delivered")
    delivered0 = client.stats()["delivered"]
    gc.collect()
    samples = []
    clock = time.perf_counter_ns
    if method == "POST":
        for _ in range(n):
            start = clock()
            client.fire("POST", url, json=PAYLOAD)
            samples.append((clock() - start) / 1000)
    else:
        for _ in range(n):
            start = clock()
            client.fire("GET", url)
            samples.append((clock() - start) / 1000)
    flushed = client.flush(FLUSH_TIMEOUT)
    return {"samples": samples, "calls": n, "warmup": CONNECTIONS, "flushed": flushed,
            "delivered": client.stats()["delivered"] - delivered0}


# -- the throughput table ----------------------------------------------------------------------
MINIMAL, WRK = "minimal Python loop (pure-Python limit)", "wrk -t1 -c16 (machine's limit)"
PYCURL, AIOHTTP = "pycurl CurlMulti, 16 handles", "aiohttp, TCPConnector(limit=16), 16 tasks"
DRAIN, E2E = "sendoff engine drain (caller idle)", "sendoff fire() + drain, end to end"
DRAIN_TARGET, E2E_TARGET = 0.9, 0.6  # x the minimal loop's req/s (issue 10)
CPU_TARGET = 1.7  # CPU per 100k delivered, x the minimal loop's
FIRE_TARGET = 1.0  # fire() p50, x ThreadPoolExecutor.submit p50


def _measure(nginx: Nginx, target: str, **kwargs: Any) -> dict[str, Any]:
    """Run one measurement in a child; add what nginx received (warm-up excluded)."""
    before = nginx.requests()
    try:
        result = isolated.run(target, **kwargs)
    finally:
        nginx.resume()  # harmless when running; never leave nginx stopped
    result["received"] = nginx.requests() - before - result.get("warmup", 0)
    return result


def _rate(result: dict[str, Any]) -> float:
    return float(result["delivered"] / result["elapsed"]) if result["elapsed"] else float("nan")


def _cpu_per_100k(result: dict[str, Any]) -> float:
    return float(result["cpu"] / result["delivered"] * 1e5) if result["delivered"] else float("nan")


def throughput(nginx: Nginx, tls: bool) -> dict[str, Any]:
    url = nginx.url("/t", tls=tls)
    ca = nginx.ca_file if tls else None
    kind = "TLS" if tls else "plain HTTP"
    counted: dict[str, Callable[[int], dict[str, Any]]] = {
        MINIMAL: lambda n: _measure(nginx, "bench.anchors:minimal_loop", url=url, n=n,
                                    ca_file=ca),
        PYCURL: lambda n: _measure(nginx, "bench.anchors:pycurl_multi", url=url, n=n,
                                   ca_file=ca),
        AIOHTTP: lambda n: _measure(nginx, "bench.anchors:aiohttp_workers", url=url, n=n,
                                    ca_file=ca),
        DRAIN: lambda n: _measure(nginx, "bench.suite_engine:sendoff_drain", url=url, n=n,
                                  nginx_pid=nginx.pid, ca_file=ca),
        E2E: lambda n: _measure(nginx, "bench.suite_engine:sendoff_end_to_end", url=url, n=n,
                                ca_file=ca),
    }
    print(f"calibrating n per row ({kind}, {CALIBRATE_N:,} requests each)...", flush=True)
    sizes: dict[str, int] = {}
    for name, run in counted.items():
        rate = _rate(run(CALIBRATE_N))
        sizes[name] = max(CALIBRATE_N, min(MAX_N, int(round(rate * ROW_SECONDS, -3))))
        print(f"  {name}: {rate:,.0f}/s -> n = {sizes[name]:,}", flush=True)

    rows: list[tuple[str, Callable[[], dict[str, Any]]]] = [
        (MINIMAL, lambda: counted[MINIMAL](sizes[MINIMAL])),
    ]
    if wrk_binary() is not None:
        rows.append((WRK, lambda: _measure(nginx, "bench.anchors:wrk", url=url,
                                           seconds=WRK_SECONDS)))
    else:
        print("  wrk is not installed: no wrk row", flush=True)
    rows += [(name, (lambda name=name: counted[name](sizes[name])))
             for name in (PYCURL, AIOHTTP, DRAIN, E2E)]

    def progress(name: str, rnd: int, result: dict[str, Any]) -> None:
        print(f"  [{kind} round {rnd + 1}/{REPEATS}] {name}: {_rate(result):,.0f}/s, "
              f"{_cpu_per_100k(result):.2f} CPU s/100k, received {result['received']:,}",
              flush=True)

    print(f"{REPEATS} interleaved rounds ({kind})...", flush=True)
    results = interleaved(rows, REPEATS, progress=progress)
    save_json(f"engine_runs_{'tls' if tls else 'http'}.json", {"sizes": sizes, "runs": results})
    return _throughput_tables(kind, results, sizes)


def _per_round_ratio(results: dict[str, list[dict[str, Any]]], name: str, anchor: str,
                     value: Callable[[dict[str, Any]], float]) -> Spread:
    if anchor not in results:
        return Spread.of([])
    return Spread.of([value(a) / value(b) for a, b in
                      zip(results[name], results[anchor], strict=True) if value(b)])


def _best_ratio(results: dict[str, list[dict[str, Any]]], name: str, anchor: str) -> float:
    """The row's best round / the anchor's best round. On a shared machine other processes
    only ever slow a run down, so each row's best round is its least disturbed one."""
    if anchor not in results:
        return float("nan")
    return max(_rate(r) for r in results[name]) / max(_rate(r) for r in results[anchor])


def _throughput_tables(kind: str, results: dict[str, list[dict[str, Any]]],
                       sizes: dict[str, int]) -> dict[str, Any]:
    rows = []
    for name, runs in results.items():
        rate = Spread.of([_rate(r) for r in runs])
        sys_share = median([r.get("sys", 0.0) / r["cpu"] * 100 for r in runs if r["cpu"]])
        cpu = Spread.of([_cpu_per_100k(r) for r in runs])
        vs_loop = _per_round_ratio(results, name, MINIMAL, _rate)
        vs_wrk = _per_round_ratio(results, name, WRK, _rate)
        cpu_vs_loop = _per_round_ratio(results, name, MINIMAL, _cpu_per_100k)
        n = f"-d{WRK_SECONDS}s" if name == WRK else f"{sizes[name]:,}"
        failed = sum(int(r.get("failed", 0)) + int(r.get("dropped", 0)) for r in runs)
        rows.append((name, n, str(rate), str(vs_loop), _best_ratio(results, name, MINIMAL),
                     str(vs_wrk), str(cpu), str(cpu_vs_loop), f"{sys_share:.0f}%",
                     sum(int(r["delivered"]) for r in runs), failed,
                     sum(int(r["received"]) for r in runs)))
    table(
        f"Delivered requests/s, {kind}, loopback nginx (1 worker), 16 keep-alive connections, "
        f"{REPEATS} interleaved rounds — median (min-max); ratios: median (min-max) of the "
        "per-round ratios",
        ["row", "n per run", "req/s", "x minimal loop", "best / loop's best", "x wrk",
         "CPU s per 100k", "CPU x minimal loop", "kernel share of CPU", "delivered (all runs)",
         "failed", "nginx received (all runs)"],
        rows,
    )
    bar_plot(f"engine_throughput_{'tls' if 'TLS' in kind else 'http'}.png",
             f"req/s / minimal Python loop, {kind} (median of rounds)",
             list(results), [_per_round_ratio(results, name, MINIMAL, _rate).median
                             for name in results], "x minimal Python loop")
    drains = results.get(DRAIN, [])
    ends = results.get(E2E, [])
    table(
        f"sendoff rows in detail, {kind} — median (min-max) over {REPEATS} runs",
        ["row", "fire() µs per call", "caller CPU s per 100k fires", "delivered while paused",
         "connections open at pause", "flush() returned True"],
        [(DRAIN, str(Spread.of([r["fire_us"] for r in drains])),
          str(Spread.of([r["fire_cpu"] / r["delivered"] * 1e5 for r in drains if r["delivered"]])),
          sum(int(r["delivered_while_paused"]) for r in drains),
          str(Spread.of([r["connections"] for r in drains])),
          f"{sum(bool(r['flushed']) for r in drains)}/{len(drains)}"),
         (E2E, str(Spread.of([r["fire_us"] for r in ends])), "(in the main table)", "-", "-",
          f"{sum(bool(r['flushed']) for r in ends)}/{len(ends)}")],
    )
    return {
        "kind": kind,
        "drain_best": _best_ratio(results, DRAIN, MINIMAL),
        "e2e_best": _best_ratio(results, E2E, MINIMAL),
        "drain": _per_round_ratio(results, DRAIN, MINIMAL, _rate),
        "e2e": _per_round_ratio(results, E2E, MINIMAL, _rate),
        "cpu": _per_round_ratio(results, E2E, MINIMAL, _cpu_per_100k),
        "drain_cpu": _per_round_ratio(results, DRAIN, MINIMAL, _cpu_per_100k),
    }


# -- caller cost ---------------------------------------------------------------------------------
FIRE_POST = 'sendoff client.fire("POST", url, json=...)'
FIRE_GET = 'sendoff client.fire("GET", url)'
SUBMIT = "ThreadPoolExecutor(16).submit(urllib3 POST json)"


def caller_cost() -> Spread:
    with SlowServer(delay=0.1) as srv:
        url = srv.url("/hook")

        def measure(target: str, **kwargs: Any) -> dict[str, Any]:
            before = srv.count()
            result = isolated.run(target, url=url, n=CALLER_CALLS, **kwargs)
            result["received"] = srv.count() - before - result.get("warmup", 0)
            return result

        rows: list[tuple[str, Callable[[], dict[str, Any]]]] = [
            (FIRE_POST, lambda: measure("bench.suite_engine:sendoff_fire_cost", method="POST")),
            (FIRE_GET, lambda: measure("bench.suite_engine:sendoff_fire_cost", method="GET")),
            (SUBMIT, lambda: measure("bench.anchors:threadpool_submit_cost")),
        ]

        def progress(name: str, rnd: int, result: dict[str, Any]) -> None:
            print(f"  [round {rnd + 1}/{CALLER_REPEATS}] {name}: p50 "
                  f"{percentile(result['samples'], 50):.2f} µs, p99 "
                  f"{percentile(result['samples'], 99):.2f} µs, received {result['received']}",
                  flush=True)

        print(f"caller cost, server takes 100 ms, {CALLER_REPEATS} interleaved rounds of "
              f"{CALLER_CALLS} calls...", flush=True)
        results = interleaved(rows, CALLER_REPEATS, progress=progress)
        save_json("engine_caller_cost_runs.json", results)

    def p(q: float) -> Callable[[dict[str, Any]], float]:
        return lambda r: percentile(r["samples"], q)

    out = []
    for name, runs in results.items():
        p50 = Spread.of([p(50)(r) for r in runs])
        p99 = Spread.of([p(99)(r) for r in runs])
        ratio = _per_round_ratio(results, name, SUBMIT, p(50))
        ratio99 = _per_round_ratio(results, name, SUBMIT, p(99))
        out.append((name, f"{CALLER_CALLS} x {len(runs)}", str(p50), str(p99), str(ratio),
                    str(ratio99), f"{median([max(r['samples']) for r in runs]):.1f}",
                    sum(len(r["samples"]) for r in runs), sum(int(r["received"]) for r in runs)))
    table(
        f"Caller cost of one request while the server takes 100 ms (µs), {CALLER_REPEATS} "
        "interleaved rounds — median (min-max) of each round's percentile",
        ["way of sending", "calls x rounds", "p50 µs", "p99 µs", "p50 x submit p50",
         "p99 x submit p99", "max µs (median)", "calls", "server received"],
        out,
    )
    return _per_round_ratio(results, FIRE_POST, SUBMIT, p(50))


def _verdict(value: Spread, target: float, at_most: bool) -> str:
    if value.median != value.median:
        return "n/a"
    ok = value.median <= target if at_most else value.median >= target
    return "met" if ok else "NOT met"


ORIGINS = 1_000 if QUICK else 10_000


def fire_cost_by_origins(origins: int, n: int) -> dict[str, Any]:
    """``fire()`` p50/p99 in µs when the requests go to ``origins`` distinct origins
    (127.0.x.y:9, refused at once: only the caller's side is measured)."""
    import gc

    from sendoff import FireAndForget

    client = FireAndForget(timeout=5, retries=0, max_queue=10_000_000)
    # distinct hosts 127.0.x.1-254 (no .0 and .255), so ``origins`` pools really exist
    urls = [f"http://127.0.{i // 254}.{i % 254 + 1}:9/hook" for i in range(origins)]
    assert len(set(urls)) == origins
    for url in urls:  # every origin has been seen (and its pool made) before we measure
        client.fire("GET", url)
    client.flush(60)
    gc.collect()
    samples = []
    clock = time.perf_counter_ns
    fire = client.fire
    for i in range(n):
        url = urls[i % origins]
        start = clock()
        fire("GET", url)
        samples.append((clock() - start) / 1000)
    client.flush(60)
    return {"samples": samples, "pools": len(urls)}


def origins_table() -> Spread:
    """fire() p50 with 10,000 origins in use against one, interleaved and repeated."""
    rounds = 1 if QUICK else 5
    results = interleaved([
        ("1 origin", lambda: isolated.run("bench.suite_engine:fire_cost_by_origins",
                                          origins=1, n=20_000)),
        (f"{ORIGINS:,} origins", lambda: isolated.run("bench.suite_engine:fire_cost_by_origins",
                                                      origins=ORIGINS, n=20_000)),
    ], rounds)
    one = results["1 origin"]
    many = results[f"{ORIGINS:,} origins"]
    ratios = [percentile(m["samples"], 50) / percentile(o["samples"], 50)
              for m, o in zip(many, one, strict=True)]
    rows = [(name, str(Spread.of([percentile(r["samples"], 50) for r in runs])),
             str(Spread.of([percentile(r["samples"], 99) for r in runs])))
            for name, runs in results.items()]
    table(f"fire() caller cost by origins in use, {rounds} interleaved rounds (µs)",
          ["origins", "p50 µs", "p99 µs"], rows)
    return Spread.of(ratios)


def beside_busy_thread(kind: str, url: str, n: int, interval: float) -> dict[str, Any]:
    """Deliver ``n`` GETs (the minimal loop, or sendoff's fire + flush) while another thread
    of this process runs Python without pause, with ``interval`` as the switch interval."""
    import sys
    import threading

    from bench.anchors import minimal_loop

    sys.setswitchinterval(interval)
    client = None if kind == "minimal loop" else _client(n, None)
    if client is not None:
        _warm(client, url)
    spinning = threading.Event()
    spinning.set()
    spins = [0]
    started = threading.Event()

    def spin() -> None:
        started.set()
        while spinning.is_set():
            sum(range(200))
            spins[0] += 1

    spinner = threading.Thread(target=spin, daemon=True)
    spinner.start()
    started.wait()
    try:
        if client is None:
            run = minimal_loop(url, n)
            elapsed, delivered = run.elapsed, run.delivered
        else:
            delivered0 = client.stats()["delivered"]
            meter = Meter()
            for _ in range(n):
                client.fire("GET", url)
            assert client.flush(FLUSH_TIMEOUT)
            elapsed = meter.read()[0]
            delivered = client.stats()["delivered"] - delivered0
    finally:
        spinning.clear()
        spinner.join()
    return {"rate": delivered / elapsed, "delivered": delivered, "spins": spins[0] / elapsed}


def busy_thread_table() -> None:
    """Requests/s beside a CPU-bound thread: the minimal loop and sendoff, at the default
    switch interval and at 1 ms (for reading; no target)."""
    rounds = 1 if QUICK else 3
    runs: list[tuple[str, Callable[[], dict[str, Any]]]] = []
    with Nginx() as nginx:
        url = nginx.url("/")

        def measure(kind: str, n: int, interval: float) -> dict[str, Any]:
            before = nginx.requests()
            result = isolated.run("bench.suite_engine:beside_busy_thread", kind=kind, url=url,
                                  n=n, interval=interval)
            result["nginx"] = nginx.requests() - before
            return result

        for interval, n in ((0.005, 300 if QUICK else 1_500), (0.001, 1_000 if QUICK else 5_000)):
            for kind in ("minimal loop", "sendoff fire() + flush()"):
                name = f"{kind}, switch interval {interval * 1000:g} ms"
                runs.append((name, lambda k=kind, m=n, i=interval: measure(k, m, i)))
        results = interleaved(runs, rounds)
    rows = [(name, f"{int(r[0]['delivered']):,} x {len(r)}",
             str(Spread.of([x["rate"] for x in r])),
             str(Spread.of([x["spins"] for x in r])), sum(int(x["nginx"]) for x in r))
            for name, r in results.items()]
    table(f"Beside a thread running Python without pause, requests/s, {rounds} interleaved"
          " rounds (for reading: the GIL's switch interval, not the client, sets the pace)",
          ["row", "requests x rounds", "req/s", "the busy thread's loops/s",
           f"nginx received (sendoff's: with {WARMUP} warm-up requests a run)"], rows)


def main() -> None:
    note(f"**engine suite{' (quick)' if QUICK else ''}** · {machine_line()}")
    ratios = []
    with Nginx(tls=True) as nginx:
        for tls in (False, True):
            ratios.append(throughput(nginx, tls))
    fire_ratio = caller_cost()
    origins_ratio = origins_table()
    busy_thread_table()
    rows = []
    for r in ratios:
        rows += [
            (f"engine drain ({r['kind']})", f"≥ {DRAIN_TARGET}x minimal loop", str(r["drain"]),
             r["drain_best"], _verdict(r["drain"], DRAIN_TARGET, at_most=False)),
            (f"fire() + drain ({r['kind']})", f"≥ {E2E_TARGET}x minimal loop", str(r["e2e"]),
             r["e2e_best"], _verdict(r["e2e"], E2E_TARGET, at_most=False)),
            (f"CPU per 100k, caller + engine ({r['kind']})", f"≤ {CPU_TARGET}x minimal loop",
             str(r["cpu"]), "-", _verdict(r["cpu"], CPU_TARGET, at_most=True)),
            (f"CPU per 100k, engine alone in the drain ({r['kind']})", "(for reading)",
             str(r["drain_cpu"]), "-", "-"),
        ]
    rows.append((f"fire() p50 with {ORIGINS:,} origins", "≤ 1.2x with one origin",
                 str(origins_ratio), "-", _verdict(origins_ratio, 1.2, at_most=True)))
    rows.append(("fire() p50 while the server takes 100 ms",
                 f"≤ {FIRE_TARGET}x ThreadPoolExecutor.submit p50", str(fire_ratio), "-",
                 _verdict(fire_ratio, FIRE_TARGET, at_most=True)))
    table("Issue 10 targets, ratios in this run — median (min-max) of the per-round ratios; "
          "the verdict reads the median",
          ["target", "bar", "measured", "best / loop's best", "verdict"], rows)
    note(f"at the end: {machine_line()}")


if __name__ == "__main__":
    main()
