"""Surviving objects: a type census before and after the diagnosis iterations, and for a sample
of each growing type the retainer path from a holder a person recognises (a module global, a
class attribute, a function's closure cell, a functools cache, a running frame; a
WeakKeyDictionary whose value refers to its key said so). Both are bounded in time.
"""

from __future__ import annotations

import functools
import gc
import itertools
import sys
import time
import types
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from .frames import is_plugin_file

#: Containers the census also looks inside, to count objects the collector does not track
#: (bytes, numpy arrays, array.array, mmap, bytearray, memoryview, ...).
_SKIP_TYPES = (int, float, str, bool, type(None))


#: The way from a root down to an object: (object, the edge that reaches it), outermost first.
Path = list[tuple[object, str]]


def type_name(tp: type) -> str:
    """``module.qualname`` of a type (``qualname`` for builtins), for any type at all: the
    collector clears the dict and MRO of a class that is its own metaclass (h11's sentinels)
    and cannot free it, which leaves a type whose ``__name__`` lookup fails; a metaclass's
    ``__getattr__`` may raise anything."""
    try:
        mod = getattr(tp, "__module__", "builtins")
        name = getattr(tp, "__qualname__", None) or getattr(tp, "__name__", None)
    except Exception:
        mod, name = None, None
    if not isinstance(name, str):
        try:  # the type's own qualname, read without a lookup through its (cleared) MRO
            name = _QUALNAME.__get__(tp)
        except Exception:
            name = None
    if not isinstance(name, str):
        name = "<unnamed type>"
    return name if mod == "builtins" or not isinstance(mod, str) else f"{mod}.{name}"


_QUALNAME: Any = type.__dict__["__qualname__"]


@dataclass
class Census:
    counts: Counter[str]
    ids: set[int]
    seconds: float


def census(*mine: Census) -> Census:
    """Count live objects by type: tracked objects plus the untracked ones they reference.

    While the loop's ``gc.freeze()`` holds, ``gc.get_objects()`` lists only objects made since
    the loop began, so this costs what the test allocated, not what the process holds.
    """
    t0 = time.perf_counter()
    skip = {id(x) for c in mine for x in (c, c.counts, c.ids)}
    objs = [o for o in gc.get_objects() if id(o) not in skip]
    refs = [r for r in gc.get_referents(*objs) if not gc.is_tracked(r)]
    by_type: Counter[type] = Counter(map(type, objs))
    by_type.update(map(type, refs))
    ids = set(map(id, objs))
    ids.update(map(id, refs))
    del objs, refs
    counts: Counter[str] = Counter()
    for tp, n in by_type.items():
        if tp not in _SKIP_TYPES:
            counts[type_name(tp)] += n
    return Census(counts, ids, time.perf_counter() - t0)


def growth(
    before: Census, after: Census, iterations: int, min_per_iter: float = 0.8
) -> dict[str, float]:
    """Types whose count grew by at least ``min_per_iter`` per iteration: name -> per iteration."""
    out = {}
    for name, n in after.counts.items():
        d = (n - before.counts.get(name, 0)) / max(1, iterations)
        if d >= min_per_iter:
            out[name] = round(d, 2)
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def find_new_instances(name: str, before: Census, limit: int = 3) -> list[object]:
    """Up to ``limit`` live objects of type ``name`` that did not exist at the ``before`` census.

    A module's global is never one: an old dict the collector did not track (an empty cache,
    ``linecache.cache`` cleared between calls) is listed among the young objects once the test
    puts a tracked value in it, and was named as the holder of a leak of dicts."""
    objs = gc.get_objects()
    found: list[object] = []
    # (Only dicts and tuples are ever untracked by the collector, and so only they can be old
    # and listed among the young; a look at every module's globals costs ~1.7 ms.)
    globals_ = _module_global_ids() if name in ("dict", "tuple") else set()
    try:
        for o in objs:
            if type_name(type(o)) == name and id(o) not in before.ids and id(o) not in globals_:
                found.append(o)
                if len(found) >= limit:
                    return found
        for r in gc.get_referents(*objs):
            if type_name(type(r)) == name and id(r) not in before.ids and id(r) not in globals_:
                found.append(r)
                if len(found) >= limit:
                    return found
    finally:
        del objs
    return found


def _module_global_ids() -> set[int]:
    """The ids of the values of every module's globals."""
    ids: set[int] = set()
    for m in list(sys.modules.values()):
        try:
            namespace = getattr(m, "__dict__", None)
            if isinstance(namespace, dict):
                ids.update(map(id, list(namespace.values())))
        except Exception:  # a lazy module's proxy; a namespace changed while listed
            continue
    return ids


def _module_roots() -> dict[int, str]:
    return {
        id(vars(m)): name
        for name, m in list(sys.modules.items())
        if m is not None and hasattr(m, "__dict__")
    }


#: Levels of referrers the search climbs at most.
MAX_DEPTH = 10
#: Objects one level holds at most: ``gc.get_referrers`` compares every reference in the heap
#: with each of them, so a wide level costs as much as a few narrow ones.
LEVEL_WIDTH = 64
#: How far "the value refers to its key" is looked for below a WeakKeyDictionary's value.
_SELF_REF_DEPTH = 4
_SELF_REF_LIMIT = 2000
#: Text of a dict key shown in a path at most (longer reprs are cut).
_KEY_TEXT = 60
#: Holders found by earlier searches in this process, tried first (most recent first): the
#: same cause leaks in many tests, and a search from scratch gets slower as the heap grows.
KNOWN_HOLDERS = 8
#: References of each object a first, narrow walk down from a known holder follows (the
#: newest): click's cache, thousands of entries late in its suite, was read whole at each test
#: (~2.7 ms) to find the last test's entries among its newest.
KNOWN_FANOUT = 64
#: Objects a walk down from a known holder queues at most.
KNOWN_WALK_LIMIT = 20_000
#: Objects and levels the walk down from the user's globals visits at most (see
#: ``_Search.from_user_globals``): a few milliseconds where it finds nothing.
USER_WALK_LIMIT = 5_000
USER_WALK_DEPTH = 4


def retainer_path(
    target: object, budget_s: float = 0.5, max_depth: int = MAX_DEPTH
) -> tuple[str | None, str]:
    """(path, status) from a recognisable holder down to ``target``: :func:`find_retainer` of
    one object."""
    return find_retainer([] if target is None else [target], budget_s, max_depth)


def find_retainer(
    targets: Sequence[object], budget_s: float = 0.5, max_depth: int = MAX_DEPTH
) -> tuple[str | None, str]:
    """(path, status): the shortest chain of strong references from a holder a person
    recognises down to one of ``targets``; the status says which holder, or why none was found.

    Holders: a module global, a class attribute, a running frame (not the plugin's), a function
    (through a closure cell, its defaults or attributes: ``mod.make.<locals>.handle (function)
    -> cell 'seen' (list)``), a ``functools.lru_cache``/``functools.cache`` (named by the cached
    function: ``mod.lookup (functools cache) -> [key] (T)``). A ``weakref.WeakKeyDictionary``
    on the way whose value refers to its own key (so the entry never dies) is labelled so;
    when no holder above it is found in time, the path starts at that dictionary.

    The holders earlier searches found are tried first, walking down from each (cheap: no heap
    scan). Then the search climbs one level of referrers at a time, with one heap scan
    (``gc.get_referrers``) for the whole level: the time budget buys depth, not breadth.
    """
    if not targets:
        return None, "no sample object"
    search = _Search(budget_s)
    return (
        search.from_known(targets)
        or search.from_user_globals(targets)
        or search.run(targets, max_depth)
    )


def find_known_holder(targets: Sequence[object], budget_s: float) -> tuple[str, str] | None:
    """(path, status) from a holder an earlier search of this process found down to one of
    ``targets``, walking down from it (no heap scan: frozen objects are seen too); None when
    none reaches them within ``budget_s``."""
    if not targets:
        return None
    return _Search(budget_s).from_known(targets)


#: How to find a holder again without keeping it alive: returns (holder, its child on the
#: path), or None when it is gone.
Locator = Callable[[], "tuple[object, object] | None"]

_KNOWN: list[Locator] = []


def forget_holders() -> None:
    """Forget the holders earlier searches found (tests start from a clean slate)."""
    _KNOWN.clear()


def _remember(locate: Locator | None) -> None:
    if locate is None:
        return
    _KNOWN.insert(0, locate)
    del _KNOWN[KNOWN_HOLDERS:]


def _locator(ref: object, obj: object, module: str | None) -> Locator | None:
    """A :data:`Locator` of the holder ``ref`` (whose child on the path is ``obj``), holding no
    strong reference to either; None for a holder that cannot be found again (a frame)."""
    if module is not None and isinstance(ref, dict):
        key = next((k for k, v in _newest_first(ref) if v is obj), None)
        return None if key is None else functools.partial(_locate_global, module, key)
    if isinstance(ref, types.FrameType):
        return None
    try:
        wr = weakref.ref(ref)
    except TypeError:
        return None
    if isinstance(ref, types.FunctionType):
        attr = next(
            (
                a
                for a in ("__closure__", "__defaults__", "__kwdefaults__", "__dict__")
                if getattr(ref, a, None) is obj
            ),
            None,
        )
        return None if attr is None else functools.partial(_locate_attribute, wr, attr)
    if isinstance(ref, type) or _is_function_cache(ref):
        return functools.partial(_locate_owned_dict, wr)
    return None


def _locate_global(module: str, key: str) -> tuple[object, object] | None:
    namespace = getattr(sys.modules.get(module), "__dict__", None)
    if not isinstance(namespace, dict) or key not in namespace:
        return None
    return namespace, namespace[key]


def _locate_attribute(wr: weakref.ref[Any], attr: str) -> tuple[object, object] | None:
    fn = wr()
    child = getattr(fn, attr, None) if fn is not None else None
    return None if child is None else (fn, child)


def _locate_owned_dict(wr: weakref.ref[Any]) -> tuple[object, object] | None:
    """A class and its namespace, a functools cache and its cache dict."""
    owner = wr()
    if owner is None:
        return None
    if isinstance(owner, type):
        real = next((x for x in gc.get_referents(owner.__dict__) if isinstance(x, dict)), None)
        return None if real is None else (owner, real)
    own = getattr(owner, "__dict__", None)
    size = owner.cache_info().currsize
    cache = next(
        (
            x
            for x in gc.get_referents(owner)
            if isinstance(x, dict) and x is not own and len(x) == size
        ),
        None,
    )
    return None if cache is None else (owner, cache)


#: One object of a level, with its path down to a target.
_Entry = tuple[object, Path]


class _Search:
    """State of one :func:`find_retainer` call: what was visited, our own containers (never
    taken for referrers), labels that say more than the type, and the fallback path."""

    def __init__(self, budget_s: float) -> None:
        self.budget_s = budget_s
        self.deadline = time.perf_counter() + budget_s
        self.roots = _module_roots()
        self.ignore: set[int] = set()
        self.seen: set[int] = set()
        self.labels: dict[int, str] = {}
        self.fallback: tuple[str, str] | None = None
        self.scans = 0

    def run(self, targets: Sequence[object], max_depth: int) -> tuple[str | None, str]:
        self.ignore.update((id(sys._getframe()), id(targets)))  # our frame and the caller's list
        level: list[_Entry] = []
        self.ignore.add(id(level))
        for target in targets:
            self.seen.add(id(target))
            self._add(level, target, [])
        for _ in range(max_depth):
            if not level:
                break
            if time.perf_counter() > self.deadline:
                return self._gave_up()
            by_id = {id(entry[0]): entry for entry in level}
            objs = [entry[0] for entry in level]
            self.ignore.update((id(by_id), id(objs)))
            referrers = gc.get_referrers(*objs)
            self.scans += 1
            self.ignore.add(id(referrers))
            nxt: list[_Entry] = []
            self.ignore.add(id(nxt))
            for ref in referrers:
                if time.perf_counter() > self.deadline:
                    return self._gave_up()
                found = self._visit(ref, by_id, nxt)
                if found is not None:
                    return found
            del referrers, objs, by_id
            level = nxt
        return self.fallback or (None, "no root found")

    def from_known(self, targets: Sequence[object]) -> tuple[str, str] | None:
        """The path from a holder an earlier search found, walking down from it."""
        want = {id(t) for t in targets if t is not None}
        # Through each holder's newest references first (the objects of the test that leaks
        # now), then through all of them
        for fanout in (KNOWN_FANOUT, 0):
            for locate in list(_KNOWN):
                if time.perf_counter() > self.deadline:
                    return None
                pair = locate()
                if pair is None:
                    _KNOWN.remove(locate)
                    continue
                chain = self._walk_down([pair[1]], want, fanout=fanout)
                if chain is None:
                    continue
                found = self._holder_of([pair[0], *chain])
                if found is not None:
                    _KNOWN.remove(locate)
                    _KNOWN.insert(0, locate)
                    return found[0], found[1].removesuffix(")") + ", a holder found before)"
        return None

    def _holder_of(self, nodes: list[object]) -> tuple[str, str] | None:
        """(path, status) of a chain [holder, its child, ..., target] found walking down."""
        path: Path = []
        for i in range(len(nodes) - 1, 1, -1):
            path = self._step(nodes[i - 1], nodes[i], path)
        return self._holder(nodes[0], nodes[1], path)

    def from_user_globals(self, targets: Sequence[object]) -> tuple[str, str] | None:
        """The path from a global of the user's modules (or an attribute of a class defined
        there), walking down from them all at once (see :meth:`_walk_down`), through at most
        :data:`USER_WALK_LIMIT` objects and :data:`USER_WALK_DEPTH` levels: no heap scan. Most
        leaks are held there (a module-level list, a class registry, a module-level object's
        list), and each level of the search from below scans the whole heap (~4 ms in the
        zoo's run). Functions, caches and other callables are left to that search, which
        names them as holders."""
        want = {id(t) for t in targets if t is not None}
        holder_of: dict[int, object] = {}
        starts: list[object] = []
        for modname in sorted(user_modules()):
            namespace = getattr(sys.modules.get(modname), "__dict__", None)
            if not isinstance(namespace, dict):
                continue
            for value in list(namespace.values()):
                holder: object = namespace
                child: object | None = value
                if isinstance(value, type):
                    if getattr(value, "__module__", None) != modname:
                        continue
                    holder = value
                    child = next(
                        (x for x in gc.get_referents(value.__dict__) if isinstance(x, dict)), None
                    )
                elif callable(value) or isinstance(value, types.ModuleType):
                    continue
                if child is None or id(child) in holder_of:
                    continue
                if gc.is_tracked(child) or id(child) in want:
                    holder_of[id(child)] = holder
                    starts.append(child)
        chain = self._walk_down(starts, want, USER_WALK_LIMIT, USER_WALK_DEPTH, callables=False)
        if chain is None:
            return None
        top = holder_of[id(chain[0])]
        found = self._holder_of([top, *chain])
        if found is not None and len(chain) > 1:
            _remember(_locator(top, chain[0], self.roots.get(id(top))))
        return found

    def _walk_down(
        self,
        starts: Sequence[object],
        want: set[int],
        limit: int = KNOWN_WALK_LIMIT,
        depth: int = MAX_DEPTH,
        callables: bool = True,
        fanout: int = 0,
    ) -> list[object] | None:
        """[a start, ..., a wanted object]: the shortest way down by strong references from
        any of ``starts``, breadth first, not through types, modules, namespaces, frames or
        code (``callables=False``: nor through any callable), bounded in objects (``limit``),
        levels (``depth``) and time; ``fanout``: through the last (newest) that many
        references of each object only."""
        parent: dict[int, object | None] = {}
        for start in starts:
            if id(start) in want:
                return [start]
            parent[id(start)] = None
        level = list(starts)
        skip = (type, types.ModuleType, types.FrameType, types.CodeType)
        for _ in range(depth):
            nxt = []
            for obj in level:
                if time.perf_counter() > self.deadline:
                    return None
                # Newest first: a holder that grows by appending or inserting (a list, a
                # dict) keeps the objects of the test that leaks now at its end; its entries
                # from earlier tests number thousands late in a run (click: 1.9 ms a test).
                for ref in _newest_referents(obj, fanout):
                    rid = id(ref)
                    if rid in parent:
                        continue
                    if rid in want:
                        chain = [ref, obj]
                        while (up := parent[id(chain[-1])]) is not None:
                            chain.append(up)
                        return chain[::-1]
                    if len(parent) >= limit or rid in self.roots or isinstance(ref, skip):
                        continue
                    if not callables and callable(ref):
                        continue
                    parent[rid] = obj
                    nxt.append(ref)
            level = nxt
        return None

    def _gave_up(self) -> tuple[str | None, str]:
        if self.fallback is not None:
            return self.fallback
        return None, f"gave up after {self.budget_s:.2f} s ({self.scans} heap scans)"

    def _add(self, level: list[_Entry], obj: object, path: Path) -> None:
        """Queue ``obj`` (unless the level is full); remember our own containers."""
        if len(level) >= LEVEL_WIDTH or isinstance(obj, (type, types.ModuleType)):
            return  # a type's or a module's referrers are everything that uses it
        entry = (obj, path)
        level.append(entry)
        self.ignore.update((id(entry), id(path)))
        self.ignore.update(id(step) for step in path)

    def _visit(
        self, ref: object, by_id: dict[int, _Entry], nxt: list[_Entry]
    ) -> tuple[str | None, str] | None:
        """A holder's path when ``ref`` is one; else queue ``ref`` for the next level."""
        rid = id(ref)
        if rid in self.seen or rid in self.ignore:
            return None
        if isinstance(ref, types.FrameType) and is_plugin_file(ref.f_code.co_filename):
            return None
        entry = next((by_id[id(c)] for c in gc.get_referents(ref) if id(c) in by_id), None)
        if entry is None:
            return None
        obj, path = entry
        self.seen.add(rid)
        found = self._holder(ref, obj, path)
        if found is not None:
            _remember(_locator(ref, obj, self.roots.get(id(ref))))
            return found
        self._add(nxt, ref, self._step(ref, obj, path))
        return None

    def _holder(self, ref: object, obj: object, path: Path) -> tuple[str, str] | None:
        """(path, status) when ``ref``, which refers to ``obj``, is a holder a person knows."""
        if isinstance(ref, types.FrameType):
            code = ref.f_code
            head = f"frame of {code.co_name} ({code.co_filename}:{ref.f_lineno})"
            return self._render(f"{head} ({self._label(obj)})", path), "found (running frame)"
        if id(ref) in self.roots and isinstance(ref, dict):
            head = f"{self.roots[id(ref)]}.{_key_of(ref, obj)} ({self._label(obj)})"
            return self._render(head, path), "found (module global)"
        if isinstance(ref, type) and isinstance(obj, dict) and path and _is_class_dict(ref, obj):
            child = path[0][0]
            head = f"{type_name(ref)}.{_key_of(obj, child)} ({self._label(child)})"
            return self._render(head, path[1:]), "found (class attribute)"
        if isinstance(ref, types.FunctionType):
            return self._function(ref, obj, path)
        if (
            isinstance(ref, functools._lru_cache_wrapper)
            and _is_function_cache(ref)
            and not _owns_dict(ref, obj)
        ):
            head = f"{_qualified(ref)} (functools cache)"
            is_cache = isinstance(obj, dict) and len(obj) == ref.cache_info().currsize
            steps = path if is_cache else [(obj, "entry"), *path]
            return self._render(head, steps), "found (functools cache)"
        return None

    def _function(self, fn: types.FunctionType, obj: object, path: Path) -> tuple[str, str]:
        """A function holds ``obj``: through a closure cell (named by its variable), its
        defaults, or an attribute."""
        head = f"{_qualified(fn)} (function)"
        closure = fn.__closure__
        cell = path[0][0] if path else None
        names = fn.__code__.co_freevars
        var = next((n for n, c in zip(names, closure or ()) if c is cell), None)
        if closure is obj and len(path) >= 2 and var is not None:
            steps: Path = [(path[1][0], f"cell {var!r}"), *path[2:]]
            return self._render(head, steps), "found (closure cell)"
        if isinstance(obj, dict) and path and _owns_dict(fn, obj):
            child = path[0][0]
            steps = [(child, f".{_key_of(obj, child)}"), *path[1:]]
        else:
            steps = [(obj, _edge(fn, obj)), *path]
        return self._render(head, steps), "found (function)"

    def _step(self, ref: object, obj: object, path: Path) -> Path:
        """The path of ``ref`` (a referrer of ``obj``): an instance's ``__dict__`` is stepped
        through (``.name``), a WeakKeyDictionary's ``.data`` too."""
        if path and isinstance(obj, dict) and _owns_dict(ref, obj):
            child = path[0][0]
            new_path: Path = [(child, f".{_key_of(obj, child)}"), *path[1:]]
        else:
            new_path = [(obj, _edge(ref, obj)), *path]
        if (
            isinstance(ref, weakref.WeakKeyDictionary)
            and new_path[0][0] is getattr(ref, "data", None)
            and len(new_path) >= 2
        ):
            new_path = new_path[1:]
            self._weak_entry(ref, new_path)
        return new_path

    def _weak_entry(self, wkd: weakref.WeakKeyDictionary[Any, Any], path: Path) -> None:
        """Say so when the entry's value refers to its own key: the key never dies, nor the
        entry. That dictionary is then the fallback holder."""
        value = path[0][0]
        data: dict[Any, Any] = getattr(wkd, "data", {})
        key = next((k() for k, v in _newest_first(data) if v is value), None)
        if key is None or not _reaches(value, key):
            return
        label = f"{type_name(type(wkd))}: value refers to its key"
        self.labels[id(wkd)] = label
        if self.fallback is None:
            self.fallback = (
                self._render(f"a {label}", path),
                "found (WeakKeyDictionary entry whose value refers to its key; owner not found)",
            )

    def _label(self, obj: object) -> str:
        return self.labels.get(id(obj)) or _label(obj)

    def _render(self, head: str, path: Path) -> str:
        return " -> ".join([head, *(f"{edge} ({self._label(obj)})" for obj, edge in path)])


def _is_function_cache(obj: object) -> bool:
    """A ``functools.lru_cache``/``functools.cache`` of a function (not a cache another object
    keeps for itself, such as a sqlite3 connection's statement cache)."""
    return isinstance(obj, functools._lru_cache_wrapper) and isinstance(
        getattr(obj, "__wrapped__", None),
        (types.FunctionType, types.MethodType, types.BuiltinFunctionType),
    )


def _qualified(fn: object) -> str:
    """``module.qualname`` of a function (or of what a cache wrapper wraps)."""
    module = getattr(fn, "__module__", None) or "?"
    return f"{module}.{getattr(fn, '__qualname__', None) or type_name(type(fn))}"


def _owns_dict(owner: object, d: object) -> bool:
    """``d`` is ``owner``'s instance ``__dict__`` (not a class's namespace)."""
    if not isinstance(d, dict) or isinstance(owner, type):
        return False
    if not getattr(type(owner), "__dictoffset__", 0):
        return False  # no __dict__: do not let a __getattr__ run
    try:
        return getattr(owner, "__dict__", None) is d
    except Exception:
        return False


def _is_class_dict(cls: type, d: dict[Any, Any]) -> bool:
    return any(x is d for x in gc.get_referents(cls.__dict__))


def _reaches(start: object, goal: object) -> bool:
    """``goal`` is reachable from ``start`` by strong references (a few levels, bounded)."""
    if start is goal:
        return True
    seen = {id(start)}
    level = [start]
    for _ in range(_SELF_REF_DEPTH):
        nxt = []
        for obj in level:
            for ref in gc.get_referents(obj):
                if ref is goal:
                    return True
                if id(ref) in seen or isinstance(ref, (type, types.ModuleType)):
                    continue
                if len(seen) >= _SELF_REF_LIMIT:
                    return False
                seen.add(id(ref))
                nxt.append(ref)
        level = nxt
    return False


def _key_text(key: object) -> str:
    """A dict key as a path shows it: a short repr of plain values, else its type."""
    if isinstance(key, weakref.ref):
        referent = key()
        return f"weakref to {type_name(type(referent))}" if referent is not None else "dead weakref"
    if key is None or isinstance(key, (str, bytes, int, float, bool, tuple, frozenset)):
        try:
            text = repr(key)
        except Exception:
            text = f"key {type_name(type(key))}"
        return text if len(text) <= _KEY_TEXT else text[: _KEY_TEXT - 3] + "..."
    return f"key {type_name(type(key))}"


def _key_of(d: dict[Any, Any], value: object) -> str:
    """The key under which ``d`` holds ``value``: a plain name for a namespace (str key)."""
    for k, v in _newest_first(d):
        if v is value:
            return k if isinstance(k, str) and k.isidentifier() else f"[{_key_text(k)}]"
    return "?"


def _newest_referents(obj: object, fanout: int) -> Iterator[object]:
    """``obj``'s references, the newest first (a list's last items, a dict's last entries:
    key, then value); ``fanout``: only that many (a plain list or dict is not read whole)."""
    if fanout and type(obj) is dict and len(obj) * 2 > fanout:
        for key, value in itertools.islice(_newest_first(obj), fanout // 2):
            yield key
            yield value
        return
    if fanout and type(obj) is list and len(obj) > fanout:
        yield from reversed(obj[-fanout:])
        return
    refs = gc.get_referents(obj)
    yield from reversed(refs[-fanout:] if fanout else refs)


def _newest_first(d: dict[Any, Any]) -> Iterator[tuple[Any, Any]]:
    """A dict's items, newest first, without copying it: a holder that grows keeps the leaking
    test's entries at its end, after thousands of earlier tests' late in a run (reading them
    all to name one edge was 7 % of click's whole suite). Read from a copy when the dict
    changes meanwhile (a weak reference's callback)."""
    try:
        yield from reversed(d.items())
    except RuntimeError:  # changed size during iteration
        yield from reversed(list(d.items()))


def _edge(parent: object, child: object) -> str:
    if isinstance(parent, dict):
        for k, v in _newest_first(parent):
            if v is child:
                return f"[{_key_text(k)}]"
            if k is child:
                return f"[key {type_name(type(k))}]"
        return "[?]"
    if isinstance(parent, (list, tuple)):
        for i, v in enumerate(parent):
            if v is child:
                return f"[{i}]"
        return "[?]"
    if isinstance(parent, (set, frozenset)):
        return "{item}"
    if isinstance(parent, types.CellType):
        return ".cell_contents"
    if isinstance(parent, types.FunctionType):
        for attr in ("__closure__", "__defaults__", "__kwdefaults__", "__dict__"):
            if getattr(parent, attr, None) is child:
                return f".{attr}"
        return ".<ref>"
    if isinstance(parent, types.MethodType):
        return ".__self__" if parent.__self__ is child else ".__func__"
    if _owns_dict(parent, child):
        return ".__dict__"
    if getattr(type(parent), "__dictoffset__", 0):
        try:
            d = getattr(parent, "__dict__", None)
        except Exception:
            d = None
        if isinstance(d, dict):  # inline instance attributes (no separate dict object)
            for k, v in list(d.items()):
                if v is child:
                    return f".{k}"
    for slot in getattr(type(parent), "__slots__", ()) or ():
        if getattr(parent, slot, None) is child:
            return f".{slot}"
    return ".<ref>"


def _label(obj: object) -> str:
    if isinstance(obj, types.FunctionType):
        return f"function {obj.__qualname__}"
    return type_name(type(obj))


#: The module-level containers :func:`find_by_site` looks into.
_HOLDERS = (list, dict, deque, set)
#: Members of a module-level set :func:`find_by_site` looks at (a set keeps no order of
#: insertion: the leak's traced members can be anywhere in it).
SET_SCAN = 2048
LIBRARY_SCAN_S = 0.01  # time given to library modules' globals in find_by_site


#: Per module name: (the module, its namespace's size, the names bound to a container there
#: when last looked). A module's globals rarely change once it is imported: the scan visits
#: only these names again, and looks afresh when the namespace's size changed.
_container_names: dict[str, tuple[types.ModuleType, int, tuple[str, ...]]] = {}


def _containers_of(
    modname: str, module: types.ModuleType, namespace: dict[str, Any]
) -> tuple[str, ...]:
    cached = _container_names.get(modname)
    size = len(namespace)
    if cached is not None and cached[0] is module and cached[1] == size:
        return cached[2]
    try:
        names = tuple(k for k, v in namespace.items() if isinstance(v, _HOLDERS))
    except RuntimeError:  # changed size while iterated (another thread importing)
        names = ()
    _container_names[modname] = (module, size, names)
    return names


_user_modules: tuple[int, frozenset[str]] = (-1, frozenset())


def user_modules() -> frozenset[str]:
    """The names of the imported modules whose file is the user's (see
    ``frames.is_user_file``), found again only when modules were imported or removed."""
    global _user_modules
    from .frames import is_user_file

    count, names = _user_modules
    if count != len(sys.modules):
        mods = list(sys.modules.items())
        names = frozenset(
            name for name, m in mods if is_user_file(getattr(m, "__file__", None) or "")
        )
        _user_modules = (len(mods), names)
    return names


def find_by_site(sources: set[str], *, deadline: float, tail: int = 3) -> tuple[object, str] | None:
    """(object, path) for a recently allocated object whose allocation site is in ``sources``,
    found at the end of a module-level container (list, dict: its values or its keys, deque)
    or among the members of a module-level set.

    Needs tracemalloc to be tracing since the object was made. This finds the holder of
    objects the collector does not track (bytes, empty dicts, numpy arrays), which a referrer
    search cannot start from. It runs while tracemalloc traces, which makes every allocation
    costly: it visits only the names of each module's containers (see :func:`_containers_of`)
    and makes no label before a match.
    """
    import tracemalloc

    from .sites import source_of

    def origin(obj: object) -> str | None:
        tb = tracemalloc.get_object_traceback(obj)
        return source_of(tb) if tb is not None else None

    mods = list(sys.modules.items())
    # The user's modules first (where leaks are held most often), then the libraries' for a
    # short while only: most of their globals are not containers of the test's objects.
    user_names = user_modules()
    user = [kv for kv in mods if kv[0] in user_names]
    library = [kv for kv in mods if kv[0] not in user_names]
    in_library = False
    for n, (modname, module) in enumerate(user + library):
        if not in_library and modname not in user_names:
            in_library = True
            deadline = min(deadline, time.perf_counter() + LIBRARY_SCAN_S)
        if not n % 16 and time.perf_counter() > deadline:  # (a float per look, traced)
            return None
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name in _containers_of(modname, module, namespace):
            value = namespace.get(name)
            if not value:
                continue
            edge: str | None = None
            item: object = None
            if isinstance(value, list):
                i = len(value)
                while i > 0 and len(value) - i < tail:
                    i -= 1
                    item = value[i] if i < len(value) else None
                    if item is not None and origin(item) in sources:
                        edge = f"[{i}]"
                        break
            elif isinstance(value, dict):
                keys = reversed(value)
                looked = 0
                while looked < tail:
                    looked += 1
                    k = next(keys, None)
                    if k is None:
                        break
                    item = value.get(k)
                    if item is not None and origin(item) in sources:
                        edge = f"[{k!r}]"
                        break
                    if origin(k) in sources:  # the leaked objects are the keys (a registry)
                        item, edge = k, f"[key {_key_text(k)}]"
                        break
            elif isinstance(value, deque):
                item = value[-1]
                if origin(item) in sources:
                    edge = f"[{len(value) - 1}]"
            elif isinstance(value, set):
                # No order to find the newest by: every member, up to SET_SCAN (those made
                # before tracing began have no origin; a set that only the leak fills has a
                # traced member among its last calls' members).
                try:
                    for looked, member in enumerate(value):
                        if looked >= SET_SCAN:
                            break
                        if origin(member) in sources:
                            item, edge = member, "{item}"
                            break
                except RuntimeError:  # changed size while iterated (another thread)
                    pass
            if edge is not None:
                path = f"{modname}.{name} ({type_name(type(value))}) -> {edge} "
                return item, path + f"({_label(item)})"
    return None
