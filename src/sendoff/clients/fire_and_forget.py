"""FireAndForget: Kohana's Request_Client_FireAndForget, without making the caller wait.

``execute()`` validates the request, runs ``before`` listeners in the caller's thread,
snapshots the request to wire bytes, hands them over and returns a
:class:`~sendoff.delivery.Receipt` at once. Where the bytes go depends on ``mode``:

- ``"background"`` (default): the process's delivery engine, a background thread with
  keep-alive pools that reads every response (``complete``/``error``/``end`` listeners
  run on that thread);
- ``"inline"``: the seed's raw socket: connect, write, close, in the caller's thread;
- ``"process"``: a detached helper process that outlives the caller.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal, get_args

from ..core.seconds import is_seconds
from ..delivery.engine import Engine, drain_on_sigterm, get_engine
from ..delivery.inline import send_inline
from ..delivery.pool import COUNTERS
from ..delivery.process import Helper, helper_for
from ..delivery.receipt import Receipt, settled
from ..delivery.sender import OnFull, Sender, Settings
from ..delivery.wire import build_request, fire_wire
from ..events.lifecycle import DONE, Transaction
from ..http.models import FieldInput, HeaderInput
from .base import Client

if TYPE_CHECKING:
    from ..http.models import Request, Response
    from ..http.url import URL

#: Where a fire-and-forget request goes: the background engine, the caller's own
#: socket, or a detached helper process.
Mode = Literal["background", "inline", "process"]
MODES: tuple[str, ...] = get_args(Mode)
ON_FULL: tuple[str, ...] = get_args(OnFull)


class FireAndForget(Client[Receipt]):
    """Sends requests without waiting for them; ``execute()`` returns a Receipt at once.

    ``timeout`` bounds the connect and each wait for response bytes; ``deadline``
    (default twice ``timeout``) bounds the whole exchange once a connection takes the
    request; a request may set either for itself (``request.timeout()``,
    ``request.deadline()``). ``max_queue`` bounds the requests waiting for a connection;
    when it is full, ``on_full`` drops the request (``"drop"``, counted, and logged at most
    once per 10 s per origin with the count), makes the caller wait for room up to
    ``timeout`` (``"block"``), or raises :class:`~sendoff.QueueFull` (``"raise"``). TLS is
    verified unless ``verify=False``; ``ca_bundle`` names a PEM file of trusted CAs.
    ``connections_per_origin`` keep-alive connections are used per scheme/host/port;
    ``pipeline`` > 1 lets each carry that many requests at once (HTTP/1.1 pipelining,
    opt-in, used only where it is safe). Requests whose connection could not be opened
    are retried ``retries`` times with exponential backoff (they never reached the
    server). A response head larger than ``max_response_head`` bytes, or a body larger
    than ``max_response_body`` bytes that somebody will read, ends the request with a
    :class:`~sendoff.ProtocolError`; the body of a response nobody will read (its receipt
    was dropped and no listener waits) is not kept. At interpreter exit the queue drains
    for at most ``exit_timeout`` seconds.
    """

    def __init__(
        self,
        timeout: float = 30.0,
        mode: Mode = "background",
        max_queue: int = 100_000,
        on_full: OnFull = "drop",
        verify: bool = True,
        ca_bundle: str | None = None,
        connections_per_origin: int = 16,
        pipeline: int = 1,
        retries: int = 2,
        *,
        deadline: float | None = None,
        exit_timeout: float = 5.0,
        max_response_head: int = 64 * 1024,
        max_response_body: int = 1024 * 1024,
    ) -> None:
        super().__init__(timeout=timeout)
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        if on_full not in ON_FULL:
            raise ValueError(f"on_full must be one of {', '.join(ON_FULL)}, not {on_full!r}")
        for name, value, least in (
            ("max_queue", max_queue, 1),
            ("connections_per_origin", connections_per_origin, 1),
            ("pipeline", pipeline, 1),
            ("retries", retries, 0),
            ("max_response_head", max_response_head, 1024),
            ("max_response_body", max_response_body, 0),
        ):
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                raise ValueError(f"{name} must be an int >= {least}, not {value!r}")
        if not is_seconds(exit_timeout, positive=False):
            raise ValueError(f"exit_timeout must be a number of seconds >= 0, not {exit_timeout!r}")
        if deadline is not None and not is_seconds(deadline):
            raise ValueError(f"deadline must be a positive number of seconds, not {deadline!r}")
        self.mode = mode
        self.verify = verify
        self.ca_bundle = ca_bundle
        if ca_bundle is not None and not os.path.exists(ca_bundle):
            raise ValueError(f"ca_bundle: no such file: {ca_bundle!r}")
        #: the bound on a whole exchange, in seconds (None: twice the request's timeout)
        self.deadline: float | None = float(deadline) if deadline is not None else None
        self.settings = Settings(
            verify=verify,
            ca_bundle=ca_bundle,
            connections_per_origin=connections_per_origin,
            pipeline=pipeline,
            max_queue=max_queue,
            on_full=on_full,
            retries=retries,
            exit_timeout=float(exit_timeout),
            max_response_head=max_response_head,
            max_response_body=max_response_body,
        )
        self._engine: Engine | None = None
        self._sender: Sender | None = None
        self._helper: Helper | None = None
        self._submit = {
            "background": self._submit_background,
            "inline": self._submit_inline,
            "process": self._submit_process,
        }[mode]
        if mode == "background":
            self._make_sender()  # sets up the engine; its thread waits for the first fire
            drain_on_sigterm()

    def __repr__(self) -> str:
        return f"<FireAndForget mode={self.mode} timeout={self.timeout}>"

    # -- sending ------------------------------------------------------------------------------
    def execute(self, request: Request[Any], /) -> Receipt:
        """Hand ``request`` over and return its Receipt at once.

        Bad input raises :class:`~sendoff.InvalidRequest` here, in the caller; network
        failures never raise: they are logged, counted and put on the receipt.
        """
        if self.listened(request):
            return self._execute_with_events(request)
        prepared = request.prepare()
        return self._submit(
            prepared.url,
            prepared.wire(),
            request.timeout() or self.timeout,
            self._limit(request),
        )

    def fire(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, FieldInput | None] | None = None,
        data: Mapping[str, FieldInput | None] | None = None,
        json: Any = None,
        headers: Mapping[str, HeaderInput] | None = None,
        timeout: float | None = None,
    ) -> Receipt:
        """Send ``method url`` without building a Request when nobody listens.

        ``params`` go in the query string, ``data`` in a form body, ``json`` in a JSON
        body (``None`` means no body), ``headers`` are added as given.
        """
        if not self.emitter.has_listeners():
            fast = fire_wire(method, url, params, data, json, headers, timeout)
            if fast is not None:
                wait = timeout or self.timeout
                return self._submit(fast[0], fast[1], wait, self.deadline or 2 * wait)
        return self.execute(build_request(method, url, params, data, json, headers, timeout))

    def _execute_with_events(self, request: Request[Any]) -> Receipt:
        txn = Transaction(self, request)
        if txn.start() is DONE:  # a `before` listener intercepted it (or raised)
            return self._ended_early(txn)
        prepared = txn.request.prepare()
        wire = prepared.wire()
        timeout = txn.request.timeout() or self.timeout
        limit = self._limit(txn.request)
        if self.mode != "background":  # no engine reads a response: only `before` applies
            receipt = self._submit(prepared.url, wire, timeout, limit)
            receipt.attach(txn, prepared)
            return receipt
        sender = self._sender or self._make_sender()
        return sender.submit(prepared.url, wire, timeout, limit, txn, prepared)

    def _limit(self, request: Request[Any]) -> float:
        """The deadline of ``request``: its own, the client's, or twice its timeout."""
        return request.deadline() or self.deadline or 2 * (request.timeout() or self.timeout)

    def _ended_early(self, txn: Transaction) -> Receipt:
        request = txn.request
        error = txn.exception
        response: Response | None = None if error is not None else txn.response
        receipt = settled(b"", request.parsed_url, response, error)
        receipt.attach(txn, None)
        if request.is_external() and self.mode == "background":
            sender = self._sender or self._make_sender()
            wire = f"{request.method()} {request.parsed_url.path} HTTP/1.1\r\n\r\n".encode()
            sender.ended_early(request.parsed_url, wire, response, error)
        return receipt

    def _submit_background(self, url: URL, wire: bytes, timeout: float, limit: float) -> Receipt:
        sender = self._sender or self._make_sender()
        return sender.submit(url, wire, timeout, limit)

    def _submit_inline(self, url: URL, wire: bytes, timeout: float, limit: float) -> Receipt:
        return send_inline(url, wire, timeout, self.verify, self.ca_bundle)

    def _submit_process(self, url: URL, wire: bytes, timeout: float, limit: float) -> Receipt:
        if self._helper is None:
            self._helper = helper_for(self.settings)
        return self._helper.send(url, wire, timeout, limit)

    def _make_sender(self) -> Sender:
        self._engine = get_engine()
        self._sender = self._engine.sender(self.settings)
        return self._sender

    # -- draining and counters -------------------------------------------------------------------
    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every request queued through this client's settings has ended
        (delivered, failed or dropped); False if ``timeout`` seconds passed first."""
        if self.mode != "background" or self._sender is None or self._engine is None:
            return True
        return get_engine().flush([self._sender], timeout)

    def stats(self) -> dict[str, Any]:
        """Counters of this client's settings, per origin (see :func:`sendoff.stats`)."""
        if self._sender is None:
            return {**dict.fromkeys(COUNTERS, 0), "abandoned": 0, "origins": {}}
        counters = self._sender.counters()
        totals = dict(counters.pop("retired"))
        for values in counters["origins"].values():
            for key, value in values.items():
                totals[key] += value
        return {**totals, **counters}

    def close(self) -> None:
        """Finish: wait up to ``exit_timeout`` for this client's requests; in ``process``
        mode, close the pipe so that the helper delivers what it has and exits."""
        if self._helper is not None:
            self._helper.close()
        self.flush(self.settings.exit_timeout)
