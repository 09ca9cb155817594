"""A loopback HTTP server that takes 100 ms to answer, in its own process.

The caller-cost rows measure how long ``fire()`` or ``ThreadPoolExecutor.submit`` keep the
caller while the server is slow. The server is tests/support/recording_server.py's asyncio +
httptools server, run in a child process so that it takes no GIL from the caller being
measured. ``GET /__count`` answers at once with how many other requests it has received.

    with SlowServer(delay=0.1) as srv:
        srv.url("/hook"); srv.count()

``python -m bench.slow_server DELAY`` prints the port and serves until stdin closes.
"""

from __future__ import annotations

import pathlib
import subprocess
import sys
import urllib.request

ROOT = pathlib.Path(__file__).resolve().parent.parent


class SlowServer:
    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.port = 0
        self.proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> SlowServer:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.slow_server", str(self.delay)], cwd=ROOT,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line.strip().isdigit():
            self.__exit__()
            raise RuntimeError(f"the slow server did not start: {line!r}")
        self.port = int(line)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is None:
            return
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def count(self) -> int:
        """Requests received so far (``/__count`` requests excluded)."""
        with urllib.request.urlopen(self.url("/__count"), timeout=10) as resp:
            return int(resp.read())


def main(delay: float) -> None:
    sys.path.insert(0, str(ROOT))
    from tests.support.recording_server import Recorded, RecordingServer, Reply

    received = [0]

    def handler(req: Recorded) -> Reply:
        if req.path == "/__count":
            return Reply(200, str(received[0]))
        received[0] += 1
        return Reply(200, b"ok", delay=delay)

    server = RecordingServer(handler)
    server.start()
    print(server.port, flush=True)
    try:
        sys.stdin.read()  # until the parent closes our stdin (or dies)
    finally:
        server.stop()


if __name__ == "__main__":
    main(float(sys.argv[1]) if len(sys.argv) > 1 else 0.1)
