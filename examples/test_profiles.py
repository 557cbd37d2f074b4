"""The memo cache: unbounded (leaks, fails on purpose) vs. bounded lru_cache (passes)."""

import itertools

import pytest
from myapp import profiles

# Request n is for user n % 100: many more users than the bounded cache holds (32).
_requests = ((f"req-{n}", n % 100) for n in itertools.count())


@pytest.mark.memcheck
def test_profile_page_leaky_memo():
    # EXPECTED TO FAIL: every call adds a page to a dict keyed by a fresh request id.
    request_id, user_id = next(_requests)
    page = profiles.render_profile_leaky(request_id, user_id)
    assert f"user-{user_id}" in page


# The bounded cache grows over its first 32 calls, then evicts one entry per new one. Measured
# from the start (default warmup=5: 26 calls before the last measurement), that fill-up fails
# the test as a linear leak; warmup=40 fills the cache before measuring starts.
# See docs/troubleshooting.md ("A cache looks like a leak").
@pytest.mark.memcheck(warmup=40)
def test_profile_page_bounded_cache():
    request_id, user_id = next(_requests)
    page = profiles.render_profile(request_id, user_id)
    assert f"user-{user_id}" in page
