"""Debian packages the tests and benchmarks need, installed on first use.

    from tests.support.debian import ensure_binary, ensure_packages

    ensure_packages("redis-server")                           # no-op when installed
    nginx = ensure_binary("nginx", [("nginx-light",), ("nginx",)])   # path, installing one

A fresh machine has only Python: the servers and tools the tests and ``make bench`` run
(nginx, Apache, lighttpd, Node.js, redis-server, rabbitmq-server, wrk) come from apt as root.
``apt-get update`` runs at most once per process; ``apt-get install -y --no-install-recommends``
runs with ``DEBIAN_FRONTEND=noninteractive``, waits up to 5 min for a dpkg lock another
process holds, and is serialised between test processes by a lock file. The packages'
services are not started (a temporary ``/usr/sbin/policy-rc.d`` denies it when the machine
has none), so no system-wide server takes the default ports. Failures raise
:class:`PackageInstallError` saying why (not root, no apt-get, apt's output).
(``demo/redis_server.py`` keeps its own few lines: the demo's scripts import only the
standard library.)
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path

#: where Debian puts daemons, for a PATH without the sbin directories
SBIN = "/usr/sbin:/usr/local/sbin:/sbin"

_LOCK = Path(tempfile.gettempdir()) / "sendoff-tests-apt.lock"
_updated = False


class PackageInstallError(RuntimeError):
    """A Debian package (or the program it ships) is missing and could not be installed."""


def installed(package: str) -> bool:
    """True when dpkg says ``package`` is installed."""
    try:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${db:Status-Status}", package],
            capture_output=True, text=True, timeout=60, check=False,
        )
    except FileNotFoundError:
        return False
    return result.returncode == 0 and result.stdout.strip() == "installed"


def _apt(args: Sequence[str], env: dict[str, str]) -> None:
    cmd = ["apt-get", "-q", "-o", "DPkg::Lock::Timeout=300", *args]
    try:
        result = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900,
                                check=False, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise PackageInstallError(f"{' '.join(cmd)} timed out") from exc
    if result.returncode != 0:
        raise PackageInstallError(
            f"{' '.join(cmd)} failed (exit {result.returncode}):\n"
            f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
        )


def ensure_packages(*names: str) -> None:
    """Install those of the Debian packages ``names`` that are not installed (see the
    module docstring); :class:`PackageInstallError` if one cannot be."""
    global _updated
    missing = [name for name in names if not installed(name)]
    if not missing:
        return
    why = None
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        why = "this is not a Debian-like system (no apt-get)"
    elif os.geteuid() != 0:
        why = f"installing needs root and this process runs as uid {os.geteuid()}"
    if why:
        raise PackageInstallError(
            f"the Debian packages {' '.join(missing)} are needed and {why}; "
            f"install them first: apt-get install -y {' '.join(missing)}"
        )
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive", "NEEDRESTART_MODE": "a"}
    with open(_LOCK, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test process may be installing them now
        missing = [name for name in missing if not installed(name)]
        if not missing:
            return
        if not _updated:
            _apt(["update"], env)
            _updated = True
        policy = Path("/usr/sbin/policy-rc.d")
        ours = not policy.exists()
        if ours:  # do not let the packages start a system-wide server on the default ports
            try:
                policy.write_text("#!/bin/sh\nexit 101\n")
                policy.chmod(0o755)
            except OSError as exc:
                policy.unlink(missing_ok=True)
                raise PackageInstallError(
                    f"cannot write {policy} (it keeps the packages {' '.join(missing)} from"
                    f" starting system-wide servers while they install): {exc}"
                ) from exc
        try:
            _apt(["install", "-y", "--no-install-recommends", *missing], env)
        finally:
            if ours:
                policy.unlink(missing_ok=True)
    still = [name for name in missing if not installed(name)]
    if still:
        raise PackageInstallError(f"apt-get reported success but {still} are not installed")


def find_binary(name: str) -> str | None:
    """The executable ``name`` on PATH or in the sbin directories; None if there is none."""
    return shutil.which(name) or shutil.which(name, path=SBIN)


def ensure_binary(
    name: str, alternatives: Iterable[tuple[str, ...]], needs: Iterable[Path] = ()
) -> str:
    """The path of executable ``name`` (and the files ``needs``), installing the first of
    ``alternatives`` (tuples of Debian packages) that apt can install, if missing."""
    needs = list(needs)

    def present() -> str | None:
        found = find_binary(name)
        return found if found and all(path.exists() for path in needs) else None

    found = present()
    wanted = " and ".join([name, *map(str, needs)])
    errors: list[str] = []
    for packages in alternatives:
        if found:
            break
        try:
            ensure_packages(*packages)
        except PackageInstallError as exc:
            errors.append(str(exc))
        else:
            errors.append(f"Debian packages {' '.join(packages)} are installed, "
                          f"yet still no {wanted}")
        found = present()
    if not found:
        raise PackageInstallError(f"{wanted} missing:\n" + "\n".join(errors))
    return found
