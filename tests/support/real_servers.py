"""Real HTTP servers on 127.0.0.1 for tests, each echoing a request id and recording it.

    from tests.support.real_servers import SERVERS, start_server

    with start_server("nginx") as srv:    # installs nginx if missing, free port, waits for it
        srv.url("/chunked/x")             # "http://127.0.0.1:PORT/chunked/x"
        ...                               # send requests with "X-Request-Id: <id>"
        srv.wait_for_ids(ids)             # Counter id -> times received, once all are there

``SERVERS`` names eight servers: ``nginx``, ``apache`` (Apache httpd, mpm_event),
``lighttpd``, ``gunicorn`` (sync worker, WSGI app), ``uvicorn`` (httptools, ASGI app),
``hypercorn`` (h11, the same ASGI app), ``node`` (Node.js ``http``) and ``stdlib``
(``http.server.ThreadingHTTPServer``). Each runs as its own process (group) from a
fresh temp directory, with its own config, on a port picked free at start.

The protocol every server follows
---------------------------------
* The response to a request carrying ``X-Request-Id: <id>`` carries the header
  ``X-Request-Id: <id>`` and (except to HEAD) the body ``id=<id>\\n``. Without the
  header the id is ``-``. Use ids made of ``[A-Za-z0-9._~-]`` (:func:`new_id`): the C
  servers escape anything else in their logs.
* The framing is chosen by the first path segment: ``/len/...`` Content-Length,
  ``/chunked/...`` ``Transfer-Encoding: chunked``, ``/close/...`` no length, no chunks,
  the connection closed after the body. Any other path is answered like ``/len/``.
  ``srv.supports`` is the subset of ``FRAMINGS`` the server really produces; a path of a
  framing it does not support still gets a 200, framed as the server can (see
  ``srv.notes``), so tests skip only those combinations.
* GET, POST, PUT, DELETE and HEAD all get ``200``. A request body (1 MB is fine) is read
  in full and dropped before the answer.
* HTTP/1.1 keep-alive is on with a 75 s idle timeout (none on stdlib) and a per-connection
  request limit no test reaches (lighttpd 65,535, nginx 1,000,000, the others none),
  except on gunicorn's sync worker, which closes after every answer
  (``srv.keepalive`` is False). Pipelined requests are answered in order
  (``srv.pipelining``), except on gunicorn sync: it answers the first and closes.

Recording
---------
Every request is one line ``<METHOD> <id>`` in ``srv.log``: the access log of nginx,
Apache and lighttpd (custom format ``%m %{X-Request-Id}i``, written right after the
answer), or a line the Python and Node apps append *before* answering. Read it with
``srv.records()`` (ordered :class:`Record` tuples), ``srv.received()`` (``Counter`` id ->
count), ``srv.received_methods()`` (``Counter`` of ``Record``); ``srv.count()`` is a mark
to pass as ``since=`` to look only at later requests. ``srv.wait_for(n)`` and
``srv.wait_for_ids(ids)`` poll with a deadline (an access log line lands a moment after
the client has its answer). The readiness probe that :func:`start_server` sends is not
counted.

Per server (``srv.notes`` says the same)
-----------------------------------------
nginx
    ``return 200 "id=$http_x_request_id\\n"`` + ``add_header``; SSI switched on for
    ``/chunked/`` and ``/close/`` (the SSI filter drops the Content-Length, so nginx
    chunks), and ``chunked_transfer_encoding off`` for ``/close/`` (close-delimited,
    ``Connection: close``). One process (``master_process off``). The request body is
    read and discarded by nginx itself. HEAD to ``/close/`` keeps the connection.
apache
    ``mod_lua`` handler (``apps/echo_apache.lua``): explicit Content-Length,
    ``r:flush()`` for chunks, and the ``downgrade-1.0`` env for ``/close/`` (Apache then
    answers as to HTTP/1.0: status line still ``HTTP/1.1``, ``Connection: close``, no
    length). mpm_event, one child with 25 threads, ``-D FOREGROUND``; run as root the
    child drops to ``www-data``. HEAD to ``/close/`` closes the connection too.
lighttpd
    ``mod_magnet`` (``apps/echo_lighttpd.lua``) for everything but ``/chunked/``: always
    Content-Length. ``/chunked/`` is a bash CGI (``apps/echo_lighttpd_chunked.sh``) that
    pauses :data:`LIGHTTPD_CGI_DELAY` between headers and body, so lighttpd streams and
    chunks it; each costs a fork and that pause (use concurrency, or ``/len/``, for bulk).
    No close-delimited answer to HTTP/1.1 is possible (``/close/`` gets Content-Length).
    The access log goes through a pipe (``|cat``) because lighttpd buffers a log file
    for up to 4 s.
gunicorn
    ``-k sync -w 2``, ``apps/echo_wsgi.py``. Closes the connection after every answer
    (``Connection: close``), so no keep-alive and no pipelining: of pipelined requests it
    answers the first only, then closes (after draining, so no reset). ``/chunked/``
    is chunked; ``/close/`` is chunked too (gunicorn chunks every HTTP/1.1 answer without
    length and ignores an app's ``Connection`` header).
uvicorn
    ``--http httptools``, ``apps/echo_asgi.py``. ``/close/`` sends ``connection: close``:
    uvicorn chunks the body, then closes (no close-delimited answer to HTTP/1.1).
hypercorn
    h11, same app and the same ``/close/`` behaviour as uvicorn.
node
    ``apps/echo_node.js``: every framing, two chunks for ``/chunked/``; ``/close/``
    removes Content-Length and Transfer-Encoding (node then writes a close-delimited
    body) and sends ``Connection: close``.
stdlib
    ``apps/echo_stdlib.py``: every framing, written by hand; HTTP/1.0 requests to
    ``/chunked/`` are answered close-delimited.

HEAD and HTTP/1.0 (observed, Debian 12: nginx 1.22, Apache 2.4, lighttpd 1.4.69,
gunicorn 27, uvicorn 0.54, hypercorn 0.18, node 20)
    HEAD gets the GET's headers without a body: the GET's Content-Length on ``/len/``
    everywhere; on ``/chunked/`` hypercorn and stdlib also say ``Transfer-Encoding:
    chunked``, the others give no length at all. HEAD to ``/close/`` closes the
    connection except on nginx.
    HTTP/1.0 requests are answered without chunks and closed, except: uvicorn answers
    ``/chunked/`` and ``/close/`` *chunked* even to HTTP/1.0 (a uvicorn bug); with
    ``Connection: keep-alive`` nginx, Apache, lighttpd, node and stdlib keep a ``/len/``
    connection open (stdlib without saying so in a header), gunicorn, uvicorn and
    hypercorn close. lighttpd and gunicorn answer with an ``HTTP/1.0`` status line, the
    others ``HTTP/1.1``; hypercorn's status line has an empty reason phrase.

Missing software is installed on first use (:func:`ensure_debian_packages` for the C
servers and Node.js, as root with apt-get; pip for gunicorn/uvicorn/hypercorn, which
pyproject's ``test`` extra already lists); when that is impossible :func:`start_server`
raises :class:`ServerUnavailable`. The packages' system services are not started.
"""

from __future__ import annotations

import collections
import contextlib
import http.client
import importlib.util
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from tests.support import debian
from tests.support.process_server import ProcessServer, free_port

APPS = Path(__file__).resolve().parent / "apps"

SERVERS = ("nginx", "apache", "lighttpd", "gunicorn", "uvicorn", "hypercorn", "node", "stdlib")
FRAMINGS = ("len", "chunked", "close")
METHODS = ("GET", "POST", "PUT", "DELETE", "HEAD")

#: The id of the readiness probe; never counted by ``records()``.
PROBE_ID = "real-servers-probe"
#: Seconds lighttpd's ``/chunked/`` CGI waits between its headers and its body.
LIGHTTPD_CGI_DELAY = 0.05

APACHE_MODULES = Path("/usr/lib/apache2/modules")
LIGHTTPD_MODULES = Path("/usr/lib/lighttpd")


class ServerUnavailable(RuntimeError):
    """The server's software is missing and could not be installed."""


class Record(NamedTuple):
    """One request as the server recorded it."""

    method: str
    id: str


def new_id(prefix: str = "r") -> str:
    """A fresh request id that every server logs verbatim."""
    return f"{prefix}-{uuid.uuid4().hex}"


# --------------------------------------------------------------------------- installing

def ensure_debian_packages(*names: str) -> None:
    """:func:`tests.support.debian.ensure_packages`, failing with :class:`ServerUnavailable`."""
    try:
        debian.ensure_packages(*names)
    except debian.PackageInstallError as exc:
        raise ServerUnavailable(str(exc)) from exc


def ensure_python_packages(*requirements: str) -> None:
    """pip-install (into this interpreter) those requirements whose module is missing.

    ``requirements`` are pip specs whose distribution name is the module name
    (``"hypercorn>=0.17"``); the test extra normally has them all.
    """
    missing = [
        spec for spec in requirements
        if importlib.util.find_spec(_requirement_name(spec)) is None
    ]
    if not missing:
        return
    cmd = [sys.executable, "-m", "pip", "install", "-q", *missing]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    importlib.invalidate_caches()
    still = [spec for spec in missing if importlib.util.find_spec(_requirement_name(spec)) is None]
    if done.returncode != 0 or still:
        raise ServerUnavailable(
            f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stderr.strip()[-2000:]}"
        )


def _requirement_name(spec: str) -> str:
    for i, char in enumerate(spec):
        if char in "<>=!~[; ":
            return spec[:i]
    return spec


def _ensure_binary(
    name: str, alternatives: Iterable[tuple[str, ...]], needs: Iterable[Path] = ()
) -> str:
    """:func:`tests.support.debian.ensure_binary`, failing with :class:`ServerUnavailable`."""
    try:
        return debian.ensure_binary(name, alternatives, needs)
    except debian.PackageInstallError as exc:
        raise ServerUnavailable(str(exc)) from exc


# ------------------------------------------------------------------------ the servers


@dataclass(frozen=True)
class Profile:
    """What a server can do; see the module docstring."""

    supports: frozenset[str]
    keepalive: bool
    pipelining: bool
    notes: str


PROFILES: dict[str, Profile] = {
    "nginx": Profile(
        frozenset(FRAMINGS), True, True,
        "return 200 + add_header; SSI clears the length so /chunked/ is chunked; "
        "/close/ adds chunked_transfer_encoding off (close-delimited, Connection: close). "
        "HEAD to /close/ keeps the connection.",
    ),
    "apache": Profile(
        frozenset(FRAMINGS), True, True,
        "mod_lua handler, mpm_event one child; /chunked/ via r:flush(), /close/ via "
        "downgrade-1.0 (close-delimited, Connection: close, status line HTTP/1.1); "
        "HEAD to /close/ closes too.",
    ),
    "lighttpd": Profile(
        frozenset({"len", "chunked"}), True, True,
        "mod_magnet answers with Content-Length; /chunked/ is a bash CGI pausing "
        f"{LIGHTTPD_CGI_DELAY}s so lighttpd streams it chunked (slow: a fork + the pause "
        "per request); no close-delimited answers to HTTP/1.1: /close/ gets Content-Length.",
    ),
    "gunicorn": Profile(
        frozenset({"len", "chunked"}), False, False,
        "sync worker: Connection: close on every answer, so no keep-alive; of pipelined "
        "requests only the first is answered. No close-delimited answers to HTTP/1.1: "
        "/close/ is chunked.",
    ),
    "uvicorn": Profile(
        frozenset({"len", "chunked"}), True, True,
        "httptools; no close-delimited answers to HTTP/1.1: /close/ is chunked, then the "
        "connection is closed (the app sends connection: close). Answers chunked even "
        "to HTTP/1.0 requests.",
    ),
    "hypercorn": Profile(
        frozenset({"len", "chunked"}), True, True,
        "h11; no close-delimited answers to HTTP/1.1: /close/ is chunked, then the "
        "connection is closed (the app sends connection: close). Empty reason phrase.",
    ),
    "node": Profile(frozenset(FRAMINGS), True, True, "every framing; /chunked/ has two chunks."),
    "stdlib": Profile(
        frozenset(FRAMINGS), True, True,
        "every framing, written by hand; /chunked/ has two chunks; HTTP/1.0 requests to "
        "/chunked/ get a close-delimited answer.",
    ),
}


@dataclass
class _Launch:
    argv: list[str]
    cwd: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    error_logs: list[Path] = field(default_factory=list)
    stop_timeout: float = 5.0


NGINX_CONF = """\
worker_processes 1;
master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    log_format echo '$request_method $http_x_request_id';
    access_log {log} echo;
    client_body_temp_path {dir}/client_body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    client_max_body_size 0;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    default_type text/plain;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        add_header X-Request-Id $http_x_request_id always;
        location / {{ return 200 "id=$http_x_request_id\\n"; }}
        location /chunked/ {{
            ssi on;
            ssi_types *;
            return 200 "id=$http_x_request_id\\n";
        }}
        location /close/ {{
            ssi on;
            ssi_types *;
            chunked_transfer_encoding off;
            return 200 "id=$http_x_request_id\\n";
        }}
    }}
}}
"""


def _nginx(directory: Path, port: int, log: Path) -> _Launch:
    binary = _ensure_binary("nginx", [("nginx-light",), ("nginx",)])
    conf = directory / "nginx.conf"
    conf.write_text(NGINX_CONF.format(dir=directory, port=port, log=log))
    error_log = directory / "error.log"
    return _Launch([binary, "-c", str(conf), "-p", str(directory), "-e", str(error_log)],
                   error_logs=[error_log])


APACHE_CONF = """\
ServerRoot "{dir}"
ServerName 127.0.0.1
Listen 127.0.0.1:{port}
PidFile {dir}/httpd.pid
DefaultRuntimeDir {dir}
DocumentRoot {dir}
ErrorLog {dir}/error.log
LogLevel warn
LoadModule mpm_event_module {modules}/mod_mpm_event.so
LoadModule authz_core_module {modules}/mod_authz_core.so
LoadModule lua_module {modules}/mod_lua.so
{user}
StartServers 1
ServerLimit 1
ThreadLimit 25
ThreadsPerChild 25
MaxRequestWorkers 25
MinSpareThreads 1
MaxSpareThreads 25
KeepAlive On
MaxKeepAliveRequests 0
KeepAliveTimeout 75
LimitRequestBody 0
LogFormat "%m %{{X-Request-Id}}i" echo
CustomLog {log} echo
LuaScope thread
LuaMapHandler "^/" {dir}/echo_apache.lua handle
"""


def _apache(directory: Path, port: int, log: Path) -> _Launch:
    binary = _ensure_binary("apache2", [("apache2",)], needs=[APACHE_MODULES / "mod_lua.so"])
    user = ""
    if os.geteuid() == 0:  # Apache refuses to serve as root: the child drops to this user
        for name in ("www-data", "nobody"):
            try:
                entry = pwd.getpwnam(name)
            except KeyError:
                continue
            user = f"User #{entry.pw_uid}\nGroup #{entry.pw_gid}"
            break
    _copy_app(directory, "echo_apache.lua")
    conf = directory / "httpd.conf"
    conf.write_text(APACHE_CONF.format(dir=directory, port=port, log=log,
                                       modules=APACHE_MODULES, user=user))
    return _Launch([binary, "-f", str(conf), "-D", "FOREGROUND"],
                   error_logs=[directory / "error.log"])


LIGHTTPD_CONF = """\
server.modules = ("mod_rewrite", "mod_setenv", "mod_magnet", "mod_cgi", "mod_accesslog")
server.document-root = "{dir}"
server.bind = "127.0.0.1"
server.port = {port}
server.errorlog = "{dir}/error.log"
server.pid-file = "{dir}/lighttpd.pid"
server.max-keep-alive-requests = 65535
server.max-keep-alive-idle = 75
server.max-read-idle = 75
server.stream-response-body = 2
server.max-request-size = 0
accesslog.format = "%m %{{X-Request-Id}}i"
accesslog.filename = "|exec /bin/cat >> {log}"
url.rewrite-once = ("^/chunked/" => "/echo_lighttpd_chunked.sh")
$HTTP["url"] == "/echo_lighttpd_chunked.sh" {{
    cgi.assign = (".sh" => "/bin/bash")
    setenv.add-environment = ("ECHO_DELAY" => "{delay}")
}} else {{
    magnet.attract-raw-url-to = ("{dir}/echo_lighttpd.lua")
}}
"""


def _lighttpd(directory: Path, port: int, log: Path) -> _Launch:
    binary = _ensure_binary(
        "lighttpd",
        [("lighttpd", "lighttpd-modules-lua"), ("lighttpd", "lighttpd-mod-magnet")],
        needs=[LIGHTTPD_MODULES / "mod_magnet.so"],
    )
    _copy_app(directory, "echo_lighttpd.lua")
    _copy_app(directory, "echo_lighttpd_chunked.sh")
    os.mkfifo(directory / "never.fifo")
    conf = directory / "lighttpd.conf"
    conf.write_text(LIGHTTPD_CONF.format(dir=directory, port=port, log=log,
                                         delay=LIGHTTPD_CGI_DELAY))
    return _Launch([binary, "-D", "-f", str(conf)], error_logs=[directory / "error.log"])


def _gunicorn(directory: Path, port: int, log: Path) -> _Launch:
    ensure_python_packages("gunicorn>=22")
    return _Launch(
        [sys.executable, "-m", "gunicorn", "-k", "sync", "-w", "2", "-b", f"127.0.0.1:{port}",
         "--graceful-timeout", "2", "--no-control-socket", "--log-level", "warning",
         "echo_wsgi:application"],
        cwd=APPS, env={"ECHO_LOG": str(log)},
    )


def _uvicorn(directory: Path, port: int, log: Path) -> _Launch:
    ensure_python_packages("uvicorn>=0.30", "httptools>=0.6")
    return _Launch(
        [sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port),
         "--http", "httptools", "--lifespan", "off", "--timeout-keep-alive", "75",
         "--timeout-graceful-shutdown", "2", "--no-access-log", "--log-level", "warning",
         "echo_asgi:application"],
        cwd=APPS, env={"ECHO_LOG": str(log)},
    )


def _hypercorn(directory: Path, port: int, log: Path) -> _Launch:
    ensure_python_packages("hypercorn>=0.17")
    return _Launch(
        [sys.executable, "-m", "hypercorn", "--bind", f"127.0.0.1:{port}", "--workers", "1",
         "--keep-alive", "75", "--graceful-timeout", "2", "--log-level", "warning",
         "echo_asgi:application"],
        cwd=APPS, env={"ECHO_LOG": str(log)},
    )


def _node(directory: Path, port: int, log: Path) -> _Launch:
    binary = _ensure_binary("node", [("nodejs",)])
    return _Launch([binary, str(APPS / "echo_node.js"), "127.0.0.1", str(port)],
                   cwd=APPS, env={"ECHO_LOG": str(log)})


def _stdlib(directory: Path, port: int, log: Path) -> _Launch:
    return _Launch([sys.executable, str(APPS / "echo_stdlib.py"), "127.0.0.1", str(port)],
                   cwd=APPS, env={"ECHO_LOG": str(log)})


_LAUNCHERS: dict[str, Callable[[Path, int, Path], _Launch]] = {
    "nginx": _nginx,
    "apache": _apache,
    "lighttpd": _lighttpd,
    "gunicorn": _gunicorn,
    "uvicorn": _uvicorn,
    "hypercorn": _hypercorn,
    "node": _node,
    "stdlib": _stdlib,
}


def _copy_app(directory: Path, name: str) -> None:
    target = directory / name
    shutil.copyfile(APPS / name, target)
    target.chmod(0o755 if name.endswith(".sh") else 0o644)


# -------------------------------------------------------------------------- the handle


class RealServer:
    """A running server (see the module docstring); made by :func:`start_server`."""

    def __init__(self, name: str, process: ProcessServer, directory: Path, log: Path,
                 error_logs: list[Path]) -> None:
        profile = PROFILES[name]
        self.name = name
        self.supports: frozenset[str] = profile.supports
        self.keepalive = profile.keepalive
        self.pipelining = profile.pipelining
        self.notes = profile.notes
        self.process = process
        self.host = process.host
        self.port = process.port
        self.dir = directory
        self.log = log
        self.error_logs = error_logs
        self.software = ""  # the Server header of the probe's answer

    def __repr__(self) -> str:
        return f"<RealServer {self.name} {self.software or '?'} on {self.host}:{self.port}>"

    def url(self, path: str = "/") -> str:
        return f"http://{self.host}:{self.port}{path}"

    # recording

    def records(self, since: int = 0) -> list[Record]:
        """Requests recorded so far, in log order (the probe left out); ``since`` skips the
        first ``since`` of them (a ``count()`` taken earlier)."""
        try:
            text = self.log.read_text(encoding="latin-1")
        except FileNotFoundError:
            return []
        result = []
        for line in text.split("\n")[:-1]:  # a last line without "\n" is still being written
            method, _, request_id = line.partition(" ")
            if request_id != PROBE_ID:
                result.append(Record(method, request_id))
        return result[since:]

    def count(self) -> int:
        return len(self.records())

    def received(self, since: int = 0) -> collections.Counter[str]:
        """id -> how many times it was received."""
        return collections.Counter(record.id for record in self.records(since))

    def received_methods(self, since: int = 0) -> collections.Counter[Record]:
        """(method, id) -> how many times it was received."""
        return collections.Counter(self.records(since))

    def wait_for(self, n: int, timeout: float = 10.0, since: int = 0) -> list[Record]:
        """Poll until at least ``n`` requests (after ``since``) are recorded; return them.
        TimeoutError after ``timeout`` seconds."""
        deadline = time.monotonic() + timeout
        while True:
            records = self.records(since)
            if len(records) >= n:
                return records
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name}: {len(records)} of {n} requests recorded after {timeout}s"
                )
            time.sleep(0.01)

    def wait_for_ids(self, ids: Iterable[str], timeout: float = 10.0
                     ) -> collections.Counter[str]:
        """Poll until every id in ``ids`` is recorded at least once; return ``received()``.
        TimeoutError (naming some missing ids) after ``timeout`` seconds."""
        wanted = set(ids)
        deadline = time.monotonic() + timeout
        while True:
            received = self.received()
            missing = wanted.difference(received)
            if not missing:
                return received
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{self.name}: {len(missing)} of {len(wanted)} ids not recorded after "
                    f"{timeout}s, e.g. {sorted(missing)[:5]}"
                )
            time.sleep(0.01)

    def output(self) -> str:
        """The server's stdout/stderr and its error log(s), for failure messages."""
        parts = [self.process.output()]
        for path in self.error_logs:
            with contextlib.suppress(OSError):
                parts.append(f"--- {path.name} ---\n{path.read_text(errors='replace')}")
        return "\n".join(parts)

    # life

    def _probe(self, timeout: float) -> None:
        """One GET with the probe id until it is answered and recorded."""
        deadline = time.monotonic() + timeout
        last: object = None
        while time.monotonic() < deadline:
            conn = http.client.HTTPConnection(self.host, self.port, timeout=5)
            try:
                conn.request("GET", "/len/probe", headers={"X-Request-Id": PROBE_ID})
                response = conn.getresponse()
                body = response.read()
                if (response.status == 200 and body == f"id={PROBE_ID}\n".encode()
                        and response.getheader("X-Request-Id") == PROBE_ID):
                    self.software = response.getheader("Server", "")
                    break
                last = f"{response.status} {response.getheaders()} {body[:200]!r}"
            except (OSError, http.client.HTTPException) as exc:
                last = exc
            finally:
                conn.close()
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{self.name} does not answer the probe: {last}\n{self.output()}")
        while not self._probe_recorded():
            if time.monotonic() > deadline:
                raise RuntimeError(f"{self.name} did not record the probe in {self.log}\n"
                                   f"{self.output()}")
            time.sleep(0.01)

    def _probe_recorded(self) -> bool:
        try:
            return f" {PROBE_ID}\n" in self.log.read_text(encoding="latin-1")
        except FileNotFoundError:
            return False

    def stop(self) -> None:
        self.process.stop()
        with contextlib.suppress(OSError):  # ProcessServer's output file, in /tmp
            self.process._log.unlink()


@contextlib.contextmanager
def start_server(name: str, *, start_timeout: float = 30.0) -> Iterator[RealServer]:
    """Start server ``name`` (one of :data:`SERVERS`) on a free 127.0.0.1 port, installing it
    first if needed, and wait until it answers and records; stop it and remove its temp
    directory on exit. :class:`ServerUnavailable` if it cannot be installed,
    RuntimeError (with its output) if it does not start."""
    if name not in _LAUNCHERS:
        raise ValueError(f"unknown server {name!r}; choose from {SERVERS}")
    directory = Path(tempfile.mkdtemp(prefix=f"sendoff-{name}-"))
    directory.chmod(0o755)  # Apache's child runs as www-data and reads its Lua file here
    try:
        port = free_port()
        log = directory / "received.log"
        launch = _LAUNCHERS[name](directory, port, log)
        process = ProcessServer(
            launch.argv, cwd=launch.cwd, env=launch.env, port=port,
            start_timeout=start_timeout, stop_timeout=launch.stop_timeout, name=name,
        )
        process.start()
        server = RealServer(name, process, directory, log, launch.error_logs)
        try:
            server._probe(start_timeout)
            yield server
        finally:
            server.stop()
    finally:
        shutil.rmtree(directory, ignore_errors=True)
