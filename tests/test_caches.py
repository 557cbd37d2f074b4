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


def test_abc_caches_of_abcs_and_their_subclasses_and_re_cache_are_cleared():
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
    re.compile("memleak-cache-test-[0-9]+")
    assert _abc_cache_sizes(collections.abc.Iterable) != (0, 0)
    assert _abc_cache_sizes(Sized) != (0, 0)
    assert re._cache  # type: ignore[attr-defined]

    clear()

    assert _abc_cache_sizes(collections.abc.Iterable) == (0, 0)
    assert _abc_cache_sizes(Sized) == (0, 0)
    assert not re._cache  # type: ignore[attr-defined]
