"""Run every benchmark suite, or the ones named: ``python -m bench [--quick] [suite ...]``.

A suite is a module ``bench/suite_<name>.py`` with a ``main() -> None`` that prints its
tables (via :mod:`bench.report`) and writes its plot into ``bench/results/``. Each suite
runs in its own interpreter so that one suite's threads and memory do not skew the next.
``--quick`` (or ``SENDOFF_BENCH_QUICK=1``) shrinks every suite to a smoke test of under a
minute: the same rows and tables, too few repeats to quote.
"""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent


def suites() -> list[str]:
    return sorted(p.stem.removeprefix("suite_") for p in HERE.glob("suite_*.py"))


def main(argv: list[str]) -> int:
    if "--quick" in argv:
        argv = [a for a in argv if a != "--quick"]
        os.environ["SENDOFF_BENCH_QUICK"] = "1"
    chosen = argv or suites()
    unknown = sorted(set(chosen) - set(suites()))
    if unknown:
        print(f"unknown suite(s): {', '.join(unknown)}; known: {', '.join(suites())}")
        return 2
    failed = []
    for name in chosen:
        print(f"\n## bench: {name}\n", flush=True)
        rc = subprocess.call([sys.executable, "-m", f"bench.suite_{name}"], cwd=HERE.parent)
        if rc:
            failed.append(name)
    if failed:
        print(f"\nsuites that failed: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
