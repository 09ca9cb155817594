"""The Emitter's semantics, one test each (Guzzle's event emitter)."""

from __future__ import annotations

import threading

import pytest

from sendoff.events import Emitter, Event, emit_merged


def recorder(calls: list[str], tag: str):
    def listener(event: Event) -> None:
        calls.append(tag)

    return listener


@pytest.fixture
def em() -> Emitter:
    return Emitter()


def emit_order(em: Emitter, adds: list[tuple[str, object]], name: str = "e") -> list[str]:
    """Add one recording listener per (tag, priority), emit once, return the call order."""
    calls: list[str] = []
    for tag, priority in adds:
        em.on(name, recorder(calls, tag), priority)  # type: ignore[arg-type]
    em.emit(name, Event())
    return calls


# -- priorities ----------------------------------------------------------------------------
def test_higher_priority_runs_first(em):
    assert emit_order(em, [("low", -5), ("high", 10), ("zero", 0)]) == ["high", "zero", "low"]


def test_default_priority_is_zero(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "above"), 1)
    em.on("e", recorder(calls, "default"))
    em.on("e", recorder(calls, "below"), -1)
    em.emit("e", Event())
    assert calls == ["above", "default", "below"]


def test_equal_priorities_run_in_insertion_order(em):
    tags = [("a", 3), ("b", 3), ("c", 3), ("d", 3)]
    assert emit_order(em, tags) == ["a", "b", "c", "d"]


def test_first_is_current_highest_plus_one(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "five"), 5)
    em.on("e", recorder(calls, "first"), "first")  # 6
    em.on("e", recorder(calls, "six"), 6)  # equal to "first": after it
    em.on("e", recorder(calls, "seven"), 7)  # above it
    em.emit("e", Event())
    assert calls == ["seven", "first", "six", "five"]


def test_last_is_current_lowest_minus_one(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "minus-two"), -2)
    em.on("e", recorder(calls, "last"), "last")  # -3
    em.on("e", recorder(calls, "minus-three"), -3)  # equal to "last": after it
    em.on("e", recorder(calls, "minus-four"), -4)
    em.emit("e", Event())
    assert calls == ["minus-two", "last", "minus-three", "minus-four"]


def test_first_and_last_on_an_empty_event_are_one_and_minus_one(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "first"), "first")  # 1
    em.on("e", recorder(calls, "last"), "last")  # 0 is the lowest now? no: 1 - 1 = 0
    em.on("f", recorder(calls, "f-last"), "last")  # -1 on an empty event
    em.on("f", recorder(calls, "f-zero"), 0)
    em.emit("e", Event())
    em.emit("f", Event())
    assert calls == ["first", "last", "f-zero", "f-last"]


def test_first_on_empty_event_equals_priority_one(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "first"), "first")
    em.on("e", recorder(calls, "one"), 1)  # same priority, added later
    em.on("e", recorder(calls, "two"), 2)
    em.emit("e", Event())
    assert calls == ["two", "first", "one"]


def test_first_and_last_only_look_at_the_same_event(em):
    calls: list[str] = []
    em.on("other", recorder(calls, "x"), 1000)
    em.on("e", recorder(calls, "zero"), 0)
    em.on("e", recorder(calls, "first"), "first")  # 1, not 1001
    em.on("e", recorder(calls, "two"), 2)
    em.emit("e", Event())
    assert calls == ["two", "first", "zero"]


def test_first_is_not_readjusted_when_higher_listeners_come_later(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "first"), "first")
    em.on("e", recorder(calls, "hundred"), 100)
    em.on("e", recorder(calls, "first-again"), "first")  # 101 now
    em.on("e", recorder(calls, "last"), "last")
    em.on("e", recorder(calls, "minus-hundred"), -100)
    em.emit("e", Event())
    assert calls == ["first-again", "hundred", "first", "last", "minus-hundred"]


@pytest.mark.parametrize("priority", ["middle", True, 1.5, None])
def test_bad_priority_is_rejected(em, priority):
    with pytest.raises(ValueError, match="priority"):
        em.on("e", lambda e: None, priority)
    assert not em.has_listeners("e")


def test_listener_must_be_callable(em):
    with pytest.raises(TypeError, match="callable"):
        em.on("e", "not a function")  # type: ignore[arg-type]


# -- once ----------------------------------------------------------------------------------
def test_once_runs_once(em):
    calls: list[str] = []
    em.once("e", recorder(calls, "once"))
    em.on("e", recorder(calls, "always"))
    for _ in range(3):
        em.emit("e", Event())
    assert calls == ["once", "always", "always", "always"]
    assert len(em.listeners("e")) == 1


def test_once_is_removed_before_it_is_called(em):
    seen: list[list] = []

    def listener(event: Event) -> None:
        seen.append(em.listeners("e"))

    em.once("e", listener)
    em.emit("e", Event())
    assert seen == [[]]
    assert not em.has_listeners("e")


def test_once_listener_that_emits_again_is_not_called_twice(em):
    calls: list[str] = []

    def reentrant(event: Event) -> None:
        calls.append("once")
        em.emit("e", Event())

    em.once("e", reentrant)
    em.emit("e", Event())
    assert calls == ["once"]


def test_once_listener_reached_by_an_inner_emit_is_skipped_by_the_outer_one(em):
    calls: list[str] = []
    depth = [0]

    def outer(event: Event) -> None:
        calls.append("outer")
        if depth[0] == 0:
            depth[0] += 1
            em.emit("e", Event())  # consumes the once listener below

    em.on("e", outer, 10)
    em.once("e", recorder(calls, "once"), 0)
    em.emit("e", Event())
    assert calls == ["outer", "outer", "once"]  # not a second "once" from the outer emit


def test_once_is_called_once_across_threads(em):
    calls: list[int] = []
    em.once("e", lambda event: calls.append(1))
    threads = 8
    barrier = threading.Barrier(threads)

    def fire() -> None:
        barrier.wait()
        em.emit("e", Event())

    workers = [threading.Thread(target=fire) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert calls == [1]


def test_once_can_be_removed_with_off_before_it_fires(em):
    calls: list[str] = []
    listener = recorder(calls, "once")
    em.once("e", listener)
    assert em.off("e", listener) is True
    em.emit("e", Event())
    assert calls == []


def test_once_honours_priority(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "zero"), 0)
    em.once("e", recorder(calls, "once-high"), 5)
    em.once("e", recorder(calls, "once-low"), "last")
    em.emit("e", Event())
    em.emit("e", Event())
    assert calls == ["once-high", "zero", "once-low", "zero"]


# -- off -----------------------------------------------------------------------------------
def test_off_removes_a_listener_and_reports_it(em):
    calls: list[str] = []
    keep, drop = recorder(calls, "keep"), recorder(calls, "drop")
    em.on("e", keep)
    em.on("e", drop)
    assert em.off("e", drop) is True
    assert em.off("e", drop) is False
    assert em.off("unknown", keep) is False
    em.emit("e", Event())
    assert calls == ["keep"]


def test_off_only_touches_the_named_event(em):
    calls: list[str] = []
    listener = recorder(calls, "x")
    em.on("a", listener)
    em.on("b", listener)
    em.off("a", listener)
    em.emit("a", Event())
    em.emit("b", Event())
    assert calls == ["x"]


# -- propagation ---------------------------------------------------------------------------
def test_stop_propagation_skips_later_listeners(em):
    calls: list[str] = []

    def stopper(event: Event) -> None:
        calls.append("stopper")
        event.stop_propagation()

    em.on("e", recorder(calls, "before"), 10)
    em.on("e", stopper, 5)
    em.on("e", recorder(calls, "after"), 0)
    event = em.emit("e", Event())
    assert calls == ["before", "stopper"]
    assert event.is_propagation_stopped() is True


def test_emit_returns_the_event_it_was_given(em):
    event = Event()
    assert em.emit("nobody-listens", event) is event
    em.on("e", lambda e: None)
    assert em.emit("e", event) is event
    assert event.is_propagation_stopped() is False


def test_an_event_knows_the_name_it_was_emitted_under(em):
    names: list[str] = []
    em.on("alpha", lambda e: names.append(e.name))
    em.on("beta", lambda e: names.append(e.name))
    event = Event()
    em.emit("alpha", event)
    em.emit("beta", event)
    assert names == ["alpha", "beta"]


def test_a_listener_exception_propagates_and_stops_the_emit(em):
    calls: list[str] = []

    def boom(event: Event) -> None:
        raise RuntimeError("boom")

    em.on("e", boom, 1)
    em.on("e", recorder(calls, "later"), 0)
    with pytest.raises(RuntimeError, match="boom"):
        em.emit("e", Event())
    assert calls == []


# -- subscribers -----------------------------------------------------------------------------
class Spec:
    """A subscriber whose get_events() returns what the test gives it."""

    def __init__(self, events: dict, calls: list[str]) -> None:
        self.events = events
        self.calls = calls

    def get_events(self) -> dict:
        return self.events

    def __getattr__(self, name: str):
        if name.startswith("on_"):
            return _Bound(self, name)
        raise AttributeError(name)


class _Bound:
    """A stable, comparable stand-in for a bound method named ``name``."""

    def __init__(self, owner: Spec, name: str) -> None:
        self.owner, self.name = owner, name

    def __call__(self, event: Event) -> None:
        self.owner.calls.append(self.name)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Bound) and (other.owner, other.name) == (self.owner, self.name)

    def __hash__(self) -> int:
        return hash((id(self.owner), self.name))


SPEC_FORMS = {
    "method name": ({"e": "on_a"}, ["on_a"]),
    "one-tuple": ({"e": ("on_a",)}, ["on_a"]),
    "method and int": ({"e": ("on_a", 100)}, ["on_a"]),
    "method and first": ({"e": ("on_a", "first")}, ["on_a"]),
    "method and last": ({"e": ("on_a", "last")}, ["on_a"]),
    "PHP-style list pair": ({"e": ["on_a", -3]}, ["on_a"]),
    "list of pairs": ({"e": [("on_b", "last"), ("on_a", "first"), ("on_c", 0)]},
                      ["on_a", "on_c", "on_b"]),
    "list of names": ({"e": ["on_a", "on_b"]}, ["on_a", "on_b"]),
    "nested lists": ({"e": [["on_b", -1], ["on_a", 1]]}, ["on_a", "on_b"]),
}


@pytest.mark.parametrize("form", list(SPEC_FORMS))
def test_every_subscriber_form_attaches_and_detaches(em, form):
    spec, expected = SPEC_FORMS[form]
    calls: list[str] = []
    sub = Spec(spec, calls)
    em.attach(sub)
    em.emit("e", Event())
    assert calls == expected
    em.detach(sub)
    assert not em.has_listeners("e")
    em.emit("e", Event())
    assert calls == expected


def test_subscriber_methods_run_at_their_priorities_among_other_listeners(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "fifty"), 50)
    em.attach(Spec({"e": [("on_high", 100), ("on_low", "last")], "f": "on_f"}, calls))
    em.on("e", recorder(calls, "zero"), 0)  # "last" was 49 when it was added: zero follows
    em.emit("e", Event())
    em.emit("f", Event())
    assert calls == ["on_high", "fifty", "on_low", "zero", "on_f"]


def test_subscriber_with_real_methods():
    calls: list[str] = []

    class Sub:
        def get_events(self):
            return {"before": ("on_before", 100), "complete": "on_complete"}

        def on_before(self, event):
            calls.append("before")

        def on_complete(self, event):
            calls.append("complete")

    em, sub, other = Emitter(), Sub(), Sub()
    em.attach(sub)
    em.attach(other)
    em.emit("before", Event())
    assert calls == ["before", "before"]
    em.detach(sub)  # only this instance's methods go
    calls.clear()
    em.emit("before", Event())
    em.emit("complete", Event())
    assert calls == ["before", "complete"]
    em.detach(other)
    assert em.listeners() == {}


@pytest.mark.parametrize("spec", [{"e": 42}, {"e": ("on_a", 1, 2)}, {"e": None}])
def test_unreadable_subscriber_spec_is_rejected(em, spec):
    with pytest.raises(ValueError, match="spec"):
        em.attach(Spec(spec, []))
    assert not em.has_listeners()


def test_a_subscriber_with_a_bad_entry_attaches_nothing(em):
    class Typo:
        def get_events(self):
            return {"before": "on_before", "complete": ("on_complete", "firts")}

        def on_before(self, event):
            pass

        def on_complete(self, event):
            pass

    with pytest.raises(AttributeError, match="firts"):
        em.attach(Typo())
    assert not em.has_listeners()

    class BadPriority(Typo):
        def get_events(self):
            return {"before": "on_before", "complete": ("on_complete", True)}

    with pytest.raises(ValueError, match="priority"):
        em.attach(BadPriority())
    assert not em.has_listeners()


# -- cache -----------------------------------------------------------------------------------
def test_adding_a_listener_after_an_emit_is_seen_by_the_next_emit(em):
    calls: list[str] = []
    em.on("e", recorder(calls, "a"), 0)
    em.emit("e", Event())  # builds the sorted cache
    em.on("e", recorder(calls, "b"), 10)
    em.emit("e", Event())
    assert calls == ["a", "b", "a"]


def test_removing_a_listener_after_an_emit_is_seen_by_the_next_emit(em):
    calls: list[str] = []
    a = recorder(calls, "a")
    em.on("e", a)
    em.on("e", recorder(calls, "b"))
    em.emit("e", Event())
    em.off("e", a)
    em.emit("e", Event())
    assert calls == ["a", "b", "b"]


def test_a_listener_added_during_an_emit_runs_from_the_next_emit(em):
    calls: list[str] = []

    def adder(event: Event) -> None:
        calls.append("adder")
        em.on("e", recorder(calls, "added"), -1)

    em.once("e", adder)
    em.emit("e", Event())
    em.emit("e", Event())
    assert calls == ["adder", "added"]


# -- introspection ---------------------------------------------------------------------------
def test_listeners_are_listed_in_call_order(em):
    a, b, c = (lambda e: None), (lambda e: None), (lambda e: None)
    em.on("e", a, -1)
    em.on("e", b, 5)
    em.once("e", c, 0)
    em.on("f", a)
    assert em.listeners("e") == [b, c, a]
    assert em.listeners("nothing") == []
    assert em.listeners() == {"e": [b, c, a], "f": [a]}


def test_has_listeners(em):
    listener = lambda e: None  # noqa: E731
    assert em.has_listeners() is False
    assert em.has_listeners("e") is False
    em.on("e", listener)
    assert em.has_listeners() is True
    assert em.has_listeners("e") is True
    assert em.has_listeners("f") is False
    em.off("e", listener)
    assert em.has_listeners("e") is False
    assert em.has_listeners() is False


def test_adding_from_many_threads_keeps_every_listener(em):
    threads, per_thread = 8, 50
    barrier = threading.Barrier(threads)

    def add() -> None:
        barrier.wait()
        for _ in range(per_thread):
            em.on("e", lambda e: None)

    workers = [threading.Thread(target=add) for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    assert len(em.listeners("e")) == threads * per_thread


# -- two emitters as one (client + request) ----------------------------------------------------
def test_emit_merged_orders_both_emitters_by_priority_together():
    calls: list[str] = []
    client, request = Emitter(), Emitter()
    client.on("e", recorder(calls, "client-10"), 10)
    client.on("e", recorder(calls, "client-0"), 0)
    request.on("e", recorder(calls, "request-5"), 5)
    request.on("e", recorder(calls, "request-0"), 0)  # equal: the client's run first
    request.on("e", recorder(calls, "request-20"), 20)
    emit_merged("e", Event(), client, request)
    assert calls == ["request-20", "client-10", "request-5", "client-0", "request-0"]


def test_emit_merged_with_one_side_empty_or_missing():
    calls: list[str] = []
    client, request = Emitter(), Emitter()
    request.on("e", recorder(calls, "request"))
    emit_merged("e", Event(), client, request)
    client.on("e", recorder(calls, "client"))
    emit_merged("e", Event(), client, None)
    emit_merged("e", Event(), client, Emitter())
    assert calls == ["request", "client", "client"]


def test_emit_merged_stops_propagation_across_emitters():
    calls: list[str] = []
    client, request = Emitter(), Emitter()
    request.on("e", lambda e: (calls.append("stop"), e.stop_propagation()), 10)
    client.on("e", recorder(calls, "client"), 0)
    event = emit_merged("e", Event(), client, request)
    assert calls == ["stop"]
    assert event.is_propagation_stopped()


def test_emit_merged_consumes_once_listeners_of_both():
    calls: list[str] = []
    client, request = Emitter(), Emitter()
    client.once("e", recorder(calls, "client"))
    request.once("e", recorder(calls, "request"))
    emit_merged("e", Event(), client, request)
    emit_merged("e", Event(), client, request)
    assert calls == ["client", "request"]
    assert not client.has_listeners()
    assert not request.has_listeners()


def test_emit_merged_with_once_seen_runs_the_first_emitters_once_listeners_once_per_set():
    calls: list[str] = []
    client, request = Emitter(), Emitter()
    client.once("e", recorder(calls, "client-once"), 5)
    client.on("e", recorder(calls, "client"))
    request.once("e", recorder(calls, "request-once"))
    first_request: set = set()
    emit_merged("e", Event(), client, request, first_request)
    emit_merged("e", Event(), client, None, first_request)  # same request again (a retry)
    emit_merged("e", Event(), client, None, set())  # the next request
    assert calls == ["client-once", "client", "request-once", "client", "client-once", "client"]
    assert client.has_listeners("e")  # still registered for later requests
    assert not request.has_listeners("e")  # the request's own once is gone
    client.emit("e", Event())  # a plain emit consumes it as usual
    client.emit("e", Event())
    assert calls[-3:] == ["client-once", "client", "client"]
