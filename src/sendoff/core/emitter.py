"""Events and their emitter: priorities, ``once``, stop-propagation and subscribers
(Guzzle's model). It sits in the core because every request carries an emitter of its own."""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable, Iterable
from typing import Any, Literal, Protocol, TypeVar


class Event:
    """An event; listeners may stop its propagation to later listeners.

    :attr:`name` is the name it was last emitted under (Guzzle passes it to listeners).
    """

    __slots__ = ("_stopped", "name")

    def __init__(self) -> None:
        self._stopped = False
        self.name = ""

    def stop_propagation(self) -> None:
        """Listeners after this one are not called."""
        self._stopped = True

    def is_propagation_stopped(self) -> bool:
        return self._stopped


E = TypeVar("E", bound=Event)
Listener = Callable[[Any], Any]
Priority = int | Literal["first", "last"]


class Subscriber(Protocol):
    """An object that names the events it listens to and the methods that handle them.

    ``get_events()`` maps an event name to ``"method"``, ``("method", priority)`` or a
    list of such, e.g. ``{"before": ("on_before", 100), "error": [("a", "first"), "b"]}``.
    """

    def get_events(self) -> dict[str, Any]: ...


class _Entry:
    __slots__ = ("call", "listener", "priority", "seq")

    def __init__(self, listener: Listener, priority: int, seq: int) -> None:
        self.listener = listener
        self.priority = priority
        self.seq = seq
        self.call: Listener = listener


class Emitter:
    """Dispatches events to listeners, highest priority first, equal ones in order added.

    Adding and removing listeners is thread-safe; ``emit`` reads an immutable, cached,
    sorted snapshot and takes no lock, so events can be emitted from any thread.
    """

    __slots__ = ("_cache", "_entries", "_lock", "_once_names", "_seq")

    def __init__(self) -> None:
        self._entries: dict[str, list[_Entry]] = {}
        self._cache: dict[str, tuple[Listener, ...]] = {}  # sorted calls, built on demand
        self._once_names: set[str] = set()  # events that have a once listener
        self._lock = threading.Lock()
        self._seq = itertools.count()

    def __repr__(self) -> str:
        counts = {name: len(entries) for name, entries in self._entries.items()}
        return f"<Emitter {counts}>"

    def on(self, name: str, listener: Listener, priority: Priority = 0) -> None:
        """Call ``listener(event)`` each time ``name`` is emitted.

        ``priority`` is an int (higher runs first), ``"first"`` (current highest + 1) or
        ``"last"`` (current lowest - 1); first and last are fixed when added.
        """
        self._add(name, listener, priority, once=False)

    def once(self, name: str, listener: Listener, priority: Priority = 0) -> None:
        """Like :meth:`on`, but the listener is removed before its first call."""
        self._add(name, listener, priority, once=True)

    def off(self, name: str, listener: Listener) -> bool:
        """Remove ``listener`` from ``name``; True if it was there."""
        with self._lock:
            entries = self._entries.get(name, [])
            kept = [e for e in entries if e.listener != listener]
            if len(kept) == len(entries):
                return False
            self._store(name, kept)
            return True

    def listeners(self, name: str | None = None) -> Any:
        """The listeners of ``name`` in call order, or a dict of every event's listeners."""
        if name is not None:
            return [e.listener for e in self._sorted(name)]
        return {n: [e.listener for e in self._sorted(n)] for n in list(self._entries)}

    def has_listeners(self, name: str | None = None) -> bool:
        """True if ``name`` (or, without a name, any event) has a listener."""
        return bool(self._entries) if name is None else name in self._entries

    def emit(self, name: str, event: E) -> E:
        """Call the listeners of ``name`` with ``event`` until one stops propagation."""
        calls = self._cache.get(name)
        if calls is None:
            if name not in self._entries:
                return event
            calls = self._build(name)
        event.name = name
        for call in calls:
            call(event)
            if event._stopped:
                break
        return event

    def attach(self, subscriber: Subscriber) -> None:
        """Add every listener a subscriber names in ``get_events()`` (all or none)."""
        found = [(n, getattr(subscriber, m), p) for n, m, p in _subscriptions(subscriber)]
        for _, _, priority in found:
            _resolve_priority(priority, ())  # a bad entry must not leave the others attached
        for name, listener, priority in found:
            self.on(name, listener, priority)

    def detach(self, subscriber: Subscriber) -> None:
        """Remove every listener :meth:`attach` added for ``subscriber``."""
        for name, method, _ in _subscriptions(subscriber):
            self.off(name, getattr(subscriber, method))

    # -- internals ------------------------------------------------------------------------
    def _add(self, name: str, listener: Listener, priority: Priority, once: bool) -> None:
        if not callable(listener):
            raise TypeError(f"listener for {name!r} must be callable, not {listener!r}")
        with self._lock:
            entries = self._entries.get(name, [])
            entry = _Entry(listener, _resolve_priority(priority, entries), next(self._seq))
            if once:
                entry.call = self._once_call(name, entry)
            self._store(name, [*entries, entry])

    def _once_call(self, name: str, entry: _Entry) -> Listener:
        def call(event: Any) -> Any:
            with self._lock:
                entries = self._entries.get(name, [])
                if entry not in entries:
                    return None  # already consumed, possibly by another thread
                self._store(name, [e for e in entries if e is not entry])
            return entry.listener(event)

        return call

    def _store(self, name: str, entries: list[_Entry]) -> None:
        if entries:
            self._entries[name] = entries
        else:
            self._entries.pop(name, None)
        if any(e.call is not e.listener for e in entries):
            self._once_names.add(name)
        else:
            self._once_names.discard(name)
        self._cache.pop(name, None)

    def _build(self, name: str) -> tuple[Listener, ...]:
        with self._lock:  # so that a concurrent change cannot be overwritten by a stale list
            calls = tuple(e.call for e in self._sorted(name))
            if calls:
                self._cache[name] = calls
            return calls

    def _sorted(self, name: str) -> list[_Entry]:
        return sorted(self._entries.get(name, ()), key=lambda e: (-e.priority, e.seq))


def emit_merged(
    name: str, event: E, first: Emitter, second: Emitter | None, once_seen: set[Any] | None = None
) -> E:
    """Emit on two emitters as one: listeners of both ordered by priority together; at
    equal priority the first emitter's listeners run first.

    With ``once_seen`` (a set the caller keeps per request), ``once`` listeners of
    ``first`` (the client's) run once per request and stay registered, as in Guzzle,
    where a client's listeners are copied to each request it creates.
    """
    own = second is not None and name in second._entries
    per_request = once_seen is not None and name in first._once_names
    if not own and not per_request:
        return first.emit(name, event)
    if name not in first._entries:
        return second.emit(name, event) if second is not None else event
    tagged = [(-e.priority, 0, e.seq, e) for e in first._sorted(name)]
    if second is not None and own:
        tagged += [(-e.priority, 1, e.seq, e) for e in second._sorted(name)]
        tagged.sort(key=lambda t: t[:3])
    event.name = name
    for _, side, _, entry in tagged:
        if side == 0 and once_seen is not None and entry.call is not entry.listener:
            if entry in once_seen:
                continue
            once_seen.add(entry)
            entry.listener(event)
        else:
            entry.call(event)
        if event._stopped:
            break
    return event


def _resolve_priority(priority: Priority, entries: Iterable[_Entry]) -> int:
    if priority == "first":
        return max((e.priority for e in entries), default=0) + 1
    if priority == "last":
        return min((e.priority for e in entries), default=0) - 1
    if isinstance(priority, int) and not isinstance(priority, bool):
        return priority
    raise ValueError(f"priority must be an int, 'first' or 'last', not {priority!r}")


def _subscriptions(subscriber: Subscriber) -> list[tuple[str, str, Priority]]:
    out: list[tuple[str, str, Priority]] = []
    for name, spec in subscriber.get_events().items():
        for method, priority in _specs(spec):
            out.append((name, method, priority))
    return out


def _specs(spec: Any) -> list[tuple[str, Priority]]:
    if isinstance(spec, str):
        return [(spec, 0)]
    if isinstance(spec, tuple | list) and spec and isinstance(spec[0], str):
        if len(spec) == 1:
            return [(spec[0], 0)]
        if len(spec) == 2 and not isinstance(spec[1], tuple | list) and (
            isinstance(spec[1], int) or spec[1] in ("first", "last")
        ):
            return [(spec[0], spec[1])]
    if isinstance(spec, tuple | list):
        return [pair for item in spec for pair in _specs(item)]
    raise ValueError(f"cannot read subscriber spec {spec!r}")
