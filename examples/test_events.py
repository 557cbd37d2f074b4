"""Event bus listeners: never removed (leaks, fails on purpose) vs. removed after use (passes)."""

import itertools

import pytest
from myapp import events

_ids = itertools.count()


@pytest.fixture
def bus():
    # A bus per test, so listeners leaked by one test do not run (and grow) in the next.
    # Function-scoped fixtures are set up ONCE per test and shared by all its iterations.
    return events.EventBus()


@pytest.mark.memcheck
def test_request_leaves_listener_behind(bus):
    # EXPECTED TO FAIL: each request subscribes a closure to the bus and never removes it.
    seen = events.handle_request_leaky({"id": next(_ids), "user": "alice"}, bus)
    assert len(seen) == 1


@pytest.mark.memcheck
def test_request_removes_its_listener(bus):
    seen = events.handle_request({"id": next(_ids), "user": "alice"}, bus)
    assert len(seen) == 1
    assert seen[0].endswith(":db.query:1")
    assert bus.listener_count("db.query") == 0
