"""A throwaway nginx on a loopback port for throughput rows (installed from Debian if missing).

``with Nginx() as srv: srv.url("/")`` runs one nginx process (``worker_processes 1``, no
master, so that SIGSTOP pauses it: :meth:`Nginx.pause`) with a ``return 200`` location and
``stub_status`` (to count the requests it received: :meth:`Nginx.requests`) from a temp
directory, then stops it.

``Nginx(tls=True)`` also listens with TLS on a second port, with a certificate for
127.0.0.1 issued by a throwaway trustme CA: ``srv.url("/", tls=True)`` is the https URL and
``srv.ca_file`` the CA's PEM for the client to trust. Both listeners are served by the same
process, so one ``stub_status`` counts both.
"""

from __future__ import annotations

import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from tests.support.debian import PackageInstallError, ensure_binary

CONFIG = """
worker_processes 1;
master_process off;
daemon off;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location = /nginx_status {{ stub_status; }}
        location / {{ return 200 "ok"; }}
    }}
{tls_server}
}}
"""

TLS_SERVER = """
    server {{
        listen 127.0.0.1:{tls_port} ssl backlog=4096;
        ssl_certificate {dir}/server.pem;
        ssl_certificate_key {dir}/server.key;
        ssl_protocols TLSv1.2 TLSv1.3;
        location / {{ return 200 "ok"; }}
    }}
"""


def nginx_binary() -> str | None:
    """The nginx executable, installing Debian's package when we are root and it is missing."""
    try:
        return ensure_binary("nginx", [("nginx-light",), ("nginx",)])
    except PackageInstallError as exc:
        print(f"nginx is missing and could not be installed: {exc}", file=sys.stderr)
        return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Nginx:
    """nginx from a temp config; ``accepted()`` is how many requests it has handled."""

    name = "nginx"

    def __init__(self, tls: bool = False) -> None:
        binary = nginx_binary()
        if binary is None:
            raise RuntimeError("nginx is not installed and could not be installed")
        self.binary = binary
        self.dir = pathlib.Path(tempfile.mkdtemp(prefix="sendoff-nginx-"))
        self.port = free_port()
        self.tls = tls
        self.tls_port = free_port() if tls else 0
        self.ca_file: str | None = None
        self.proc: subprocess.Popen[bytes] | None = None
        self.status_calls = 0

    def __enter__(self) -> Nginx:
        tls_server = ""
        if self.tls:
            self._write_certificates()
            tls_server = TLS_SERVER.format(dir=self.dir, tls_port=self.tls_port)
        conf = self.dir / "nginx.conf"
        conf.write_text(CONFIG.format(dir=self.dir, port=self.port, tls_server=tls_server))
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(conf), "-p", str(self.dir)],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    break
            except OSError:
                if self.proc.poll() is not None:
                    err = self.proc.stderr.read().decode() if self.proc.stderr else ""
                    raise RuntimeError(f"nginx did not start: {err.strip()}") from None
                time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.resume()  # a stopped process would not act on SIGQUIT
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def _write_certificates(self) -> None:
        import trustme

        ca = trustme.CA()
        cert = ca.issue_cert("127.0.0.1", "localhost")
        cert.private_key_pem.write_to_path(str(self.dir / "server.key"))
        cert.cert_chain_pems[0].write_to_path(str(self.dir / "server.pem"))
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(str(self.dir / "server.pem"), append=True)
        ca.cert_pem.write_to_path(str(self.dir / "ca.pem"))
        self.ca_file = str(self.dir / "ca.pem")

    def url(self, path: str = "/", tls: bool = False) -> str:
        if tls:
            if not self.tls:
                raise ValueError("this nginx was started without tls=True")
            return f"https://127.0.0.1:{self.tls_port}{path}"
        return f"http://127.0.0.1:{self.port}{path}"

    @property
    def pid(self) -> int:
        assert self.proc is not None, "nginx is not running"
        return self.proc.pid

    def pause(self) -> None:
        """SIGSTOP: the kernel still accepts connections and buffers requests; nothing is
        answered until :meth:`resume`."""
        os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.pid, signal.SIGCONT)

    def requests(self) -> int:
        """Requests handled so far (status requests excluded)."""
        self.status_calls += 1
        with urllib.request.urlopen(self.url("/nginx_status"), timeout=5) as resp:
            text = resp.read().decode()
        # "Active connections: 1\nserver accepts handled requests\n 1 1 1\n..."
        numbers = text.splitlines()[2].split()
        return int(numbers[2]) - self.status_calls
