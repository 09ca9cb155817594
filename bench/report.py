"""Tables and plots shared by the benchmark suites."""

from __future__ import annotations

import os
import pathlib
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TypeVar

T = TypeVar("T")

RESULTS = pathlib.Path(__file__).resolve().parent / "results"


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100) of samples, nearest-rank."""
    ordered = sorted(samples)
    if not ordered:
        return float("nan")
    k = max(0, min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed_us(n: int, call: Callable[[int], object]) -> list[float]:
    """µs of each of ``n`` calls ``call(i)``, timed one by one."""
    samples = []
    clock = time.perf_counter_ns
    for i in range(n):
        start = clock()
        call(i)
        samples.append((clock() - start) / 1000)
    return samples


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples) if samples else float("nan")


def quick() -> bool:
    """True with ``SENDOFF_BENCH_QUICK=1`` (``python -m bench --quick``) or a suite run as
    ``python -m bench.suite_x --quick``: suites shrink to a smoke test (< 60 s)."""
    env = os.environ.get("SENDOFF_BENCH_QUICK", "")
    return "--quick" in sys.argv[1:] or env not in ("", "0")


@dataclass(frozen=True)
class Spread:
    """The median of a value over repeats, with its min and max."""

    median: float
    low: float
    high: float
    n: int

    @classmethod
    def of(cls, samples: Sequence[float]) -> Spread:
        if not samples:
            return cls(float("nan"), float("nan"), float("nan"), 0)
        return cls(statistics.median(samples), min(samples), max(samples), len(samples))

    def ratio(self, other: Spread) -> float:
        """median / other's median (nan when either is missing or zero)."""
        if not other.median or other.median != other.median:
            return float("nan")
        return self.median / other.median

    def range(self) -> str:
        """``low-high`` in the table's number format."""
        return f"{_fmt(self.low)}-{_fmt(self.high)}"

    def __str__(self) -> str:
        return f"{_fmt(self.median)} ({self.range()})"


def interleaved(
    rows: Sequence[tuple[str, Callable[[], T]]],
    repeats: int,
    *,
    rotate: bool = True,
    progress: Callable[[str, int, T], None] | None = None,
) -> dict[str, list[T]]:
    """Run every row once per round, ``repeats`` rounds: A B C, B C A, C A B, ... (with
    ``rotate``; A B C, A B C otherwise), so that a slow minute of the machine hits every
    row alike and no row always follows the same neighbour. Returns each row's results in
    order; ``progress(name, round, result)`` is called after each run."""
    results: dict[str, list[T]] = {name: [] for name, _ in rows}
    for r in range(repeats):
        shift = r % len(rows) if rotate and rows else 0
        for name, run in [*rows[shift:], *rows[:shift]]:
            result = run()
            results[name].append(result)
            if progress is not None:
                progress(name, r, result)
    return results


def machine_line() -> str:
    """``python -m timeit "sum(range(1000))"`` on this interpreter, and the load average:
    the scale every absolute figure of the run is to be read against."""
    out = subprocess.run([sys.executable, "-m", "timeit", "sum(range(1000))"],
                         capture_output=True, text=True, timeout=120, check=False)
    load = os.getloadavg()
    return (f"`python -m timeit \"sum(range(1000))\"`: {out.stdout.strip() or out.stderr.strip()}"
            f" · Python {sys.version.split()[0]} · {os.cpu_count()} cores"
            f" · load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"
            f" · {time.strftime('%Y-%m-%d %H:%M')}")


def save_json(filename: str, data: object) -> pathlib.Path:
    """Write a suite's raw per-run results to bench/results/ for later reading."""
    import json

    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / filename
    path.write_text(json.dumps(data, indent=1, default=str), encoding="utf-8")
    return path


def note(text: str) -> None:
    """Print a line and append it to bench/results/tables.md."""
    print(text, flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "tables.md", "a", encoding="utf-8") as fh:
        fh.write(text + "\n\n")


def table(title: str, headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """Print and return a GitHub-flavoured markdown table."""
    cells = [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    lines = [
        f"### {title}",
        "",
        "| " + " | ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)) + " |",
        "| " + " | ".join("-" * w for w in widths) + " |",
    ]
    for r in cells:
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) + " |")
    text = "\n".join(lines) + "\n"
    print(text, flush=True)
    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / "tables.md", "a", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return text


def bar_plot(filename: str, title: str, labels: Sequence[str], values: Sequence[float],
             xlabel: str, log: bool = False) -> pathlib.Path | None:
    """A horizontal bar plot into bench/results/; None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - the bench extra installs it
        return None
    RESULTS.mkdir(exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 0.45 * len(labels) + 1.5))
    ax.barh(list(labels), list(values), color="#3572A5")
    ax.invert_yaxis()
    if log:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel)
    ax.set_title(title)
    fig.tight_layout()
    path = RESULTS / filename
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _fmt(value: object) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "n/a"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)
