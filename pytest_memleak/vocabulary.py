"""The words every stage shares: severities, verdicts, patterns, leak types and the metrics.

The bottom layer of the package: every module may import it, it imports nothing of ours. The
shipped JSON Schema (``schema.json``) spells the same enumerations; a test holds them equal.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args

Severity = Literal["none", "low", "medium", "high", "critical"]
#: Severities from the mildest up; "none" for no growth.
SEVERITIES: tuple[Severity, ...] = get_args(Severity)
#: The values ``fail_on`` accepts: the lowest severity that fails a test.
FAIL_ON_SEVERITIES: tuple[Severity, ...] = SEVERITIES[1:]
_RANKS: dict[str, int] = {s: i for i, s in enumerate(SEVERITIES)}


def severity_rank(severity: str) -> int:
    """Position in :data:`SEVERITIES` (-1 for an unknown word): a higher rank is worse."""
    return _RANKS.get(severity, -1)


def worst_severity(*severities: Severity) -> Severity:
    """The worst of ``severities`` ("none" when there are none)."""
    return max(severities, key=severity_rank, default="none")


VerdictName = Literal["ok", "leak", "error", "skipped"]
VERDICTS: tuple[VerdictName, ...] = get_args(VerdictName)

Pattern = Literal["stable", "linear", "step", "exponential", "leak", "plateau", "spike"]
PATTERNS: tuple[Pattern, ...] = get_args(Pattern)

LeakType = Literal[
    "python_object",
    "buffer_leak",
    "native_module",
    "file_handle",
    "socket",
    "thread",
    "subprocess",
    "connection_pool",
    "crypto_context",
    "unknown",
]
LEAK_TYPES: tuple[LeakType, ...] = get_args(LeakType)

#: Whose leak it is (a leak entry's ``origin``).
ORIGINS = ("test code", "code under test", "unknown")


@dataclass(frozen=True)
class Metric:
    """One measured (or derived) quantity of a snapshot."""

    name: str
    unit: Literal["bytes", "count"]
    #: memory: judged in bytes; count: resources that hit OS limits; derived: computed from
    #: the others (heap, external), shown but not judged on their own.
    kind: Literal["memory", "count", "derived"]
    #: Smallest growth per iteration of the repeat loop that counts (below it is allocator
    #: noise: glibc's per-thread caches drift 20-80 B/call on clean code; RSS moves in pages).
    floor: float | None = None
    #: Smallest total growth a soak or a watch can call a leak (no gc.collect runs between
    #: samples, so memory moves by more than in the repeat loop).
    soak_floor: float | None = None


METRICS: dict[str, Metric] = {
    m.name: m
    for m in (
        Metric("py_blocks", "count", "memory", floor=0.5, soak_floor=2000.0),
        Metric("malloc", "bytes", "memory", floor=160.0, soak_floor=512 * 1024.0),
        Metric("malloc_main", "bytes", "memory", floor=160.0),
        Metric("rss", "bytes", "memory", floor=16 * 1024.0, soak_floor=1024 * 1024.0),
        Metric("heap", "bytes", "derived"),
        Metric("external", "bytes", "derived"),
        Metric("fds", "count", "count", floor=1.0, soak_floor=3.0),
        Metric("threads", "count", "count", floor=1.0, soak_floor=3.0),
        Metric("children", "count", "count", floor=1.0, soak_floor=3.0),
    )
}
#: The memory metrics the repeat loop screens and judges.
JUDGED_MEMORY_METRICS = ("py_blocks", "malloc", "rss")
#: Resources counted per snapshot.
COUNT_METRICS = tuple(m.name for m in METRICS.values() if m.kind == "count")
FLOORS: dict[str, float] = {m.name: m.floor for m in METRICS.values() if m.floor is not None}
SOAK_FLOORS: dict[str, float] = {
    m.name: m.soak_floor for m in METRICS.values() if m.soak_floor is not None
}
UNITS: dict[str, str] = {m.name: m.unit for m in METRICS.values()}
