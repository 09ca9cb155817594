"""The one test of a duration option (timeouts, deadlines, leases)."""

from __future__ import annotations

import math


def is_seconds(value: object, *, positive: bool = True) -> bool:
    """True if ``value`` is a finite number of seconds, > 0 (or >= 0 with
    ``positive=False``). A bool is not a number here, and neither NaN nor infinity is a
    duration: a request given one would never end."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not math.isfinite(value):
        return False
    return value > 0 if positive else value >= 0
