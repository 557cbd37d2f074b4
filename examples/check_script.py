"""Leak-check callables without pytest: ``pytest_memleak.check``.

Run from the repository root:  .venv/bin/python examples/check_script.py
Exits 1 when a function that should be clean leaks, 0 otherwise. The leaky functions are
expected to be reported as leaking: that is the demonstration.
"""

from __future__ import annotations

import itertools
import sys
import tempfile
from pathlib import Path

from myapp import events, profiles, storage

from pytest_memleak import check


def main() -> int:
    ids = itertools.count()
    tmp = tempfile.TemporaryDirectory()
    db = str(Path(tmp.name) / "users.db")
    storage.create_schema(db)
    leaky_bus, clean_bus = events.EventBus(), events.EventBus()  # one each: see test_events.py

    def leaky_memo():
        n = next(ids)
        profiles.render_profile_leaky(f"req-{n}", n % 100)

    def bounded_cache():
        n = next(ids)
        profiles.render_profile(f"req-{n}", n % 100)

    cases = [
        # (name, callable, settings overrides, expected verdict)
        ("render_profile_leaky", leaky_memo, {}, "leak"),
        ("render_profile", bounded_cache, {"warmup": 40}, "ok"),
        (
            "handle_request_leaky",
            lambda: events.handle_request_leaky({"id": 1}, leaky_bus),
            {},
            "leak",
        ),
        ("handle_request", lambda: events.handle_request({"id": 1}, clean_bus), {}, "ok"),
        ("find_user_leaky", lambda: storage.find_user_leaky(db, 1), {}, "leak"),
        ("find_user", lambda: storage.find_user(db, 1), {}, "ok"),
    ]
    unexpected = 0
    for name, fn, overrides, expected in cases:
        # Same loop, verdict and settings (as marker keyword arguments) as the pytest plugin.
        result = check(fn, name=name, **overrides)
        mark = "as expected" if result.verdict == expected else f"UNEXPECTED (wanted {expected})"
        print(f"{name:22} {result.verdict:5} {result.iterations:3} iterations  {mark}")
        if result.verdict == "leak":
            print("    " + result.message.splitlines()[1].strip())
        unexpected += result.verdict != expected
    tmp.cleanup()
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
