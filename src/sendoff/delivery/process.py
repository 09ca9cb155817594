"""``mode="process"``: a detached helper process that outlives the caller.

The first fire spawns ``python -m sendoff.delivery.process`` in a session of its own,
with its standard output and error on /dev/null (so that cron, or a parent capturing the
script's output, does not wait for it). Each request travels to it over a pipe as a
small frame; the helper delivers with its own background engine. When the caller exits,
the pipe closes and the helper drains its queue, then exits too.

Set ``SENDOFF_PROCESS_LOG=/path/to/file`` to have the helper append its log lines (one
per failed request) to a file.
"""

from __future__ import annotations

import json
import logging
import os
import struct
import subprocess
import sys
import threading
from typing import IO, TYPE_CHECKING, Any

from ..core import errors
from ..core.log import logger
from ..http.url import parse_uri
from .engine import get_engine
from .logwindow import log_failure
from .receipt import Receipt, settled
from .sender import Settings
from .stats import mode_counters

if TYPE_CHECKING:
    from ..http.url import URL

_FRAME = struct.Struct("!II")


class Helper:
    """The pipe to one detached helper process (one per set of settings)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.lock = threading.Lock()
        self.proc: subprocess.Popen[bytes] | None = None
        self.pid = os.getpid()

    def send(self, url: URL, wire: bytes, timeout: float, limit: float) -> Receipt:
        """Hand ``wire`` to the helper; the receipt is done once it is handed over."""
        counters = mode_counters("process")
        receipt = settled(wire, url)
        meta = json.dumps({"url": f"{url.origin_text}/", "timeout": timeout, "limit": limit})
        frame = _FRAME.pack(len(meta), len(wire)) + meta.encode() + wire
        error: BaseException | None = None
        with self.lock:
            for _attempt in range(2):  # a helper that died is replaced once
                try:
                    self._stdin().write(frame)
                    self._stdin().flush()
                    error = None
                    break
                except OSError as exc:
                    error = exc
                    self._forget()
        if error is None:
            counters.add("handed_off")
        else:
            counters.add("failed")
            failure = errors.TransportError(
                f"{receipt.method} {receipt.url}: could not hand over to a helper process "
                f"({error})"
            )
            receipt.settle(None, failure)
            log_failure(receipt.method, receipt.url, failure)
        return receipt

    def _stdin(self) -> IO[bytes]:
        if self.pid != os.getpid():  # forked: the pipe is the parent's
            self.proc, self.pid = None, os.getpid()
        if self.proc is None or self.proc.poll() is not None:
            self.proc = spawn(self.settings)
        assert self.proc.stdin is not None
        return self.proc.stdin

    def _forget(self) -> None:
        proc, self.proc = self.proc, None
        if proc is not None and proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def close(self) -> None:
        """Close the pipe: the helper finishes what it has and exits."""
        with self.lock:
            if self.pid == os.getpid():
                self._forget()


_helpers: dict[Settings, Helper] = {}
_helpers_lock = threading.Lock()


def helper_for(settings: Settings) -> Helper:
    """The helper shared by every process-mode client with ``settings``."""
    with _helpers_lock:
        helper = _helpers.get(settings)
        if helper is None:
            helper = _helpers[settings] = Helper(settings)
        return helper


def spawn(settings: Settings) -> subprocess.Popen[bytes]:
    """Start a detached helper for ``settings``."""
    config = json.dumps(
        {
            "verify": settings.verify,
            "ca_bundle": settings.ca_bundle,
            "connections_per_origin": settings.connections_per_origin,
            "pipeline": settings.pipeline,
            "retries": settings.retries,
            "max_response_head": settings.max_response_head,
            "max_response_body": settings.max_response_body,
        }
    )
    return subprocess.Popen(
        [sys.executable, "-I", "-c", _BOOTSTRAP, _package_root(), config],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


#: The helper's entry point. ``-I`` keeps the caller's directory, PYTHONPATH and user
#: site-packages off sys.path, so that no module there (a ``json.py``, a ``sendoff/``)
#: runs in the helper; the directory sendoff itself was imported from is appended, last.
_BOOTSTRAP = (
    "import sys; sys.path.append(sys.argv[1]); "
    "from sendoff.delivery.process import main; raise SystemExit(main(sys.argv[2:]))"
)


def _package_root() -> str:
    """The directory that holds the ``sendoff`` package this process imported."""
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _read_exact(stream: IO[bytes], size: int) -> bytes | None:
    data = b""
    while len(data) < size:
        chunk = stream.read(size - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def main(argv: list[str] | None = None) -> int:
    """The helper: read frames until the pipe closes, deliver them, drain, exit."""
    args = sys.argv[1:] if argv is None else argv
    config: dict[str, Any] = json.loads(args[0]) if args else {}
    log_path = os.environ.get("SENDOFF_PROCESS_LOG")
    if log_path:
        os.close(os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        handler = logging.FileHandler(log_path)
        handler.setFormatter(logging.Formatter("%(asctime)s sendoff[%(process)d] %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    settings = Settings(max_queue=10_000_000, on_full="block", **config)
    engine = get_engine()
    sender = engine.sender(settings)
    longest = 30.0
    stdin = sys.stdin.buffer
    while True:
        head = _read_exact(stdin, _FRAME.size)
        if head is None:
            break
        meta_size, wire_size = _FRAME.unpack(head)
        body = _read_exact(stdin, meta_size + wire_size)
        if body is None:
            break
        meta = json.loads(body[:meta_size])
        timeout = float(meta["timeout"])
        longest = max(longest, timeout)
        sender.submit(parse_uri(meta["url"]), body[meta_size:], timeout, float(meta["limit"]))
    drained = engine.flush([sender], longest * (settings.retries + 1) + 5.0)
    return 0 if drained else 1


if __name__ == "__main__":
    raise SystemExit(main())
