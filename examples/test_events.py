"""Event bus listeners: never removed (leaks, fails on purpose) vs. removed after use (passes)."""

import itertools

import pytest
from myapp import events

_ids = itertools.count()


@pytest.fixture
def bus():
    # A fresh bus for each call: function-scoped fixtures are set up and torn down around
    # every iteration, so what a call leaves on this bus is released with it.
    return events.EventBus()


@pytest.mark.memcheck
def test_request_leaves_listener_behind():
    # EXPECTED TO FAIL: each request subscribes a closure to the application-wide bus
    # (events.bus, a module global that lives as long as the app) and never removes it.
    seen = events.handle_request_leaky({"id": next(_ids), "user": "alice"})
    assert len(seen) == 1


@pytest.mark.memcheck
def test_request_removes_its_listener(bus):
    seen = events.handle_request({"id": next(_ids), "user": "alice"}, bus)
    assert len(seen) == 1
    assert seen[0].endswith(":db.query:1")
    assert bus.listener_count("db.query") == 0
