"""Run a real server command as a subprocess on a free 127.0.0.1 port, for tests.

    from tests.support.process_server import ProcessServer

    with ProcessServer([sys.executable, "-m", "uvicorn", "app:app", "--port", "{port}"],
                       cwd=apps_dir) as server:
        urllib.request.urlopen(server.url + "/")
        server.wait_for_output("Application startup complete")

``{host}`` and ``{port}`` in the command are filled in. The server's stdout and stderr go
to one file (``server.output()``), so a chatty server never blocks on a full pipe. Start
polls until the port accepts a connection, with a deadline; if the process dies first or
the deadline passes, the error shows its output. ``stop()`` sends SIGTERM, then SIGKILL to
the whole process group if it has not exited in time.

Add ``from tests.support.process_server import pytest_runtest_makereport  # noqa: F401`` to
a conftest to have the output of every server still running attached to failing tests.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

T = TypeVar("T")

_running: list[ProcessServer] = []


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that was free on ``host`` a moment ago."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def wait_until(
    check: Callable[[], T], *, timeout: float = 30.0, interval: float = 0.01, what: str = ""
) -> T:
    """Call ``check`` until it returns something truthy; TimeoutError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {timeout}s waiting for {what or check}")
        time.sleep(interval)


class ProcessServer:
    """One server process; use as a context manager or call start() and stop()."""

    def __init__(
        self,
        argv: Sequence[str],
        *,
        cwd: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        host: str = "127.0.0.1",
        port: int | None = None,
        start_timeout: float = 30.0,
        stop_timeout: float = 10.0,
        name: str | None = None,
    ) -> None:
        self.host = host
        self.port = port or free_port(host)
        self.argv = [arg.format(host=host, port=self.port) for arg in argv]
        self.cwd = cwd
        self.env = {**os.environ, **(env or {})}
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.name = name or Path(self.argv[0]).name
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = Path(tempfile.mkstemp(prefix="server-", suffix=".log")[1])

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def output(self) -> str:
        """Everything the server has written to stdout and stderr so far."""
        return self._log.read_text(errors="replace")

    def wait_for_output(self, text: str, timeout: float = 30.0) -> str:
        """Wait until ``text`` appears in the output; return the output."""
        return wait_until(
            lambda: self.output() if text in self.output() else "",
            timeout=timeout,
            what=f"{text!r} in the output of {self.name}",
        )

    def start(self) -> ProcessServer:
        with open(self._log, "wb") as log:
            self.proc = subprocess.Popen(
                self.argv,
                cwd=self.cwd,
                env=self.env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        _running.append(self)
        deadline = time.monotonic() + self.start_timeout
        while not self._accepts():
            if self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(self._describe(f"exited with {self.proc.returncode}"))
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(self._describe(f"did not accept in {self.start_timeout}s"))
            time.sleep(0.02)
        return self

    def stop(self) -> int | None:
        """SIGTERM, wait, then SIGKILL the process group; returns the exit code."""
        if self in _running:
            _running.remove(self)
        proc = self.proc
        if proc is None:
            return None
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(self.stop_timeout)
            except subprocess.TimeoutExpired:
                pass
        try:  # workers or task threads left behind by a killed master
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        return proc.wait()

    def _accepts(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False

    def _describe(self, what: str) -> str:
        return f"{self.name} {what}: {' '.join(self.argv)}\n--- output ---\n{self.output()}"

    def __enter__(self) -> ProcessServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[Any]) -> Generator[None]:
    """Attach the output of every running server to the report of a failing test."""
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for server in _running:
            report.sections.append((f"output of {server.name} on {server.url}", server.output()))
