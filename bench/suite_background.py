"""After-response tasks: what the client waits for, and what one sync worker can serve.

1. Latency: a request whose handler adds a 200 ms after-response task, as a ratio to the
   same endpoint adding none (target <= 1.1x), on uvicorn and gunicorn, for sendoff and
   for the frameworks' own ways (Starlette ``BackgroundTask``, Flask ``call_on_close``).
   Requests are sequential, each on a new connection, and the next pair starts only once
   the server has logged the last task as done (a busy worker is the second table's
   subject). Every sample, with or without a task, is taken the same way: 50 ms of quiet,
   one unmeasured request, then the sample.
2. Throughput of one sync gunicorn worker when every request adds a 50 ms task, with the
   ``inline`` and ``thread`` executors, 4 concurrent clients.

Every row reports how many requests the server logged and how many tasks it finished.
"""

from __future__ import annotations

import http.client
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from bench.report import bar_plot, median, percentile, quick, table

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from tests.support.process_server import ProcessServer, wait_until  # noqa: E402

QUICK = quick()  # SENDOFF_BENCH_QUICK=1: a smoke run
SAMPLES = 8 if QUICK else 60  # latency pairs per row
IDLE = 0.05  # seconds of quiet before every latency sample
TASK_MS = 200
THROUGHPUT_REQUESTS = 20 if QUICK else 100
THROUGHPUT_TASK_MS = 50
CLIENTS = 4

GUNICORN = [sys.executable, "-m", "gunicorn", "-b", "{host}:{port}", "--no-control-socket",
            "--access-logfile", "-", "-k", "sync", "-w", "1"]
UVICORN = [sys.executable, "-m", "uvicorn", "--host", "{host}", "--port", "{port}",
           "--lifespan", "off"]


def server(argv: list[str], app: str) -> ProcessServer:
    return ProcessServer([*argv, f"bench.background_app:{app}"], cwd=ROOT,
                         name=app).start()


def get(srv: ProcessServer, path: str) -> float:
    """Seconds from connecting to holding the whole response."""
    start = time.perf_counter()
    conn = http.client.HTTPConnection(srv.host, srv.port, timeout=30)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        body = response.read()
    finally:
        conn.close()
    elapsed = time.perf_counter() - start
    if response.status != 200 or body != b"ok":
        raise RuntimeError(f"{path}: {response.status} {body[:80]!r}")
    return elapsed


def handled(srv: ProcessServer, path: str) -> tuple[int, int]:
    """(requests the server logged for ``path``, tasks it logged as done for it)."""
    out = srv.output()
    return out.count(f"GET {path}"), out.count(f"task done {path.strip('/')}")


def wait_tasks(srv: ProcessServer, path: str, count: int) -> tuple[int, int]:
    """Wait (with a deadline) until ``count`` tasks for ``path`` are done; (requests, tasks)."""
    wait_until(lambda: handled(srv, path)[1] >= count, what=f"{count} {path} tasks")
    return handled(srv, path)


def sample(srv: ProcessServer, path: str, ms: int) -> float:
    """One latency sample, taken the same way with or without a task."""
    time.sleep(IDLE)
    get(srv, f"{path}?ms=0")  # one unmeasured request, then the sample
    return get(srv, f"{path}?ms={ms}")


def latency(srv: ProcessServer, path: str) -> list[object]:
    without, with_task = [], []
    for i in range(SAMPLES):
        without.append(sample(srv, path, 0))
        with_task.append(sample(srv, path, TASK_MS))
        wait_tasks(srv, path, i + 1)  # the server is idle again before the next sample
    requests, tasks = handled(srv, path)
    return [median(without) * 1e3, median(with_task) * 1e3,
            median(with_task) / median(without),
            percentile(with_task, 90) / percentile(without, 90), requests, tasks]


def latency_rows() -> list[list[object]]:
    rows: list[list[object]] = []
    cases = [("uvicorn", UVICORN, "asgi_inline", "Starlette BackgroundTask"),
             ("gunicorn sync", GUNICORN, "wsgi_inline", "Flask call_on_close")]
    for server_name, argv, app, native in cases:
        srv = server(argv, app)
        try:
            for path, who in (("/sendoff", "sendoff inline"), ("/native", native)):
                rows.append([server_name, who, *latency(srv, path)])
        finally:
            srv.stop()
    return rows


def throughput(srv: ProcessServer) -> list[object]:
    path = f"/sendoff?ms={THROUGHPUT_TASK_MS}"
    start = time.perf_counter()
    with ThreadPoolExecutor(CLIENTS) as pool:
        list(pool.map(lambda _: get(srv, path), range(THROUGHPUT_REQUESTS)))
    served = time.perf_counter() - start
    requests, tasks = wait_tasks(srv, "/sendoff", THROUGHPUT_REQUESTS)
    drained = time.perf_counter() - start
    return [THROUGHPUT_REQUESTS / served, served, drained, requests, tasks]


def throughput_rows() -> list[list[object]]:
    rows: list[list[object]] = []
    for executor in ("inline", "thread"):
        srv = server(GUNICORN, f"wsgi_{executor}")
        try:
            rows.append([executor, *throughput(srv)])
        finally:
            srv.stop()
    return rows


def main() -> None:
    lat = latency_rows()
    table(f"Client latency with a {TASK_MS} ms after-response task vs none "
          f"({SAMPLES} sequential requests each)",
          ["server", "tasks by", "p50 no task ms", "p50 with task ms", "ratio p50",
           "ratio p90", "requests handled", "tasks run"], lat)
    thr = throughput_rows()
    table(f"One sync gunicorn worker, every request adds a {THROUGHPUT_TASK_MS} ms task "
          f"({THROUGHPUT_REQUESTS} requests, {CLIENTS} clients)",
          ["executor", "requests/s", "responses done s", "tasks done s", "requests handled",
           "tasks run"], thr)
    bar_plot("background_latency.png", f"Latency ratio with a {TASK_MS} ms after-response task",
             [f"{r[0]}: {r[1]}" for r in lat], [float(r[4]) for r in lat],  # type: ignore[arg-type]
             "p50 with task / p50 without (target <= 1.1)")


if __name__ == "__main__":
    main()
