"""What a background task is: a call to make later, how its failures are reported, and
the error policies. Everything else in the package builds on this module."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, cast

from ..core.errors import SendoffError

OnError = Literal["stop", "continue"]


@dataclass(frozen=True, eq=False)
class Task:
    """One queued call: ``func(*args, **kwargs)``; ``func`` may be a coroutine function."""

    func: Callable[..., Any]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]

    @property
    def name(self) -> str:
        """The dotted name of the function, as the logs show it."""
        return name_of(self.func)

    @property
    def is_async(self) -> bool:
        """True when calling the function returns a coroutine to await."""
        func = self.func
        return inspect.iscoroutinefunction(func) or inspect.iscoroutinefunction(
            getattr(func, "__call__", None)  # noqa: B004 - an object with an async __call__
        )

    def __repr__(self) -> str:
        return f"<Task {self.name}>"


class BackgroundTasksFailed(SendoffError):
    """Summary of the tasks of one list that raised, and of those skipped after a failure.

    Logged at the end of an after-response run (each failure was logged with its traceback
    as it happened); raised by :func:`run` outside a request.
    """

    def __init__(self, failures: list[tuple[Task, Exception]], skipped: list[Task]) -> None:
        self.failures = failures
        self.skipped = skipped
        listed = "; ".join(f"{t.name} ({type(e).__name__}: {e})" for t, e in failures)
        message = f"{len(failures)} background task(s) failed: {listed}"
        if skipped:
            message += f"; skipped after the failure: {task_names(skipped)}"
        super().__init__(message)


def check_on_error(on_error: str) -> OnError:
    """Return ``on_error`` if it is ``"stop"`` or ``"continue"``; raise ValueError if not."""
    if on_error in ("stop", "continue"):
        return cast(OnError, on_error)
    raise ValueError(f"on_error must be 'stop' or 'continue', not {on_error!r}")


def name_of(func: Any) -> str:
    if isinstance(func, functools.partial):
        return f"partial({name_of(func.func)})"
    qualname = getattr(func, "__qualname__", None) or type(func).__qualname__
    module = getattr(func, "__module__", None) or type(func).__module__
    return f"{module}.{qualname}" if module else str(qualname)


def task_names(tasks: list[Task]) -> str:
    """The tasks' names, comma-separated, as the logs show them."""
    return ", ".join(t.name for t in tasks)
