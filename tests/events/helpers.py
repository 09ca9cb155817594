"""Helpers shared by the event tests."""

from __future__ import annotations

from collections.abc import Callable

from tests.support.recording_server import Recorded, Reply, free_port


def refused_url(path: str = "/") -> str:
    """A loopback URL nobody listens on: connecting is refused."""
    return f"http://127.0.0.1:{free_port()}{path}"


def statuses(*codes: int, headers: list[tuple[str, str]] | None = None
             ) -> Callable[[Recorded], Reply]:
    """A handler answering each request with the next status of ``codes`` (then the last),
    with ``headers`` on every answer but a 2xx."""
    queue = list(codes)

    def handler(req: Recorded) -> Reply:
        code = queue.pop(0) if len(queue) > 1 else queue[0]
        extra = headers if headers and not 200 <= code < 300 else []
        return Reply(code, f"status {code}".encode(), list(extra))

    return handler
