"""What travels through the broker: delivery batches (relay -> workers) and outcome
reports (workers -> relay), both plain JSON.

A **batch** is the one argument of the ``sendoff.deliver`` task::

    {"v": 1, "lease": "<lease owner>", "lease_expires": 1732312345.6,
     "reply": "<outcome queue>", "header": "Idempotency-Key", "deadline": 60.0,
     "per_origin": 16, "circuit": [5, 5.0, 300.0],
     "messages": [{"id": "msg_...", "key": "...", "method": "POST", "url": "https://...",
                   "origin": "https://host:443", "wire": "<base64 request bytes>",
                   "timeout": 30.0, "attempt": 1, "schedule": [0, 5, 300]}, ...]}

Everything a worker on another machine needs: it never reads the producer's file. The
``lease`` names the claim in the file the messages belong to; a worker that picks the
batch up after ``lease_expires`` drops it (the relay has claimed those messages again).

An **outcome report** is a message on the ``reply`` queue::

    {"v": 1, "lease": "<lease owner>", "worker": "celery@host",
     "outcomes": [{"id": "msg_...", "v": "delivered", "status": 200},
                  {"id": "...", "v": "retry", "status": 503, "error": null,
                   "retry_after": 30.0, "attempt": 1, "schedule": [0, 5, 300]},
                  {"id": "...", "v": "dead", "status": 400, "error": "answered 400"},
                  {"id": "...", "v": "deferred", "wait": 4.2}]}

``deferred``: the worker did not try the message (its origin's circuit is open, or no
request slot of the origin came free in time); the relay makes it due again after
``wait`` seconds without counting an attempt. ``retry_after`` is in seconds, measured on
the worker when the response arrived; ``wait`` too (clocks of machines may differ: the
relay adds them to its own).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any, Literal

#: the format version of batches and reports
VERSION = 1
#: the name of the task that delivers a batch
TASK_NAME = "sendoff.deliver"
#: the direct exchange outcome reports are published to (routing key: the reply queue)
OUTCOME_EXCHANGE = "sendoff.outcomes"

OutcomeVerdict = Literal["delivered", "retry", "dead", "deferred"]


@dataclass(frozen=True, slots=True)
class Message:
    """One message of a batch, as a worker sees it."""

    id: str
    key: str
    method: str
    url: str
    origin: str
    wire: bytes
    timeout: float
    attempt: int
    schedule: tuple[float, ...]

    def encode(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "method": self.method,
            "url": self.url,
            "origin": self.origin,
            "wire": base64.b64encode(self.wire).decode("ascii"),
            "timeout": self.timeout,
            "attempt": self.attempt,
            "schedule": list(self.schedule),
        }

    @classmethod
    def decode(cls, data: dict[str, Any]) -> Message:
        return cls(
            id=str(data["id"]),
            key=str(data["key"]),
            method=str(data["method"]),
            url=str(data["url"]),
            origin=str(data["origin"]),
            wire=base64.b64decode(data["wire"]),
            timeout=float(data["timeout"]),
            attempt=int(data["attempt"]),
            schedule=tuple(float(s) for s in data["schedule"]),
        )


@dataclass(frozen=True, slots=True)
class Batch:
    """The argument of one delivery task."""

    lease: str
    lease_expires: float
    reply: str
    header: str
    deadline: float
    per_origin: int
    circuit: tuple[int, float, float]
    messages: tuple[Message, ...]

    def encode(self) -> dict[str, Any]:
        return {
            "v": VERSION,
            "lease": self.lease,
            "lease_expires": self.lease_expires,
            "reply": self.reply,
            "header": self.header,
            "deadline": self.deadline,
            "per_origin": self.per_origin,
            "circuit": list(self.circuit),
            "messages": [m.encode() for m in self.messages],
        }

    @classmethod
    def decode(cls, data: dict[str, Any]) -> Batch:
        if data.get("v") != VERSION:
            raise ValueError(
                f"a sendoff batch of format version {data.get('v')!r}; this worker reads"
                f" version {VERSION} (upgrade the workers before the producers)"
            )
        failures, cooldown, longest = data["circuit"]
        return cls(
            lease=str(data["lease"]),
            lease_expires=float(data["lease_expires"]),
            reply=str(data["reply"]),
            header=str(data["header"]),
            deadline=float(data["deadline"]),
            per_origin=int(data["per_origin"]),
            circuit=(int(failures), float(cooldown), float(longest)),
            messages=tuple(Message.decode(m) for m in data["messages"]),
        )


def outcome(
    message: Message,
    verdict: OutcomeVerdict,
    *,
    status: int | None = None,
    error: str | None = None,
    retry_after: float | None = None,
    wait: float | None = None,
) -> dict[str, Any]:
    """One entry of an outcome report."""
    out: dict[str, Any] = {"id": message.id, "v": verdict}
    if verdict == "deferred":
        out["wait"] = 0.0 if wait is None else wait
        return out
    out["status"] = status
    if verdict != "delivered":
        out["error"] = error
    if verdict == "retry":
        out["retry_after"] = retry_after
        out["attempt"] = message.attempt
        out["schedule"] = list(message.schedule)
    return out


def report(lease: str, worker: str, outcomes: list[dict[str, Any]]) -> dict[str, Any]:
    """An outcome report's body."""
    return {"v": VERSION, "lease": lease, "worker": worker, "outcomes": outcomes}
