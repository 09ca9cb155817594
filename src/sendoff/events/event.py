"""The base event: anything emitted through an :class:`~sendoff.events.Emitter`."""

from __future__ import annotations


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
