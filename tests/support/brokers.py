"""Real brokers and real Celery workers for tests: redis-server, rabbitmq-server, ``celery worker``.

    from tests.support.brokers import CeleryWorker, RabbitMQServer, RedisServer

    with RedisServer(appendonly=True) as redis_srv:        # a free 127.0.0.1 port, a temp dir
        redis_srv.client().lpush("q", b"x")
        redis_srv.kill()                                   # SIGKILL
        redis_srv.restart()                                # same port, same data dir
    with RabbitMQServer() as rabbit:                       # its own node, epmd, ports and dirs
        kombu.Connection(rabbit.url)
    with CeleryWorker(rabbit.url, queue="q", concurrency=2) as worker:
        worker.kill_child()                                # SIGKILL one prefork child
        worker.kill()                                      # SIGKILL the whole process group

Everything listens on 127.0.0.1 only, on ports picked at run time, never the defaults (6379,
5672, 4369, 25672), so test runs side by side do not collide. Each server keeps its data,
configuration and log in its own temporary directory, removed by ``close()`` (the context
manager's exit). A missing ``redis-server`` or ``rabbitmq-server`` is installed with apt
(:func:`tests.support.debian.ensure_packages`); if that is impossible the error says why.

Start, stop and restart wait on a deadline for a real answer (PING, an AMQP handshake, the
worker's "ready" log line), never a bare sleep; a process that dies while starting raises
:class:`ProcessFailed` with the tail of its log.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from tests.support.debian import PackageInstallError, ensure_packages
from tests.support.process_server import wait_until

HOST = "127.0.0.1"
REPO_ROOT = Path(__file__).resolve().parents[2]
_DEFAULT_PORTS = frozenset({6379, 5672, 4369, 25672, 15672})


class ProcessFailed(RuntimeError):
    """A broker or worker process died or did not become ready in time."""


# --------------------------------------------------------------------------------------------
# small helpers


def free_port(host: str = HOST) -> int:
    """A TCP port that was free on ``host`` a moment ago (never one of the default ports)."""
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port = int(sock.getsockname()[1])
        if port not in _DEFAULT_PORTS:
            return port


def _tail(path: Path, limit: int = 6000) -> str:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return "(no log)"
    return text if len(text) <= limit else "...\n" + text[-limit:]


def _accepts(port: int, host: str = HOST) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _state(stat_path: str) -> bytes:
    try:
        with open(stat_path, "rb") as f:
            stat = f.read()
    except OSError:
        return b"X"
    return stat[stat.rindex(b")") + 2 :][:1]


def pid_alive(pid: int) -> bool:
    """True while any thread of ``pid`` still runs.

    A killed multi-threaded process (``beam.smp``) shows as a zombie leader while its other
    threads are still exiting, holding its sockets; and on this kind of machine PID 1 may
    never reap orphans, so "gone from /proc" would never come.
    """
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    return any(_state(f"/proc/{pid}/task/{tid}/stat") not in (b"Z", b"X") for tid in tasks)


def children_of(pid: int) -> list[int]:
    """The live direct children of ``pid`` (from /proc; no psutil needed)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        rest = stat[stat.rindex(b")") + 2 :].split()
        if int(rest[1]) == pid and rest[0] != b"Z":
            found.append(int(entry))
    return sorted(found)


def _stop_process(
    proc: subprocess.Popen[bytes], sig: int, timeout: float, *, group: bool = False
) -> int:
    """Send ``sig`` (to the group if asked), wait; SIGKILL the group after ``timeout``."""
    if proc.poll() is None:
        try:
            if group:
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            pass
    try:  # whatever the process left behind in its own session
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    return proc.wait()


# --------------------------------------------------------------------------------------------
# a process with a log file and a temporary directory


class _Managed:
    """Shared life cycle: a temp dir, one log file appended to across restarts."""

    name = "process"
    proc: subprocess.Popen[bytes] | None = None

    def __init__(self, data_dir: str | os.PathLike[str] | None, prefix: str) -> None:
        self._own_dir = data_dir is None
        self.data_dir = Path(data_dir or tempfile.mkdtemp(prefix=prefix))
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.data_dir / f"{self.name}.log"
        self.start_seconds: list[float] = []  # how long each start() took

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise RuntimeError(f"{self.name} was never started")
        return self.proc.pid

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def output(self) -> str:
        """Everything the process has logged so far (across restarts)."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def describe(self, what: str = "") -> str:
        return f"{self.name} {what}\n--- {self.log_path} ---\n{_tail(self.log_path)}"

    def _spawn(
        self, argv: Sequence[str], env: Mapping[str, str], cwd: Path
    ) -> subprocess.Popen[bytes]:
        with open(self.log_path, "ab") as log:
            log.write(f"\n=== {time.strftime('%H:%M:%S')} start: {' '.join(argv)}\n".encode())
            log.flush()
            return subprocess.Popen(
                list(argv), cwd=cwd, env=dict(env), stdin=subprocess.DEVNULL,
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
            )

    def start(self) -> Self:
        raise NotImplementedError

    def close(self) -> None:
        """Stop the process and remove the temp dir (when it was made here)."""
        raise NotImplementedError

    def _remove_own_dir(self) -> None:
        if self._own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def __enter__(self) -> Self:
        try:
            return self.start()
        except BaseException:
            self.close()
            raise

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _wait_ready(self, ready: Callable[[], bool], timeout: float) -> None:
        assert self.proc is not None
        started = time.monotonic()
        deadline = started + timeout
        while not ready():
            if self.proc.poll() is not None:
                raise ProcessFailed(self.describe(f"exited with {self.proc.returncode}"))
            if time.monotonic() > deadline:
                _stop_process(self.proc, signal.SIGKILL, 5, group=True)
                raise ProcessFailed(self.describe(f"was not ready after {timeout}s"))
            time.sleep(0.02)


# --------------------------------------------------------------------------------------------
# Redis


class RedisServer(_Managed):
    """A ``redis-server`` on a free 127.0.0.1 port, data in a temp dir.

    No persistence by default (``--save "" --appendonly no``). ``appendonly=True`` turns AOF
    on (``appendfsync="always"`` by default, so every acknowledged write survives SIGKILL);
    ``save=True`` keeps Redis' default RDB snapshots. ``restart()`` brings the server back on
    the same port with the same data dir.
    """

    name = "redis-server"

    def __init__(
        self,
        *,
        appendonly: bool = False,
        appendfsync: str = "always",
        save: bool = False,
        port: int | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        start_timeout: float = 15.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        super().__init__(data_dir, "sendoff-redis-")
        self.host = HOST
        self.port = port or free_port()
        self._fixed_port = port is not None
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.save = save
        self.start_timeout = start_timeout
        self.extra_args = list(extra_args)
        self._clients: list[Any] = []

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def argv(self) -> list[str]:
        binary = shutil.which("redis-server") or "/usr/bin/redis-server"
        argv = [
            binary, "--port", str(self.port), "--bind", self.host, "--dir", str(self.data_dir),
            "--daemonize", "no", "--logfile", "", "--unixsocket", "",
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
        ]
        if not self.save:
            argv += ["--save", ""]
        return argv + self.extra_args

    def start(self) -> Self:
        if self.running:
            return self
        if not shutil.which("redis-server"):
            ensure_packages("redis-server")
        for attempt in range(3):
            began = time.monotonic()
            self.proc = self._spawn(self.argv(), os.environ, self.data_dir)
            try:
                self._wait_ready(self._pings, self.start_timeout)
            except ProcessFailed:
                # another process took the port between free_port() and the bind: pick again
                port_taken = "Address already in use" in self.output()
                if self._fixed_port or self.start_seconds or not port_taken or attempt == 2:
                    raise
                self.port = free_port()
                continue
            self.start_seconds.append(time.monotonic() - began)
            return self
        raise AssertionError("unreachable")

    def _pings(self) -> bool:
        import redis

        client = redis.Redis(
            host=self.host, port=self.port, socket_timeout=1, socket_connect_timeout=1
        )
        try:
            return bool(client.ping())
        except (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError):
            return False
        finally:
            client.close()

    def client(self, **kwargs: Any) -> Any:
        """A ``redis.Redis`` for this server (closed by ``close()``)."""
        import redis

        kwargs.setdefault("socket_timeout", 10)
        kwargs.setdefault("socket_connect_timeout", 5)
        client = redis.Redis.from_url(self.url, **kwargs)
        self._clients.append(client)
        return client

    def flushall(self) -> None:
        client = self.client()
        client.flushall()
        client.close()

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM (Redis' clean shutdown: the AOF is flushed), wait; returns the exit code."""
        if self.proc is None:
            return None
        return _stop_process(self.proc, signal.SIGTERM, timeout)

    def kill(self) -> int | None:
        """SIGKILL, as in a crash; ``restart()`` afterwards."""
        if self.proc is None:
            return None
        return _stop_process(self.proc, signal.SIGKILL, 10)

    def restart(self) -> Self:
        """Stop (if still running) and start again on the same port with the same data."""
        self.stop()
        self.proc = None
        return self.start()

    def close(self) -> None:
        for client in self._clients:
            client.close()
        self._clients.clear()
        self.stop()
        self._remove_own_dir()


# --------------------------------------------------------------------------------------------
# RabbitMQ

_RABBITMQ_ROOTS = ("/usr/lib/rabbitmq/lib",)  # Debian; the generic tarball has the same layout


def rabbitmq_home() -> Path:
    """The installed ``rabbitmq_server-X.Y.Z`` directory (holds ``sbin/`` and ``plugins/``)."""
    candidates: list[Path] = []
    for root in _RABBITMQ_ROOTS:
        candidates += Path(root).glob("rabbitmq_server-*/sbin/rabbitmq-server")
    script = shutil.which("rabbitmq-server")
    if not candidates and script:
        real = Path(script).resolve()
        if real.parent.name == "sbin" and (real.parent.parent / "plugins").is_dir():
            candidates.append(real)
    if not candidates:
        raise PackageInstallError("rabbitmq-server is installed but its sbin/ was not found")

    def version(path: Path) -> tuple[int, ...]:
        found = re.findall(r"\d+", path.parent.parent.name)
        return tuple(int(n) for n in found)

    return max(candidates, key=version).parent.parent


def _app_dependencies(plugins_dir: Path) -> dict[str, tuple[str, list[str]]]:
    """``{app: (directory name, [applications it needs])}`` from each ``ebin/*.app``."""
    apps: dict[str, tuple[str, list[str]]] = {}
    for entry in plugins_dir.iterdir():
        name = entry.name.rsplit("-", 1)[0] if "-" in entry.name else entry.name
        app_file = entry / "ebin" / f"{name}.app"
        if not app_file.is_file():
            continue
        text = app_file.read_text(errors="replace")
        deps: list[str] = []
        for key in ("applications", "included_applications"):
            match = re.search(r"\{" + key + r",\s*\[([^\]]*)\]", text)
            if match:
                deps += [d.strip() for d in match.group(1).split(",") if d.strip()]
        apps[name] = (entry.name, deps)
    return apps


def _trimmed_home(source: Path, target: Path, plugins: Iterable[str]) -> Path:
    """A RabbitMQ home whose ``plugins/`` holds only what ``rabbit`` and ``plugins`` need.

    The server finds feature flags and upgrade steps by loading every module of every
    application in ``$RABBITMQ_HOME/plugins`` (``ERL_LIBS``); with 20 applications instead of
    the 70 Debian ships, a node starts in about half the time. The three start scripts are
    copied (the scripts locate ``plugins/`` relative to their own real path); the
    applications are symlinks.
    """
    apps = _app_dependencies(source / "plugins")
    needed: set[str] = set()
    todo = ["rabbit", *plugins]
    while todo:
        app = todo.pop()
        if app in needed or app not in apps:
            continue  # OTP applications (kernel, ssl, ...) live in the Erlang install
        needed.add(app)
        todo += apps[app][1]
    (target / "sbin").mkdir(parents=True, exist_ok=True)
    (target / "plugins").mkdir(exist_ok=True)
    for script in ("rabbitmq-server", "rabbitmq-env", "rabbitmq-defaults"):
        shutil.copy2(source / "sbin" / script, target / "sbin" / script)
    for app in needed:
        link = target / "plugins" / apps[app][0]
        if not link.exists():
            link.symlink_to(source / "plugins" / apps[app][0])
    return target


class RabbitMQServer(_Managed):
    """A ``rabbitmq-server`` node of its own, on free 127.0.0.1 ports, everything in a temp dir.

    Node ``sendoff-<random>@localhost``; ``RABBITMQ_NODE_PORT`` (AMQP),
    ``RABBITMQ_DIST_PORT`` (Erlang distribution, bound to 127.0.0.1) and ``ERL_EPMD_PORT``
    (an ``epmd`` this object starts and stops itself) are picked at run time. Mnesia, logs,
    config, enabled-plugins (none unless ``plugins=``), feature-flags and pid files live in
    ``data_dir``; ``HOME`` too, so the Erlang cookie is private. Runs as root: it starts the
    server script under ``rabbitmq_server-*/sbin`` directly, not Debian's
    ``/usr/sbin/rabbitmq-server`` wrapper, which would ``su rabbitmq``.

    ``start()`` returns once an AMQP handshake with guest/guest succeeds (py-amqp).
    ``stop()`` is SIGTERM (clean shutdown), ``kill()`` SIGKILL; ``restart()`` brings the same
    node back on the same ports with the same data.
    """

    name = "rabbitmq-server"

    def __init__(
        self,
        *,
        port: int | None = None,
        node_name: str | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        plugins: Sequence[str] = (),
        config: str = "",
        trim_plugins: bool = True,
        env: Mapping[str, str] | None = None,
        start_timeout: float = 90.0,
        stop_timeout: float = 30.0,
    ) -> None:
        super().__init__(data_dir, "sendoff-rabbitmq-")
        self.extra_env = dict(env or {})
        self.host = HOST
        self.port = port or free_port()
        self._fixed_port = port is not None
        self.dist_port = free_port()
        self.epmd_port = free_port()
        self.node_name = node_name or f"sendoff-{secrets.token_hex(4)}@localhost"
        self.plugins = list(plugins)
        self.config = config
        self.trim_plugins = trim_plugins
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.epmd: subprocess.Popen[bytes] | None = None
        self._script: Path | None = None

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@{self.host}:{self.port}//"

    def env(self) -> dict[str, str]:
        """The environment the server (and ``ctl()``) run with: this process' minus its
        ``RABBITMQ_*`` variables, plus the node's own settings, plus ``env=``."""
        d = self.data_dir
        return {
            **{k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")},
            "HOME": str(d),  # .erlang.cookie
            "RABBITMQ_CONF_ENV_FILE": str(d / "rabbitmq-env.conf"),  # not /etc/rabbitmq's
            "RABBITMQ_NODENAME": self.node_name,
            "RABBITMQ_NODE_IP_ADDRESS": self.host,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "ERL_EPMD_PORT": str(self.epmd_port),
            "ERL_EPMD_ADDRESS": self.host,
            "RABBITMQ_CONFIG_FILE": str(d / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(d / "advanced.config"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(d / "enabled_plugins"),
            "RABBITMQ_PLUGINS_EXPAND_DIR": str(d / "plugins-expand"),
            "RABBITMQ_MNESIA_BASE": str(d / "mnesia"),
            "RABBITMQ_LOG_BASE": str(d / "log"),
            "RABBITMQ_LOGS": "-",  # stdout, i.e. our log file
            "RABBITMQ_PID_FILE": str(d / "rabbitmq.pid"),
            "RABBITMQ_FEATURE_FLAGS_FILE": str(d / "feature_flags"),
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
            **self.extra_env,
        }

    def _prepare(self) -> None:
        if self._script is not None:
            return
        if not shutil.which("rabbitmq-server"):
            ensure_packages("rabbitmq-server")
        home = rabbitmq_home()
        if self.trim_plugins:
            home = _trimmed_home(home, self.data_dir / "home", self.plugins)
        self._script = home / "sbin" / "rabbitmq-server"
        d = self.data_dir
        (d / "rabbitmq-env.conf").write_text("# empty: everything comes from the environment\n")
        (d / "rabbitmq.conf").write_text(
            "loopback_users.guest = true\n"
            "disk_free_limit.absolute = 50MB\n" + self.config + "\n"
        )
        (d / "advanced.config").write_text("[].\n")
        (d / "enabled_plugins").write_text(f"[{','.join(self.plugins)}].\n")

    def _start_epmd(self) -> None:
        """Our own epmd on ``epmd_port``; the node registers there, not on 4369."""
        if self.epmd is not None and self.epmd.poll() is None:
            return
        first = self.epmd is None
        epmd = shutil.which("epmd") or "epmd"
        for attempt in range(3):
            with open(self.data_dir / "epmd.log", "ab") as log:
                # not -daemon: it stays our child, in its own session, and close() ends it
                self.epmd = subprocess.Popen(
                    [epmd, "-port", str(self.epmd_port), "-address", self.host],
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            deadline = time.monotonic() + 10
            while not _accepts(self.epmd_port):
                if self.epmd.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            else:
                return
            _stop_process(self.epmd, signal.SIGKILL, 5)
            if not first or attempt == 2:
                raise ProcessFailed(
                    f"epmd on port {self.epmd_port} did not start:\n"
                    f"{_tail(self.data_dir / 'epmd.log')}"
                )
            self.epmd_port = free_port()  # lost a race for the port: pick another

    def start(self) -> Self:
        if self.running:
            return self
        self._prepare()
        assert self._script is not None
        for attempt in range(3):
            self._start_epmd()
            began = time.monotonic()
            self.proc = self._spawn([str(self._script)], self.env(), self.data_dir)
            try:
                self._wait_ready(self._amqp_answers, self.start_timeout)
            except ProcessFailed:
                port_taken = "eaddrinuse" in self.output()
                if self._fixed_port or self.start_seconds or not port_taken or attempt == 2:
                    raise
                self.port, self.dist_port = free_port(), free_port()  # lost a race: again
                continue
            self.start_seconds.append(time.monotonic() - began)
            return self
        raise AssertionError("unreachable")

    def _amqp_answers(self) -> bool:
        import amqp

        if not _accepts(self.port):
            return False
        conn = amqp.Connection(
            host=f"{self.host}:{self.port}", userid="guest", password="guest",
            connect_timeout=2,
        )
        try:
            conn.connect()
        except (OSError, amqp.exceptions.AMQPError):
            return False
        conn.close()
        return True

    def connection(self, **kwargs: Any) -> Any:
        """A ``kombu.Connection`` to this broker (the caller closes it)."""
        import kombu

        return kombu.Connection(self.url, **kwargs)

    def ctl(self, *args: str, timeout: float = 60.0) -> str:
        """Run ``rabbitmqctl ARGS`` against this node; returns its stdout. Slow (~1-2 s)."""
        home = rabbitmq_home()  # the CLI needs escript/, which the trimmed home lacks
        ctl_port = free_port()
        env = {
            **self.env(),
            "RABBITMQ_CTL_DIST_PORT_MIN": str(ctl_port),
            "RABBITMQ_CTL_DIST_PORT_MAX": str(ctl_port),
            "RABBITMQ_CTL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }
        result = subprocess.run(
            [str(home / "sbin" / "rabbitmqctl"), "-n", self.node_name, *args],
            env=env, capture_output=True, text=True, timeout=timeout, check=False,
            cwd=self.data_dir,
        )
        if result.returncode != 0:
            raise RuntimeError(
                f"rabbitmqctl {' '.join(args)} exit {result.returncode}:\n"
                f"{result.stdout}\n{result.stderr}"
            )
        return result.stdout

    def stop(self, timeout: float | None = None) -> int | None:
        """SIGTERM: the start script has the node shut down cleanly (about a second) and
        exits 0; returns that exit code."""
        if self.proc is None:
            return None
        return _stop_process(self.proc, signal.SIGTERM, timeout or self.stop_timeout)

    def kill(self) -> int | None:
        """SIGKILL the node (as in a crash or OOM kill); ``restart()`` afterwards.

        The whole process group: the start script stays as a signal-forwarding parent of
        ``beam.smp``, and killing the script alone would leave the node running.
        """
        if self.proc is None:
            return None
        node = self.node_pid()
        code = _stop_process(self.proc, signal.SIGKILL, 10, group=True)
        if node is not None:
            wait_until(lambda: not pid_alive(node), timeout=10, what=f"beam.smp {node} to die")
        return code

    def node_pid(self) -> int | None:
        """The pid of the Erlang VM (``beam.smp``), from the node's pid file."""
        try:
            return int((self.data_dir / "rabbitmq.pid").read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def restart(self) -> Self:
        """Stop (if still running) and start the same node: same ports, same data."""
        self.stop()
        self.proc = None
        return self.start()

    def close(self) -> None:
        self.stop()
        if self.epmd is not None:
            _stop_process(self.epmd, signal.SIGTERM, 5)
        self._remove_own_dir()


# --------------------------------------------------------------------------------------------
# Celery workers

BROKER_ENV = "SENDOFF_TEST_BROKER"
CONF_ENV = "SENDOFF_TEST_CELERY_CONF"
DEFAULT_APP = "tests.support.celery_app"


class CeleryWorker(_Managed):
    """A real ``celery -A APP worker`` subprocess (prefork) consuming ``queue`` from a broker.

    The worker runs in a new session, so ``kill()`` can SIGKILL it with all its pool children
    at once. The broker URL reaches the app through ``$SENDOFF_TEST_BROKER``, ``conf`` (a
    dict of Celery settings, e.g. ``{"task_acks_late": True}``) through
    ``$SENDOFF_TEST_CELERY_CONF`` as JSON. ``start()`` returns when the worker has logged
    ``<nodename> ready.``; its log (level INFO) is ``log_path``, and its stdout/stderr
    (import errors, tracebacks before logging is set up) ``stdout_path``.
    """

    name = "celery-worker"

    def __init__(
        self,
        broker_url: str,
        *,
        queue: str = "celery",
        concurrency: int = 2,
        app: str = DEFAULT_APP,
        pool: str = "prefork",
        conf: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
        nodename: str | None = None,
        loglevel: str = "INFO",
        extra_args: Sequence[str] = (),
        data_dir: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] = REPO_ROOT,
        start_timeout: float = 60.0,
        stop_timeout: float = 30.0,
    ) -> None:
        super().__init__(data_dir, "sendoff-celery-")
        self.broker_url = broker_url
        self.queue = queue
        self.concurrency = concurrency
        self.app = app
        self.pool = pool
        self.conf = dict(conf or {})
        self.extra_env = dict(env or {})
        self.nodename = nodename or f"sendoff-{secrets.token_hex(3)}@localhost"
        self.loglevel = loglevel
        self.extra_args = list(extra_args)
        self.cwd = Path(cwd)
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self.stdout_path = self.data_dir / f"{self.name}.stdout"
        self._log_offset = 0
        self._launched = 0.0
        self._term_sent = False

    def argv(self) -> list[str]:
        return [
            sys.executable, "-m", "celery", "-A", self.app, "worker",
            "--pool", self.pool, "--concurrency", str(self.concurrency), "-Q", self.queue,
            "-n", self.nodename, "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", self.loglevel, "--logfile", str(self.log_path), *self.extra_args,
        ]

    def env(self) -> dict[str, str]:
        pythonpath = os.pathsep.join(
            p for p in (str(self.cwd), os.environ.get("PYTHONPATH", "")) if p
        )
        return {
            **os.environ, "PYTHONPATH": pythonpath, "PYTHONUNBUFFERED": "1",
            BROKER_ENV: self.broker_url, CONF_ENV: json.dumps(self.conf), **self.extra_env,
        }

    def output(self) -> str:
        parts = [super().output()]
        if self.stdout_path.exists():
            parts.append(self.stdout_path.read_text(errors="replace"))
        return "\n".join(p for p in parts if p)

    def describe(self, what: str = "") -> str:
        return (
            f"celery worker {self.nodename} {what}\n--- {self.log_path} ---\n"
            f"{_tail(self.log_path)}\n--- {self.stdout_path} ---\n{_tail(self.stdout_path)}"
        )

    def _log_since_start(self) -> str:
        if not self.log_path.exists():
            return ""
        with open(self.log_path, "rb") as f:
            f.seek(self._log_offset)
            return f.read().decode(errors="replace")

    def start(self) -> Self:
        """``launch()`` then ``wait_ready()``."""
        if self.running:
            return self
        return self.launch().wait_ready()

    def launch(self) -> CeleryWorker:
        """Start the process and return at once (start several, then ``wait_ready()`` each)."""
        if self.running:
            return self
        self._log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        self._launched = time.monotonic()
        self._term_sent = False
        with open(self.stdout_path, "ab") as out:
            self.proc = subprocess.Popen(
                self.argv(), cwd=self.cwd, env=self.env(), stdin=subprocess.DEVNULL,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )
        return self

    def wait_ready(self, timeout: float | None = None) -> CeleryWorker:
        """Wait until the worker logs ``<nodename> ready.`` (consuming); ProcessFailed if
        it exits or the deadline passes first."""
        ready = f"{self.nodename} ready."
        self._wait_ready(lambda: ready in self._log_since_start(), timeout or self.start_timeout)
        self.start_seconds.append(time.monotonic() - self._launched)
        return self

    def wait_for_log(self, text: str, timeout: float = 30.0) -> str:
        """Wait until ``text`` appears in the log written since the last start."""
        return wait_until(
            lambda: self._log_since_start() if text in self._log_since_start() else "",
            timeout=timeout, what=f"{text!r} in the log of {self.nodename}",
        )

    def child_pids(self) -> list[int]:
        """The live prefork pool processes."""
        return children_of(self.pid) if self.running else []

    def wait_for_children(self, count: int | None = None, timeout: float = 30.0) -> list[int]:
        """Wait until the pool has ``count`` (default: concurrency) live processes."""
        want = self.concurrency if count is None else count

        def complete() -> list[int]:
            pids = self.child_pids()
            return pids if len(pids) == want else []

        return wait_until(complete, timeout=timeout, what=f"{want} pool processes")

    def request_stop(self) -> None:
        """Send SIGTERM (warm shutdown) and return at once; ``stop()`` then waits.

        Stopping several workers: ``request_stop()`` each, then ``stop()`` each, so their
        shutdowns (~2.5 s each) overlap.
        """
        if self.proc is not None and self.proc.poll() is None and not self._term_sent:
            self.proc.send_signal(signal.SIGTERM)
            self._term_sent = True

    def stop(self, timeout: float | None = None) -> int | None:
        """Warm shutdown: SIGTERM, running tasks finish, wait; then SIGKILL what is left.

        Returns the exit code (0 after a clean warm shutdown).
        """
        if self.proc is None:
            return None
        self.request_stop()
        deadline = time.monotonic() + (timeout or self.stop_timeout)
        try:
            self.proc.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
        return _stop_process(self.proc, signal.SIGKILL, 10, group=True)

    def kill(self) -> int | None:
        """SIGKILL the main process and every pool child at once (its process group)."""
        if self.proc is None:
            return None
        pids = [self.proc.pid, *self.child_pids()]
        code = _stop_process(self.proc, signal.SIGKILL, 10, group=True)
        wait_until(
            lambda: not any(pid_alive(p) for p in pids), timeout=10,
            what=f"processes {pids} of {self.nodename} to die",
        )
        return code

    def kill_child(self, pid: int | None = None) -> int:
        """SIGKILL one prefork child (``pid``, or the first); returns the pid killed."""
        children = self.child_pids()
        if pid is None:
            if not children:
                raise RuntimeError(f"{self.nodename} has no pool process to kill")
            pid = children[0]
        elif pid not in children:
            raise ValueError(f"{pid} is not a pool process of {self.nodename}: {children}")
        os.kill(pid, signal.SIGKILL)
        wait_until(lambda: not pid_alive(pid), timeout=10, what=f"pool process {pid} to die")
        return pid

    def close(self) -> None:
        self.stop()
        self._remove_own_dir()


def launch_together(workers: Iterable[CeleryWorker]) -> list[CeleryWorker]:
    """Launch every worker first, then wait for each to be ready (they start side by side,
    not one after another); the workers, in order."""
    started = list(workers)
    for worker in started:
        worker.launch()
    for worker in started:
        worker.wait_ready()
    return started
