"""Clear the standard library's caches between iterations, as CPython's regrtest does.

A cache that fills while a test runs (``re``'s compiled patterns, ``typing``'s generic aliases,
ABC subclass caches, ``linecache``) would otherwise look like growth. Only modules that are
already imported are touched; nothing is imported here.
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
_CLEARERS = (
    ("re", "purge"),
    ("struct", "_clearcache"),
    ("urllib.parse", "clear_cache"),
    ("fnmatch", "_compile", "cache_clear"),
    ("fnmatch", "_compile_pattern", "cache_clear"),
    ("linecache", "clearcache"),
    ("filecmp", "_cache", "clear"),
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


class CacheClearer:
    """Callable that clears the known caches; built once per test (the ABC list is cached)."""

    def __init__(self) -> None:
        self._abc_clears = _abc_clearers()
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
