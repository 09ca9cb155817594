"""Run one measurement in a fresh interpreter: ``run("bench.anchors:minimal_loop", url=...)``.

Every row of the engine and durable suites is measured in its own process, so that one
row's threads, sockets, garbage and imports do not tax the next (the sendoff engine's
thread, aiohttp's event loop, Celery's import graph...), and so that
``resource.getrusage(RUSAGE_SELF)`` inside the function is that row's CPU alone. The child
prints the function's result as one JSON line; a NamedTuple arrives as a dict of its
fields. Interpreter start-up and imports happen before the function starts its clock.

    python -m bench.isolated MODULE:FUNCTION '{"kw": "args"}'
"""

from __future__ import annotations

import importlib
import json
import pathlib
import subprocess
import sys
from typing import Any

ROOT = pathlib.Path(__file__).resolve().parent.parent
MARK = "@@result "


def run(target: str, *, timeout: float = 300, **kwargs: Any) -> dict[str, Any]:
    """Call ``target(**kwargs)`` in a child interpreter and return its result."""
    proc = subprocess.run(
        [sys.executable, "-m", "bench.isolated", target, json.dumps(kwargs)],
        cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=False,
    )
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith(MARK):
            return dict(json.loads(line[len(MARK):]))
    raise RuntimeError(
        f"{target} failed (exit {proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


def _jsonable(value: Any) -> Any:
    if hasattr(value, "_asdict"):
        return {k: _jsonable(v) for k, v in value._asdict().items()}
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


def main(argv: list[str]) -> int:
    target, args = argv[0], json.loads(argv[1]) if len(argv) > 1 else {}
    module, _, name = target.partition(":")
    func = getattr(importlib.import_module(module), name)
    result = func(**args)
    sys.stdout.write(MARK + json.dumps(_jsonable(result)) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    raise SystemExit(main(sys.argv[1:]))
