"""One cause, one finding: the leaks of several tests that share a signature, grouped.

A library's test helper that leaks on every call makes every test that calls it leak: a suite
then reports hundreds of failures for one cause. As LeakCanary and memlab group their leak
traces, :func:`group_leaks` groups the unsuppressed leaks of a run by signature. A leak's
signatures (:func:`signatures`), each with its unit so that the rates of a group compare:

- its fingerprint (type, file name and the allocating line's text);
- when it was allocated inside an installed package (``Leak.details.allocated_in``), its type
  and that line: tests that call the package from lines of their own (other fingerprints)
  leak through it alike.

Two leaks with a signature in common are one cause, and so are leaks linked through others
(a test calling ``lib.invoke()`` whose allocation was charged to one line of the package, and
another test with the same call charged to the next line). A cause that only one test has is
no group: that leak is reported with its test alone.

Pure functions over the model: this module imports nothing of ours but the model.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from collections.abc import Iterable, Sequence

from .model import Leak, LeakGroup, TestResult

#: A group needs at least this many tests.
MIN_TESTS = 2

#: Parts of a retainer path that differ from test to test for the same holder: list indices
#: (and integer dict keys), object addresses.
_INDEX = re.compile(r"\[-?\d+\]")
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")


Signature = tuple[str, ...]


def signatures(leak: Leak) -> tuple[Signature, ...]:
    """What makes two leaks one cause, when they share any (see the module's docstring)."""
    own = (
        ("fingerprint", leak.fingerprint, leak.unit)
        if leak.fingerprint
        else ("source", leak.type, leak.source, leak.unit)
    )
    allocated_in = leak.details.allocated_in
    if allocated_in:
        return own, ("package", leak.type, _portable(allocated_in), leak.unit)
    return (own,)


def holder_text(retainer_path: str) -> str:
    """A retainer path without what differs between tests for the same holder: list indices
    become ``[...]``, addresses ``0x...``."""
    return _ADDRESS.sub("0x...", _INDEX.sub("[...]", retainer_path))


def group_leaks(tests: Sequence[TestResult]) -> tuple[LeakGroup, ...]:
    """The causes of the unsuppressed leaks of ``tests`` that at least :data:`MIN_TESTS` tests
    share, largest first (ties in report order). A leak of a single test is not a group.

    A group lists its tests' keys (``TestResult.key``) in report order, each once. Its holder
    is the most common retainer path among its leaks (:func:`holder_text`), its source, package
    line and suppression the most common of theirs (the first in report order among equals).
    Its rates are per test (the sum of that test's leaks in the group): their minimum and
    maximum, None when no leak has one.
    """
    members: list[tuple[str, Leak]] = [(t.key, lk) for t in tests for lk in t.active_leaks]
    parent = list(range(len(members)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    first_with: dict[Signature, int] = {}
    for i, (_, leak) in enumerate(members):
        for sig in signatures(leak):
            j = first_with.setdefault(sig, i)
            a, b = root(i), root(j)
            if a != b:
                parent[max(a, b)] = min(a, b)  # the root is the cause's first leak
    causes: dict[int, list[tuple[str, Leak]]] = {}
    for i, member in enumerate(members):
        causes.setdefault(root(i), []).append(member)
    groups = [_group(found) for _, found in sorted(causes.items())]
    kept = [g for g in groups if g.count >= MIN_TESTS]
    kept.sort(key=lambda g: -g.count)  # stable: ties keep report order
    return tuple(kept)


def _group(members: list[tuple[str, Leak]]) -> LeakGroup:
    leaks = [lk for _, lk in members]
    keys = list(dict.fromkeys(key for key, _ in members))
    rates: dict[str, float] = {}
    for key, lk in members:
        if lk.growth_rate is not None and math.isfinite(lk.growth_rate):
            rates[key] = rates.get(key, 0.0) + lk.growth_rate
    first = leaks[0]
    allocated_in = _most_common(lk.details.allocated_in for lk in leaks if lk.details.allocated_in)
    return LeakGroup(
        fingerprint=_fingerprint(leaks),
        type=first.type,
        source=_most_common(lk.source for lk in leaks) or first.source,
        count=len(keys),
        tests=tuple(keys),
        holder=_most_common(holder_text(lk.retainer_path) for lk in leaks if lk.retainer_path),
        allocated_in=allocated_in,
        rate_min=min(rates.values()) if rates else None,
        rate_max=max(rates.values()) if rates else None,
        unit=first.unit,
        suppression=_most_common(lk.suppression for lk in leaks if lk.suppression) or "",
    )


def _fingerprint(leaks: Sequence[Leak]) -> str:
    """The members' fingerprint when they share one; else one made from their package lines
    (type and line, the path from the package's folder on: the same in every environment)."""
    prints = {lk.fingerprint for lk in leaks}
    if len(prints) == 1 and "" not in prints:
        return prints.pop()
    lines = sorted({_portable(lk.details.allocated_in or lk.source) for lk in leaks})
    text = "|".join([leaks[0].type, *lines])
    return hashlib.sha1(text.encode("utf-8", "replace")).hexdigest()[:16]


def _portable(path: str) -> str:
    """A path from its installed package's folder on (``site-packages/``, ``dist-packages/``)."""
    norm = path.replace("\\", "/")
    for marker in ("site-packages/", "dist-packages/"):
        if norm.startswith(marker):
            return norm[len(marker) :]
        if "/" + marker in norm:
            return norm.rsplit("/" + marker, 1)[1]
    return norm


def _most_common(values: Iterable[str]) -> str | None:
    """The most frequent string (the first seen among equals), None when there is none."""
    counts = Counter(values)
    return counts.most_common(1)[0][0] if counts else None
