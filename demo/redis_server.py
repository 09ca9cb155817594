"""A throwaway redis-server on a free loopback port (installed from Debian if missing).

``with RedisServer() as srv: srv.port`` starts ``redis-server`` from a temp directory with
persistence off (no RDB snapshots, no AOF: LPUSH returns once the list is changed in
memory, Redis's default trade-off), waits until it answers PING, and stops it. The demo
runs it from here and the benchmarks as ``demo.redis_server`` (the tests have their own,
with kill and restart, in tests/support/brokers.py).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import socket
import subprocess
import tempfile
import time

#: where Debian puts it, for a PATH without the sbin directories
PLACES = ("/usr/bin", "/usr/sbin", "/usr/local/bin")


def find_redis() -> str | None:
    """The ``redis-server`` on PATH or in :data:`PLACES`; None if there is none."""
    return shutil.which("redis-server") or shutil.which("redis-server", path=":".join(PLACES))


def redis_binary() -> str | None:
    """:func:`find_redis`; if there is none and this process is root on a system with
    apt-get, install Debian's ``redis-server`` quietly first (no recommends, and no
    system-wide server started on port 6379). None if that is impossible or fails."""
    found = find_redis()
    if found or os.geteuid() != 0 or not shutil.which("apt-get"):
        return found
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    policy = pathlib.Path("/usr/sbin/policy-rc.d")
    ours = not policy.exists()
    try:
        if ours:  # deny every service start while the package installs
            policy.write_text("#!/bin/sh\nexit 101\n")
            policy.chmod(0o755)
        for cmd in (["apt-get", "update", "-qq"],
                    ["apt-get", "install", "-y", "-qq", "--no-install-recommends",
                     "redis-server"]):
            subprocess.run(cmd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=300, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    finally:
        if ours:
            policy.unlink(missing_ok=True)
    return find_redis()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    def __init__(self, binary: str | None = None) -> None:
        binary = binary or redis_binary()
        if binary is None:
            raise RuntimeError("redis-server is not installed and could not be installed")
        self.binary = binary
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sendoff-redis-"))
        self.port = _free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> RedisServer:
        self.proc = subprocess.Popen(
            [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir",
             str(self.dir), "--save", "", "--appendonly", "no", "--daemonize", "no",
             "--logfile", str(self.dir / "redis.log")],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            if self.proc.poll() is not None or time.monotonic() > deadline:
                log = self.dir / "redis.log"
                text = log.read_text() if log.exists() else ""
                self.__exit__()
                raise RuntimeError(f"redis-server did not start:\n{text[-2000:]}")
            time.sleep(0.05)

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            self.proc.terminate()  # SIGTERM: redis-server shuts down (nothing to save)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None
        shutil.rmtree(self.dir, ignore_errors=True)

    def url(self, db: int = 0) -> str:
        return f"redis://127.0.0.1:{self.port}/{db}"
