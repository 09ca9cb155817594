"""`make demo`: a one-line heading per section saying what it proves, and never more than
a second of silence while it waits."""

from __future__ import annotations

import itertools
import os
import re
import subprocess
import sys
import time
from pathlib import Path

DEMO = Path(__file__).resolve().parent.parent / "demo" / "run.py"


def test_the_demo_announces_each_section_and_reports_progress() -> None:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "SENDOFF_DEMO_WEBHOOKS": "10"}
    proc = subprocess.Popen([sys.executable, str(DEMO)], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env=env)
    assert proc.stdout is not None
    lines: list[tuple[float, str]] = []
    for line in proc.stdout:  # each line stamped as it arrives
        lines.append((time.monotonic(), line.rstrip("\n")))
    assert proc.wait(timeout=120) == 0, "\n".join(text for _, text in lines)
    text = [line for _, line in lines]

    headings = [line for line in text if line.startswith("== ")]
    assert [h[3:6] for h in headings] == ["1/6", "2/6", "3/6", "4/6", "5/6", "6/6"]
    assert all(re.fullmatch(r"== \d/6 [^:]+: .{20,} ==", h) for h in headings), headings

    # the blocking half waits 10 x 300 ms: it reports while it does
    assert any(line.startswith("   ... blocking: the caller waits") for line in text)
    stamps = [stamp for stamp, _ in lines]
    gaps = [later - earlier for earlier, later in itertools.pairwise(stamps)]
    assert max(gaps) < 2.5, f"{max(gaps):.1f} s without a line"
    assert "receiver got 10/10" in "\n".join(text)
    assert "every acknowledged webhook arrived: True" in "\n".join(text)

    # two Celery workers on one Redis: both delivered some, and all 2000 arrived
    shared = next(line for line in text if line.startswith("shared: "))
    counts = [int(n) for n in re.findall(r"worker\d@demo delivered (\d+)", shared)]
    assert len(counts) == 2, shared
    assert all(n > 0 for n in counts), shared
    assert sum(counts) >= 2000, shared
    assert "receiver got 2000/2000 in" in "\n".join(text)
    assert "2000 delivered, 0 pending, 0 out with a worker, 0 dead" in "\n".join(text)
    assert "stopped: the workers (SIGTERM, exit 0, 0), then redis-server" in text
