"""A minimal in-process event bus, and a request handler that uses it."""

from __future__ import annotations

from typing import Any, Callable

Listener = Callable[[str, dict], None]


class EventBus:
    def __init__(self) -> None:
        self._listeners: dict[str, list[Listener]] = {}

    def subscribe(self, topic: str, listener: Listener) -> None:
        self._listeners.setdefault(topic, []).append(listener)

    def unsubscribe(self, topic: str, listener: Listener) -> None:
        self._listeners.get(topic, []).remove(listener)

    def publish(self, topic: str, payload: dict) -> None:
        for listener in list(self._listeners.get(topic, ())):
            listener(topic, payload)

    def listener_count(self, topic: str) -> int:
        return len(self._listeners.get(topic, ()))


#: The application-wide bus (a module global, as in most apps).
bus = EventBus()


def handle_request_leaky(request: dict[str, Any], bus: EventBus = bus) -> list[str]:
    """Subscribes a per-request audit listener and forgets to remove it.

    The closure keeps ``request`` and ``seen`` alive for as long as the bus lives, and every
    later publish still calls it (so the growth even accelerates).
    """
    seen: list[str] = []

    def audit(topic: str, payload: dict) -> None:
        seen.append(f"{request['id']}:{topic}:{payload['n']}")

    bus.subscribe("db.query", audit)
    bus.publish("db.query", {"n": 1})
    return seen


def handle_request(request: dict[str, Any], bus: EventBus = bus) -> list[str]:
    """The same handler, removing its listener when the request is done."""
    seen: list[str] = []

    def audit(topic: str, payload: dict) -> None:
        seen.append(f"{request['id']}:{topic}:{payload['n']}")

    bus.subscribe("db.query", audit)
    try:
        bus.publish("db.query", {"n": 1})
    finally:
        bus.unsubscribe("db.query", audit)
    return seen
