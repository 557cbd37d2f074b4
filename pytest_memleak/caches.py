"""Clear the standard library's caches between iterations, as CPython's regrtest does.

A cache that fills while a test runs (``re``'s compiled patterns, ``typing``'s generic aliases,
ABC subclass caches, ``linecache``; Hypothesis's caches of strategies) would otherwise look like
growth. Only modules that are already imported are touched; nothing is imported here.
"""

from __future__ import annotations

import sys
from typing import Any, Callable

_ABC_MODULES = ("collections.abc", "numbers", "io", "os", "typing")


_abcs_seen: tuple[tuple[object, ...], list[Any]] = ((), [])


def _abcs() -> list[Any]:
    """The ABCs of the standard library's modules in ``_ABC_MODULES`` that are imported,
    looked up again only when one of those modules was imported (or replaced) since."""
    global _abcs_seen
    abc = sys.modules.get("abc")
    if abc is None:
        return []
    key = (abc, *(sys.modules.get(name) for name in _ABC_MODULES))
    if _abcs_seen[0] == key:
        return _abcs_seen[1]
    found: list[Any] = []
    for mod in key[1:]:
        if mod is None:
            continue
        for obj in vars(mod).values():
            if isinstance(obj, abc.ABCMeta):
                found.append(obj)
    _abcs_seen = (key, found)
    return found


#: (module, attribute path) of cache-clearing callables, as in regrtest's ``clear_caches``.
#: ``re``'s pattern caches are not purged but put back as they were (see ``CacheClearer``); its
#: template cache is cleared.
_CLEARERS = (
    ("re", "_compile_repl", "cache_clear"),  # Python < 3.12
    ("re", "_compile_template", "cache_clear"),  # Python >= 3.12
    ("struct", "_clearcache"),
    ("urllib.parse", "clear_cache"),
    ("fnmatch", "_compile", "cache_clear"),
    ("fnmatch", "_compile_pattern", "cache_clear"),
    ("linecache", "clearcache"),
    ("filecmp", "_cache", "clear"),
    # Hypothesis's caches of strategies: a property test that builds strategies inside a
    # draw (attrs' nested classes) adds to them at every call, until the LRU one holds its
    # 1,024 entries (the other has no bound). Hypothesis clears the first itself this way.
    ("hypothesis.strategies._internal.utils", "clear_strategy_cache"),
    ("hypothesis.strategies._internal.utils", "clear_cache"),  # its name before ~6.150
    ("hypothesis.internal.conjecture.data", "STRUCTURAL_COVERAGE_CACHE", "clear"),
)


def _lookup(path: tuple[str, ...]) -> Any:
    obj: Any = sys.modules.get(path[0])
    for name in path[1:]:
        if obj is None:
            return None
        obj = getattr(obj, name, None)
    return obj


def _abc_clearers() -> list[Callable[[], object]]:
    """The ``_abc_caches_clear`` of each ABC and of each of its subclasses, as regrtest clears
    them (a subclass made later is not in the list: its caches die with it)."""
    found: list[Callable[[], object]] = []
    seen: set[int] = set()
    for abc_class in _abcs():
        try:
            classes = [*abc_class.__subclasses__(), abc_class]
        except Exception:  # a third-party metaclass must not break the loop
            continue
        for cls in classes:
            clear = getattr(cls, "_abc_caches_clear", None)
            if callable(clear) and id(cls) not in seen:
                seen.add(id(cls))
                found.append(clear)
    return found


#: ``re``'s compiled-pattern caches: plain dicts (``_cache2`` from Python 3.12).
_RE_CACHES = ("_cache", "_cache2")


class CacheClearer:
    """Callable that clears the known caches; built once per test (the ABC list is cached).

    ``re``'s compiled-pattern caches are put back as they were at the first call instead of
    purged: the same pattern objects, so a snapshot sees the same memory each time, while the
    body's own patterns (compiled while warming up) and those of the code that runs between
    tests (pytest's junitxml escapes every report with a pattern that takes ~1.3 ms to compile)
    are not compiled again after each call."""

    def __init__(self) -> None:
        self._abc_clears = _abc_clearers()
        re_module = sys.modules.get("re")
        self._re_caches: list[dict[Any, Any]] = [
            cache
            for name in _RE_CACHES
            if isinstance(cache := getattr(re_module, name, None), dict)
        ]
        self._re_kept: list[dict[Any, Any]] | None = None
        self._steps: list[Callable[[], object]] = []
        for path in _CLEARERS:
            fn = _lookup(path)
            if callable(fn):
                self._steps.append(fn)
        typing = sys.modules.get("typing")
        self._steps.extend(getattr(typing, "_cleanups", []) if typing is not None else [])
        clear_type_cache = getattr(sys, "_clear_type_cache", None)
        if clear_type_cache is not None:
            self._steps.append(clear_type_cache)

    def __call__(self) -> None:
        if self._re_kept is None:
            self._re_kept = [dict(cache) for cache in self._re_caches]
        else:
            for cache, kept in zip(self._re_caches, self._re_kept):
                if len(cache) != len(kept) or cache != kept:
                    cache.clear()
                    cache.update(kept)
        for step in self._steps:
            try:  # noqa: SIM105 - no context manager object on the measuring path
                step()
            except Exception:  # a third-party monkeypatch must not break the loop
                pass
        for clear in self._abc_clears:
            try:  # noqa: SIM105 - as above
                clear()
            except Exception:
                pass
