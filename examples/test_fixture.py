"""The ``memcheck`` fixture: measure individual callables inside an ordinary (unmarked) test."""

import itertools

from myapp import events, profiles, storage


def test_handlers_do_not_leak(memcheck, tmp_path):
    path = str(tmp_path / "users.db")
    storage.create_schema(path)
    bus = events.EventBus()
    ids = itertools.count()

    # Each call runs the same loop as the marker (warm-up, measured rounds, confirmation) on
    # the lambda alone, and raises an AssertionError with the full report when it leaks.
    memcheck.assert_no_leak(lambda: storage.find_user(path, 1), label="find_user")
    memcheck.assert_no_leak(
        lambda: events.handle_request({"id": next(ids)}, bus), label="handle_request"
    )

    def render_next_profile():
        n = next(ids)
        return profiles.render_profile(f"req-{n}", n % 100)

    # Keyword arguments are the marker's settings, for this measurement only (warmup=40 fills
    # the 32-entry lru_cache before measuring; see test_profiles.py).
    memcheck.assert_no_leak(render_next_profile, label="render_profile", warmup=40)
