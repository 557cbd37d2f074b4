"""Surviving objects: a type census before and after the diagnosis iterations, and for a sample
of each growing type the retainer path from a root a person recognises (a module global, a
class attribute, a closure cell, a running frame). Both are bounded in time.
"""

from __future__ import annotations

import gc
import sys
import time
import types
from collections import Counter
from dataclasses import dataclass

from .frames import is_plugin_file

#: Containers the census also looks inside, to count objects the collector does not track
#: (bytes, numpy arrays, array.array, mmap, bytearray, memoryview, ...).
_SKIP_TYPES = (int, float, str, bool, type(None))


#: The way from a root down to an object: (object, the edge that reaches it), outermost first.
Path = list[tuple[object, str]]


def type_name(tp: type) -> str:
    mod = getattr(tp, "__module__", "builtins")
    name = getattr(tp, "__qualname__", tp.__name__)
    return name if mod == "builtins" else f"{mod}.{name}"


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
    """Up to ``limit`` live objects of type ``name`` that did not exist at the ``before`` census."""
    objs = gc.get_objects()
    found: list[object] = []
    try:
        for o in objs:
            if type_name(type(o)) == name and id(o) not in before.ids:
                found.append(o)
                if len(found) >= limit:
                    return found
        for r in gc.get_referents(*objs):
            if type_name(type(r)) == name and id(r) not in before.ids:
                found.append(r)
                if len(found) >= limit:
                    return found
    finally:
        del objs
    return found


def _module_roots() -> dict[int, str]:
    return {
        id(vars(m)): name
        for name, m in list(sys.modules.items())
        if m is not None and hasattr(m, "__dict__")
    }


def _edge(parent: object, child: object) -> str:
    if isinstance(parent, dict):
        for k, v in parent.items():
            if v is child:
                return f"[{k!r}]"
            if k is child:
                return f"[key {type(k).__name__}]"
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
        if parent.__closure__ and child in parent.__closure__:
            return ".__closure__"
        return ".__defaults__" if parent.__defaults__ is child else ".<ref>"
    if isinstance(parent, types.MethodType):
        return ".__self__" if parent.__self__ is child else ".__func__"
    d = getattr(parent, "__dict__", None)
    if d is child:
        return ".__dict__"
    if isinstance(d, dict):  # inline instance attributes (no separate dict object)
        for k, v in d.items():
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


def retainer_path(
    target: object, budget_s: float = 0.5, max_depth: int = 8
) -> tuple[str | None, str]:
    """(path, status) from a recognisable root down to ``target``; status says why it stopped."""
    if target is None:
        return None, "no sample object"
    deadline = time.perf_counter() + budget_s
    roots = _module_roots()
    this_frame = sys._getframe()
    ignore: set[int] = {id(this_frame)}
    start: Path = []
    first = (target, start)
    frontier: list[tuple[object, Path]] = [first]
    ignore.update((id(frontier), id(start), id(first)))
    seen = {id(target)}
    calls = 0
    while frontier:
        if time.perf_counter() > deadline:
            return None, f"gave up after {budget_s:.1f} s ({calls} referrer scans)"
        obj, path = frontier.pop(0)
        ignore.add(id(path))
        if len(path) >= max_depth:
            continue
        calls += 1
        referrers = gc.get_referrers(obj)
        ignore.add(id(referrers))
        for ref in referrers:
            rid = id(ref)
            if rid in seen or rid in ignore:
                continue
            if isinstance(ref, types.FrameType):
                if is_plugin_file(ref.f_code.co_filename):
                    continue
                code = ref.f_code
                head = f"frame of {code.co_name} ({code.co_filename}:{ref.f_lineno})"
                return _render(head, obj, path), "found (running frame)"
            if rid in roots:
                key = next((k for k, v in ref.items() if v is obj), "?")
                return _render(f"{roots[rid]}.{key}", obj, path), "found (module global)"
            if isinstance(ref, dict):
                owner = _dict_owner(ref)
                if isinstance(owner, type):
                    key = next((k for k, v in ref.items() if v is obj), "?")
                    head = f"{type_name(owner)}.{key}"
                    return _render(head, obj, path), "found (class attribute)"
                if owner is not None:  # an instance's __dict__: step through it
                    key = next((k for k, v in ref.items() if v is obj), "?")
                    seen.add(rid)
                    seen.add(id(owner))
                    _push(frontier, ignore, owner, path, obj, f".{key}")
                    continue
            seen.add(rid)
            _push(frontier, ignore, ref, path, obj, _edge(ref, obj))
        del referrers
    return None, "no root found"


def _push(
    frontier: list[tuple[object, Path]],
    ignore: set[int],
    node: object,
    path: Path,
    child: object,
    edge: str,
) -> None:
    """Queue ``node`` with its path; remember our own containers so they are never referrers."""
    step = (child, edge)
    new_path = [step, *path]
    entry = (node, new_path)
    ignore.update((id(step), id(new_path), id(entry)))
    frontier.append(entry)


def _dict_owner(d: dict[str, object]) -> object:
    """The object or class whose ``__dict__`` is ``d`` (None for a plain dict)."""
    for ref in gc.get_referrers(d):
        if isinstance(ref, type):
            if any(x is d for x in gc.get_referents(ref.__dict__)):
                return ref
        elif getattr(ref, "__dict__", None) is d:
            return ref
    return None


def _render(head: str, first: object, path: Path) -> str:
    parts = [f"{head} ({_label(first)})"]
    parts += [f"{edge} ({_label(obj)})" for obj, edge in path]
    return " -> ".join(parts)


_CONTAINERS = (list, dict, set)
LIBRARY_SCAN_S = 0.02  # time given to library modules' globals in find_by_site


def find_by_site(sources: set[str], *, deadline: float, tail: int = 3) -> tuple[object, str] | None:
    """(object, path) for a recently allocated object whose allocation site is in ``sources``,
    found at the end of a module-level container (list, dict, set, deque).

    Needs tracemalloc to be tracing since the object was made. This finds the holder of
    objects the collector does not track (bytes, empty dicts, numpy arrays), which a referrer
    search cannot start from.
    """
    import collections
    import itertools
    import tracemalloc

    from .sites import source_of

    def origin(obj: object) -> str | None:
        tb = tracemalloc.get_object_traceback(obj)
        return source_of(tb) if tb is not None else None

    from .frames import is_user_file

    mods = list(sys.modules.items())
    # The user's modules first (where leaks are held most often), then the libraries' for a
    # short while only: most of their globals are not containers of the test's objects.
    user = [kv for kv in mods if is_user_file(getattr(kv[1], "__file__", None) or "")]
    user_ids = {id(m) for _, m in user}
    library = [kv for kv in mods if id(kv[1]) not in user_ids]
    for modname, module in user + library:
        if time.perf_counter() > deadline:
            return None
        if id(module) not in user_ids and deadline - time.perf_counter() > LIBRARY_SCAN_S:
            deadline = time.perf_counter() + LIBRARY_SCAN_S
        namespace = getattr(module, "__dict__", None)
        if not isinstance(namespace, dict):
            continue
        for name, value in list(namespace.items()):
            if isinstance(value, list):
                items = [(f"[{i}]", value[i]) for i in range(max(0, len(value) - tail), len(value))]
            elif isinstance(value, dict):
                keys = list(itertools.islice(reversed(value), tail))
                items = [(f"[{k!r}]", value[k]) for k in keys]
            elif isinstance(value, collections.deque):
                items = [(f"[{len(value) - 1}]", value[-1])] if value else []
            else:
                continue
            for edge, item in items:
                if origin(item) in sources:
                    path = f"{modname}.{name} ({type_name(type(value))}) -> {edge} "
                    return item, path + f"({_label(item)})"
    return None
