"""The process-mode helper and ``sendoff fire`` run nothing from the caller's directory or
PYTHONPATH: a planted ``json.py`` and a planted ``sendoff/`` package never run, and the
request is still delivered."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent


def _plant(directory: Path, marker: Path) -> None:
    trap = f"open({str(marker)!r}, 'a').write(__name__ + '\\n')\n"
    (directory / "json.py").write_text(trap)
    fake = directory / "sendoff"
    fake.mkdir()
    (fake / "__init__.py").write_text(trap)
    (fake / "delivery").mkdir()
    (fake / "delivery" / "__init__.py").write_text(trap)
    (fake / "delivery" / "process.py").write_text(trap)


def test_the_helper_ignores_modules_in_the_callers_directory(tmp_path, server):
    marker = tmp_path / "ran.txt"
    caller = tmp_path / "app"
    caller.mkdir()
    _plant(caller, marker)
    code = (
        "from sendoff import FireAndForget\n"
        f"c = FireAndForget(mode='process'); c.fire('POST', {server.url('/iso')!r}, json={{}})\n"
        "c.close()\n"
    )
    # the caller runs isolated (-I: it imports the real sendoff); the helper it starts
    # inherits its directory and a PYTHONPATH that both hold the planted modules
    env = {**os.environ, "PYTHONPATH": str(caller)}
    done = subprocess.run([sys.executable, "-I", "-c", code], cwd=caller, env=env,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    [got] = server.wait_for(1, timeout=30)
    assert got.path == "/iso"
    assert not marker.exists(), marker.read_text()


def test_sendoff_fire_ignores_modules_in_the_callers_directory(tmp_path, server):
    marker = tmp_path / "ran.txt"
    caller = tmp_path / "shell"
    caller.mkdir()
    _plant(caller, marker)
    sendoff_cli = Path(sys.executable).parent / "sendoff"
    # run from a directory that holds the planted modules (the console script itself does
    # not put its working directory on sys.path; the helper it starts must not either)
    done = subprocess.run([str(sendoff_cli), "fire", "POST", server.url("/cli-iso"), "-d", "a=1"],
                          cwd=caller,
                          capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    [got] = server.wait_for(1, timeout=30)
    assert got.path == "/cli-iso"
    assert not marker.exists(), marker.read_text()
