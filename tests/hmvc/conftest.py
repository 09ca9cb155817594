"""Fixtures of the HMVC tests: the sample App, and real servers in subprocesses."""

from __future__ import annotations

import contextlib
import pathlib
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest

from sendoff import Internal
from sendoff.hmvc import App

from . import sample_app

ROOT = pathlib.Path(__file__).resolve().parents[2]
BIN = pathlib.Path(sys.executable).parent


@pytest.fixture
def app() -> App:
    return sample_app.app


@pytest.fixture
def client(app: App) -> Internal:
    return Internal(app)


@contextlib.contextmanager
def process_server(
    command: Callable[[int], list[str]], tmp_path: pathlib.Path
) -> Iterator[str]:
    """Run ``command(fd)`` serving on a listening socket made here and passed as ``fd``;
    yield its base URL. Connections wait in the socket's backlog until the server
    accepts them, so no readiness polling is needed."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port = listener.getsockname()[1]
    log_path = tmp_path / "server.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(
            command(listener.fileno()),
            cwd=ROOT,
            pass_fds=(listener.fileno(),),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    listener.close()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    # captured by pytest, shown when a test fails
    sys.stderr.write(log_path.read_text(errors="replace"))


def gunicorn_command(target: str) -> Callable[[int], list[str]]:
    return lambda fd: [
        str(BIN / "gunicorn"), "--bind", f"fd://{fd}", "--workers", "1",
        "--worker-class", "gthread", "--threads", "4", "--log-level", "warning", target,
    ]


def uvicorn_command(target: str) -> Callable[[int], list[str]]:
    return lambda fd: [
        str(BIN / "uvicorn"), "--fd", str(fd), "--log-level", "warning", "--no-access-log",
        target,
    ]


@pytest.fixture
def gunicorn_url(tmp_path: pathlib.Path) -> Iterator[str]:
    with process_server(gunicorn_command("tests.hmvc.sample_app:app"), tmp_path) as url:
        yield url


@pytest.fixture
def uvicorn_url(tmp_path: pathlib.Path) -> Iterator[str]:
    with process_server(uvicorn_command("tests.hmvc.sample_app:app.asgi"), tmp_path) as url:
        yield url
