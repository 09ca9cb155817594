"""The anchors sendoff's rows are read against, measured in the same run (DESIGN.md,
"Performance"; issue 10). Absolute figures differ several-fold between machines and from
minute to minute, so a sendoff figure means something only as a ratio to these.

Throughput anchors deliver ``n`` GET requests to ``url`` over 16 keep-alive connections and
return a :class:`Run`: (elapsed seconds, CPU seconds of this process — user+sys of every
thread, from ``resource.getrusage`` — and the count of complete responses):

- :func:`minimal_loop`: the pure-Python limit. One ``select.epoll``, 16 non-blocking
  keep-alive sockets, one request per connection at a time, a pre-rendered request, every
  response parsed by httptools and counted; nothing else. Over TLS (``https`` URL) the same
  with non-blocking ``ssl.SSLSocket`` s that verify the server against ``ca_file``.
- :func:`wrk`: ``wrk -t1 -c16`` (C, the machine's limit), time-bounded; its CPU is the wrk
  child's (``RUSAGE_CHILDREN``).
- :func:`pycurl_multi`: one CurlMulti, 16 easy handles re-added as they finish (libcurl keeps
  their connections alive).
- :func:`aiohttp_workers`: one ClientSession, ``TCPConnector(limit=16)``, 16 coroutines.

Caller-cost anchors return microsecond samples of one call each:

- :func:`threadpool_submit_cost`: ``ThreadPoolExecutor(16).submit`` of a blocking urllib3
  request, while the server takes 100 ms per answer (bench/slow_server.py);
- :func:`redis_lpush_cost`, :func:`celery_delay_cost`, :func:`sqlite_insert_cost`: the
  durable-enqueue anchors (redis-py ``LPUSH``, Celery ``.delay()`` on that Redis with no
  worker, one committed SQLite row in WAL mode).

Run one in its own interpreter with ``bench.isolated.run("bench.anchors:minimal_loop",
url=..., n=...)``, or here: ``python -m bench.anchors URL [N]`` runs the throughput anchors
once against a server you started.
"""

from __future__ import annotations

import gc
import os
import re
import resource
import select
import socket
import ssl
import subprocess
import sys
import time
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import httptools

from tests.support.debian import PackageInstallError, ensure_binary

CONNECTIONS = 16
PAYLOAD = {"event": "signup", "user": 42}
RECORD = b"x" * 300  # the ~300-byte queued request the durable anchors store


class Run(NamedTuple):
    """One throughput measurement."""

    elapsed: float  # seconds, first connect to last response
    cpu: float  # user+sys seconds of the measuring process (for wrk: of the wrk child)
    delivered: int  # complete responses
    failed: int = 0  # transfers that ended in an error (pycurl, aiohttp)
    sys: float = 0.0  # the kernel's part of ``cpu``


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class Meter:
    """Wall-clock seconds and this process's CPU seconds (all threads: user+sys, and sys
    alone) from construction (or :meth:`restart`) to :meth:`read`."""

    def __init__(self) -> None:
        self.restart()

    def restart(self) -> None:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        self.wall = time.perf_counter()
        self.cpu, self.sys = usage.ru_utime + usage.ru_stime, usage.ru_stime

    def read(self) -> tuple[float, float, float]:
        """(elapsed, cpu, sys) so far."""
        wall = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return (wall - self.wall, usage.ru_utime + usage.ru_stime - self.cpu,
                usage.ru_stime - self.sys)


def _target(url: str) -> tuple[str, int, bytes, bool]:
    """(host, port, pre-rendered GET request, tls) for ``url``."""
    parts = urlsplit(url)
    tls = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if tls else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    request = f"GET {path} HTTP/1.1\r\nHost: {parts.netloc}\r\n\r\n".encode("ascii")
    return host, port, request, tls


# -- the pure-Python limit ------------------------------------------------------------------
class _Responses:
    """httptools protocol object: counts complete responses, asks for no other callback."""

    __slots__ = ("complete",)

    def __init__(self) -> None:
        self.complete = 0

    def on_message_complete(self) -> None:
        self.complete += 1


def minimal_loop(url: str, n: int, connections: int = CONNECTIONS,
                 ca_file: str | None = None) -> Run:
    """Deliver ``n`` GETs with the least plain Python can do (see the module docstring)."""
    host, port, request, tls = _target(url)
    context = ssl.create_default_context(cafile=ca_file) if tls else None
    size = len(request)
    gc.collect()
    meter = Meter()
    poller = select.epoll()
    conns: dict[int, tuple[Any, Any, _Responses]] = {}
    sent = 0
    try:
        for _ in range(min(connections, n)):
            sock: Any = socket.create_connection((host, port))
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if context is not None:
                sock = context.wrap_socket(sock, server_hostname=host)  # handshake, blocking
            sock.setblocking(False)
            responses = _Responses()
            conns[sock.fileno()] = (sock, httptools.HttpResponseParser(responses), responses)
            poller.register(sock.fileno(), select.EPOLLIN)
            if sock.send(request) != size:
                raise RuntimeError("short send of a 40-byte request")
            sent += 1
        if tls:
            done = _drive_tls(poller, conns, request, n, sent)
        else:
            done = _drive(poller, conns, request, n, sent)
        elapsed, used, kernel = meter.read()
    finally:
        for sock, _, _ in conns.values():
            sock.close()
        poller.close()
    return Run(elapsed, used, done, 0, kernel)


def _drive(poller: select.epoll, conns: dict[int, Any], request: bytes, n: int,
           sent: int) -> int:
    # os.read/os.write on the sockets' descriptors: the same syscalls as sock.recv/send
    # without the socket object's timeout bookkeeping (about 5% less CPU per request)
    size = len(request)
    feeds = {fd: (parser.feed_data, responses) for fd, (_, parser, responses) in conns.items()}
    done = 0
    poll, read, write = poller.poll, os.read, os.write
    while done < n:
        for fd, _ in poll():
            feed, responses = feeds[fd]
            try:
                data = read(fd, 65536)
            except BlockingIOError:
                continue
            if not data:
                raise ConnectionError("the server closed a keep-alive connection")
            feed(data)
            got = responses.complete
            if got:
                responses.complete = 0
                done += got
                if sent < n:
                    if write(fd, request) != size:
                        raise RuntimeError("short send")
                    sent += 1
    return done


def _drive_tls(poller: select.epoll, conns: dict[int, Any], request: bytes, n: int,
               sent: int) -> int:
    size = len(request)
    done = 0
    poll = poller.poll
    want_read = ssl.SSLWantReadError
    while done < n:
        for fd, _ in poll():
            sock, parser, responses = conns[fd]
            try:
                data = sock.recv(65536)
            except want_read:  # only part of a TLS record has arrived
                continue
            if not data:
                raise ConnectionError("the server closed a keep-alive connection")
            pending = sock.pending()  # decrypted bytes epoll cannot see
            while pending:
                data += sock.recv(pending)
                pending = sock.pending()
            parser.feed_data(data)
            got = responses.complete
            if got:
                responses.complete = 0
                done += got
                if sent < n:
                    if sock.send(request) != size:
                        raise RuntimeError("short send")
                    sent += 1
    return done


# -- wrk ---------------------------------------------------------------------------------------
def wrk_binary() -> str | None:
    """wrk, installed from Debian when we are root and it is missing."""
    try:
        return ensure_binary("wrk", [("wrk",)])
    except PackageInstallError as exc:
        print(f"wrk is missing and could not be installed: {exc}", file=sys.stderr)
        return None


_UNITS = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_wrk(output: str) -> tuple[int, float, int]:
    """(requests completed, seconds, non-2xx/3xx + socket errors) from wrk's report."""
    found = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", output)
    if found is None:
        raise RuntimeError(f"no request count in wrk's output:\n{output}")
    count, seconds = int(found.group(1)), float(found.group(2)) * _UNITS[found.group(3)]
    errors = 0
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if bad:
        errors += int(bad.group(1))
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)",
                     output)
    if sock:
        errors += sum(int(g) for g in sock.groups())
    return count, seconds, errors


def wrk(url: str, seconds: float, connections: int = CONNECTIONS) -> Run:
    """``wrk -t1 -c16 -d<seconds>``: time-bounded, so ``delivered`` is what it managed."""
    binary = wrk_binary()
    if binary is None:
        raise RuntimeError("wrk is not installed and could not be installed")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        [binary, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", url],
        capture_output=True, text=True, timeout=seconds + 60, check=False,
    )
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if out.returncode != 0:
        raise RuntimeError(f"wrk failed ({out.returncode}): {out.stderr or out.stdout}")
    count, elapsed, errors = parse_wrk(out.stdout)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Run(elapsed, cpu, count, errors, after.ru_stime - before.ru_stime)


# -- pycurl --------------------------------------------------------------------------------------
def pycurl_multi(url: str, n: int, connections: int = CONNECTIONS,
                 ca_file: str | None = None) -> Run:
    """One CurlMulti with ``connections`` easy handles, each re-added when it finishes."""
    import pycurl

    multi = pycurl.CurlMulti()
    multi.setopt(pycurl.M_MAX_HOST_CONNECTIONS, connections)
    handles = []
    for _ in range(min(connections, n)):
        curl = pycurl.Curl()
        curl.setopt(pycurl.URL, url)
        curl.setopt(pycurl.WRITEFUNCTION, len)  # take the body, keep nothing
        curl.setopt(pycurl.NOSIGNAL, 1)
        if ca_file:
            curl.setopt(pycurl.CAINFO, ca_file)
        handles.append(curl)
    gc.collect()
    meter = Meter()
    started = done = failed = 0
    for curl in handles:
        multi.add_handle(curl)
        started += 1
    perform, info_read, add, remove = (multi.perform, multi.info_read, multi.add_handle,
                                       multi.remove_handle)
    call_again = pycurl.E_CALL_MULTI_PERFORM
    while done + failed < started:
        while perform()[0] == call_again:
            pass
        readded = False
        while True:
            queued, ok, bad = info_read()
            finished = ok + [entry[0] for entry in bad]
            done += len(ok)
            failed += len(bad)
            for curl in finished:
                remove(curl)
                if started < n:
                    add(curl)
                    started += 1
                    readded = True
            if not queued:
                break
        if not readded and done + failed < started:
            wait = multi.timeout()
            multi.select(wait / 1000 if wait >= 0 else 1.0)
    elapsed, used, kernel = meter.read()
    for curl in handles:
        curl.close()
    multi.close()
    return Run(elapsed, used, done, failed, kernel)


# -- aiohttp -------------------------------------------------------------------------------------
def aiohttp_workers(url: str, n: int, connections: int = CONNECTIONS,
                    ca_file: str | None = None) -> Run:
    """One ClientSession, TCPConnector(limit=16), 16 worker coroutines sharing ``n``."""
    import asyncio

    import aiohttp

    async def main() -> Run:
        tls: Any = ssl.create_default_context(cafile=ca_file) if ca_file else True
        async with aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=connections, ssl=tls)
        ) as session:
            left = n
            done = failed = 0

            async def worker() -> None:
                nonlocal left, done, failed
                while left > 0:
                    left -= 1
                    try:
                        async with session.get(url) as resp:
                            await resp.read()
                        done += 1
                    except aiohttp.ClientError:
                        failed += 1

            gc.collect()
            meter = Meter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed, used, kernel = meter.read()
            return Run(elapsed, used, done, failed, kernel)

    return asyncio.run(main())


# -- caller cost ---------------------------------------------------------------------------------
def threadpool_submit_cost(url: str, n: int, threads: int = CONNECTIONS) -> dict[str, Any]:
    """µs per ``ThreadPoolExecutor(16).submit(pool.request, "POST", url, json=...)``; the
    server takes 100 ms per answer, so the 16 threads are busy and submits queue up, as
    fires do. The pool's threads are started (and its connections opened) before timing;
    returns once every request has been answered."""
    from concurrent.futures import ThreadPoolExecutor, wait

    import urllib3

    pool = urllib3.PoolManager(maxsize=threads, block=True)
    executor = ThreadPoolExecutor(threads)
    wait([executor.submit(pool.request, "GET", url) for _ in range(threads)])
    gc.collect()
    samples = []
    clock = time.perf_counter_ns
    submit, request = executor.submit, pool.request
    for _ in range(n):
        start = clock()
        submit(request, "POST", url, json=PAYLOAD)
        samples.append((clock() - start) / 1000)
    executor.shutdown(wait=True)
    return {"samples": samples, "calls": n, "warmup": threads}


# -- durable enqueue -------------------------------------------------------------------------------
def redis_lpush_cost(port: int, n: int) -> dict[str, Any]:
    """µs per redis-py ``LPUSH`` of a 300-byte record to a local redis-server."""
    import redis

    client = redis.Redis(host="127.0.0.1", port=port)
    key = "sendoff-bench-lpush"
    for _ in range(50):
        client.lpush(key, RECORD)
    gc.collect()
    samples = []
    clock = time.perf_counter_ns
    lpush = client.lpush
    for _ in range(n):
        start = clock()
        lpush(key, RECORD)
        samples.append((clock() - start) / 1000)
    stored = int(client.llen(key))
    client.delete(key)
    client.close()
    return {"samples": samples, "calls": n, "stored": stored - 50}


def celery_delay_cost(port: int, n: int) -> dict[str, Any]:
    """µs per Celery ``.delay(...)`` of a ~300-byte request, broker = local Redis, no
    worker (only the caller's side is measured; the messages are left in the queue list,
    counted, then deleted)."""
    import redis

    from bench.celery_app import make_app

    app, task = make_app(f"redis://127.0.0.1:{port}/0")
    queue = app.conf.task_default_queue
    record = RECORD.decode()
    for _ in range(20):
        task.delay("POST", "http://127.0.0.1/hook", record)
    gc.collect()
    samples = []
    clock = time.perf_counter_ns
    delay = task.delay
    for _ in range(n):
        start = clock()
        delay("POST", "http://127.0.0.1/hook", record)
        samples.append((clock() - start) / 1000)
    check = redis.Redis(host="127.0.0.1", port=port)
    stored = int(check.llen(queue))
    check.delete(queue)
    check.close()
    return {"samples": samples, "calls": n, "stored": stored - 20}


def sqlite_insert_cost(path: str, n: int) -> dict[str, Any]:
    """µs per committed SQLite insert of one row with a 300-byte blob (WAL,
    ``synchronous=NORMAL``: the commit reaches the WAL file without an fsync)."""
    import sqlite3

    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute("CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY, created REAL,"
                 " payload BLOB NOT NULL)")
    conn.commit()
    sql = "INSERT INTO outbox (created, payload) VALUES (?, ?)"
    for _ in range(50):
        conn.execute(sql, (time.time(), RECORD))
        conn.commit()
    gc.collect()
    samples = []
    clock = time.perf_counter_ns
    execute, commit, now = conn.execute, conn.commit, time.time
    for _ in range(n):
        start = clock()
        execute(sql, (now(), RECORD))
        commit()
        samples.append((clock() - start) / 1000)
    stored = conn.execute("SELECT count(*) FROM outbox").fetchone()[0]
    conn.close()
    return {"samples": samples, "calls": n, "stored": stored - 50}


if __name__ == "__main__":  # python -m bench.anchors URL [N] [CA_FILE]
    target = sys.argv[1]
    count = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    ca = sys.argv[3] if len(sys.argv) > 3 else None
    for name, run in (("minimal loop", minimal_loop), ("pycurl", pycurl_multi),
                      ("aiohttp", aiohttp_workers)):
        result = run(target, count, ca_file=ca)
        print(f"{name}: {result.delivered / result.elapsed:,.0f}/s, "
              f"{result.cpu / result.delivered * 1e5:.2f} CPU s per 100k, {result}")
    result = wrk(target, 2)
    print(f"wrk: {result.delivered / result.elapsed:,.0f}/s {result}")
