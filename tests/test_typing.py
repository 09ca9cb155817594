"""What a user's ``mypy --strict`` sees of sendoff's API: typos and wrong options are
errors, correct code is clean (tests/typing/ holds both scripts)."""

from __future__ import annotations

import pathlib
import re
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent / "typing"


def _mypy(script: pathlib.Path, cache: pathlib.Path) -> str:
    run = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-error-summary",
         "--cache-dir", str(cache), "--config-file", "/dev/null", str(script)],
        capture_output=True, text=True, cwd=HERE, timeout=300,
    )
    assert run.returncode in (0, 1), run.stderr
    return run.stdout


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    return tmp_path_factory.mktemp("mypy-cache")


def test_correct_code_type_checks_clean(cache: pathlib.Path) -> None:
    assert _mypy(HERE / "user_good.py", cache) == ""


def test_every_typical_mistake_is_an_error(cache: pathlib.Path) -> None:
    script = HERE / "user_mistakes.py"
    lines = script.read_text().splitlines()
    marked = {n for n, line in enumerate(lines, 1) if line.endswith("# mistake")}
    assert len(marked) >= 12
    output = _mypy(script, cache)
    flagged = {int(m.group(1)) for m in re.finditer(r"user_mistakes\.py:(\d+): error", output)}
    assert flagged == marked, output
