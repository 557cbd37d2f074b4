"""The standard library's caches cleared before each snapshot (``caches.CacheClearer``)."""

from __future__ import annotations

import collections.abc
import re

import pytest

from pytest_memleak.caches import CacheClearer

_abc = pytest.importorskip("_abc")


def _abc_cache_sizes(cls: type) -> tuple[int, int]:
    _, cache, negative, _ = _abc._get_dump(cls)
    return len(cache), len(negative)


def test_abc_caches_of_abcs_and_their_subclasses_are_cleared():
    class Sized(collections.abc.Sized):  # a subclass of an ABC, made before the clearer
        def __len__(self) -> int:
            return 0

    clear = CacheClearer()

    class Plain:
        pass

    class Listy(list):  # type: ignore[type-arg]
        pass

    assert not isinstance(Plain(), collections.abc.Iterable)  # negative cache
    assert isinstance(Listy(), collections.abc.Iterable)  # positive cache
    assert not isinstance(Plain(), Sized)
    assert _abc_cache_sizes(collections.abc.Iterable) != (0, 0)
    assert _abc_cache_sizes(Sized) != (0, 0)

    clear()

    assert _abc_cache_sizes(collections.abc.Iterable) == (0, 0)
    assert _abc_cache_sizes(Sized) == (0, 0)


def test_re_caches_are_put_back_as_they_were_at_the_first_clear():
    caches = [re._cache] + ([re._cache2] if hasattr(re, "_cache2") else [])  # type: ignore[attr-defined]
    before = re.compile("memleak-cache-test-before")
    clear = CacheClearer()
    clear()  # the first clear keeps the caches as they are
    assert re.compile("memleak-cache-test-before") is before
    kept = [dict(cache) for cache in caches]

    new = [re.compile(f"memleak-cache-test-{n}") for n in range(600)]  # evicts old entries too
    assert all(cache != old for cache, old in zip(caches, kept))

    clear()

    assert [dict(cache) for cache in caches] == kept  # the same keys and the same objects
    assert all(
        a is b for cache, old in zip(caches, kept) for a, b in zip(cache.values(), old.values())
    )
    assert re.compile("memleak-cache-test-before") is before
    assert re.compile("memleak-cache-test-0") is not new[0]  # compiled after the first clear: gone


def test_a_pattern_compiled_between_tests_stays_compiled_and_new_patterns_are_clean(
    pytester, run_memleak
):
    # pytest's junitxml escapes every report with a module-level ``re.sub``: a pattern that
    # takes ~1.3 ms to compile. Purging re's cache at each snapshot compiled it again after
    # every checked test.
    pytester.makeconftest(
        """
        import re
        SEEN = []

        def pytest_runtest_logreport(report):
            SEEN.append(re.compile("[\\\\x00-\\\\x08\\\\x0b\\\\x0c\\\\x0e-\\\\x1f]+"))

        def pytest_terminal_summary(terminalreporter):
            same = sum(p is SEEN[0] for p in SEEN)
            terminalreporter.write_line("same pattern object: %d of %d" % (same, len(SEEN)))
        """
    )
    pytester.makepyfile(
        """
        import itertools
        import re
        import pytest

        counter = itertools.count()

        @pytest.mark.memcheck
        def test_new_pattern_each_call():
            assert re.match("call-%d" % next(counter), "call-0") is not None or True

        @pytest.mark.memcheck
        def test_same_pattern_each_call():
            assert re.fullmatch(r"[a-z]+-\\d+", "call-1")
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=2)
    assert run.test("test_new_pattern_each_call")["verdict"] == "ok"
    assert run.test("test_same_pattern_each_call")["verdict"] == "ok"
    run.result.stdout.fnmatch_lines(["same pattern object: 6 of 6"])


def test_hypothesis_caches_of_strategies_are_cleared():
    """A property test that builds strategies inside a draw (attrs' nested classes) added to
    Hypothesis's strategy cache and its structural-coverage tags at every call: clean tests
    ran their rounds to the iteration cap (attrs' suite: 141 s under --memleak-all, 59 s
    since, 9 s plain)."""
    pytest.importorskip("hypothesis")
    from hypothesis import strategies as st
    from hypothesis.internal.conjecture import data
    from hypothesis.strategies._internal import utils

    clear = CacheClearer()
    st.integers(0, 123_457)  # cached by its arguments
    data.structural_coverage(123_457)
    assert len(utils._STRATEGY_CACHE) > 0
    assert 123_457 in data.STRUCTURAL_COVERAGE_CACHE
    clear()
    assert len(utils._STRATEGY_CACHE) == 0
    assert data.STRUCTURAL_COVERAGE_CACHE == {}
