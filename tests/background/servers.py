"""Real servers (gunicorn sync and gthread, uvicorn) serving the fixture apps in ``apps/``,
and the helpers the tests use to talk to them."""

from __future__ import annotations

import http.client
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.process_server import ProcessServer, wait_until

APPS = Path(__file__).resolve().parent / "apps"
_ids = itertools.count()


def command(server: str, app: str, *extra: str) -> list[str]:
    """The command line that serves ``app`` ("module:attribute") with ``server``."""
    if server == "uvicorn":
        return [sys.executable, "-m", "uvicorn", "--host", "{host}", "--port", "{port}",
                "--timeout-graceful-shutdown", "3", *extra, app]
    worker = {"gunicorn-sync": ["-k", "sync", "-w", "2"],
              "gunicorn-sync-1": ["-k", "sync", "-w", "1"],
              "gunicorn-gthread": ["-k", "gthread", "-w", "1", "--threads", "4"]}[server]
    return [sys.executable, "-m", "gunicorn", *worker, "-b", "{host}:{port}",
            "--graceful-timeout", "3", "--no-control-socket", *extra, app]


@dataclass(frozen=True)
class Target:
    """A server and an app to run the same tests against."""

    name: str
    server: str
    app: str
    on_error: str  # what the app's BackgroundMiddleware was given
    prefix: str = ""  # where the app mounts the test endpoints


TARGETS = [
    Target("gunicorn-sync", "gunicorn-sync", "plain_wsgi:application", "continue"),
    Target("gunicorn-gthread", "gunicorn-gthread", "plain_wsgi:application", "continue"),
    Target("uvicorn", "uvicorn", "plain_asgi:application", "continue"),
    Target("uvicorn-thread", "uvicorn", "plain_asgi:threaded", "continue"),
    Target("django-wsgi", "gunicorn-gthread", "mysite.wsgi:application", "stop"),
    Target("django-asgi", "uvicorn", "mysite.asgi:application", "stop", "/async"),
    Target("django-asgi-continue", "uvicorn", "mysite.asgi_continue:application", "continue",
           "/async"),
    Target("flask", "gunicorn-gthread", "flask_app:app", "stop"),
    Target("fastapi", "uvicorn", "fastapi_app:app", "stop"),
    Target("starlette", "uvicorn", "starlette_app:app", "stop"),
]


class Served:
    """A running fixture server and the directory its tasks write into."""

    def __init__(self, server: ProcessServer, files: Path, target: Target | None = None):
        self.server = server
        self.files = files
        self.target = target
        self.prefix = target.prefix if target else ""

    def connection(self) -> http.client.HTTPConnection:
        # A generous bound: a response that waited for its own tasks would hit it.
        return http.client.HTTPConnection(self.server.host, self.server.port, timeout=15)

    def request(self, path: str, method: str = "GET", *, prefixed: bool = True,
                conn: http.client.HTTPConnection | None = None) -> tuple[int, bytes]:
        """Send one request (to the test endpoints' prefix) and read the whole body."""
        own = conn is None
        conn = conn or self.connection()
        try:
            conn.request(method, self.prefix + path if prefixed else path)
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            if own:
                conn.close()

    def path(self, name: str) -> Path:
        return self.files / name

    def wait_file(self, name: str) -> str:
        """Wait (with a deadline) until a task has written ``name``; return its text."""
        path = self.path(name)
        wait_until(path.exists, what=f"{name} written by a background task")
        return path.read_text()  # complete: the apps write files by renaming them in place

    def release(self, rid: str) -> None:
        self.path(f"release-{rid}").touch()

    def output(self) -> str:
        return self.server.output()


def new_id() -> str:
    return f"r{next(_ids)}"


def start(server: str, app: str, files: Path, *extra: str,
          env: dict[str, str] | None = None) -> ProcessServer:
    return ProcessServer(
        command(server, app, *extra),
        cwd=APPS,
        env={"SENDOFF_TEST_DIR": str(files), "PYTHONPATH": str(APPS), **(env or {})},
        name=server,
    ).start()
