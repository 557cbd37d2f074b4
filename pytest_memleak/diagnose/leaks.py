"""The leak entries of a leaking body: typed, located, with evidence and a fix.

:func:`leaks_for` turns the verdict's failing findings and the diagnosis into ``model.Leak``
entries: one per confirmed resource (fds, threads, children), then the memory that grew, one
entry per allocating line (typed by :mod:`.classify`); then the surviving objects, the retainer
path, the fingerprint, and the suppressions (:mod:`.suppress`).
"""

from __future__ import annotations

import hashlib
import linecache
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Optional

from .. import model
from ..detectors import native
from ..detectors.frames import location
from ..detectors.native import ModuleCharge
from ..detectors.sites import Site
from ..detectors.verdict import Verdict
from ..model import Finding
from ..series import Measurement
from ..units import format_size
from ..vocabulary import LeakType, Severity
from .classify import BUFFER_TYPES, Evidence, classify, native_module_name
from .passes import Diagnosis
from .suppress import entry_for, suppress

MEMORY_METRICS = ("py_blocks", "malloc", "rss")
#: Leak types the native-line rule may locate at the line the C-call profile charged.
NATIVE_KINDS = ("native_module", "connection_pool", "crypto_context")
#: The metric each resource leak type comes from.
METRIC_OF: dict[str, str] = {
    "file_handle": "fds",
    "socket": "fds",
    "thread": "threads",
    "subprocess": "children",
}
#: (metric, type, noun, inventory list, inventory count) of the resource leaks besides fds.
RESOURCE_KINDS: tuple[tuple[str, LeakType, str, str, str], ...] = (
    ("threads", "thread", "threads", "threads", "thread_count"),
    ("children", "subprocess", "child processes", "children", "child_count"),
)
#: Leak types whose objects a retainer path explains.
HELD_TYPES = ("python_object", "buffer_leak", "connection_pool", "crypto_context", "native_module")
#: Types that only wrap a leaked resource (already reported as such).
RESOURCE_WRAPPERS = (
    "_io.",
    "io.",
    "socket.",
    "threading.",
    "subprocess.",
    "_thread.",
    "builtins.",
    "dict",
    "list",
    "tuple",
    "function",
    "cell",
    "method",
    "weakref",
    "collections.deque",
)
#: The fields of a native module's charge that a leak's details keep.
NATIVE_DETAIL_KEYS = (
    "module",
    "category",
    "per_iter",
    "allocations",
    "frees",
    "functions",
    "range",
    "confidence",
)

RECOMMENDATIONS: dict[LeakType, str] = {
    "python_object": "Objects accumulate: remove them when done (unsubscribe, pop, clear), bound "
    "the cache (functools.lru_cache(maxsize=...)), or hold them through weakref.",
    "buffer_leak": "A buffer is kept alive on every call: drop the reference (clear the "
    "container), copy small slices out of large buffers instead of keeping memoryviews or "
    "views, close mmaps.",
    "native_module": "Native memory grows in an extension: free what you allocate (ctypes: pair "
    "every malloc with free), close or release the extension's objects, or use its cleanup API.",
    "file_handle": "A file descriptor stays open after every call: close it, or open it with "
    "'with open(...)'; os.open needs os.close.",
    "socket": "Sockets stay open: close them ('with socket.socket(...) as s:') or use a pool "
    "with a maximum size.",
    "thread": "A thread is started per call and never finishes: give it a stop signal and "
    "join() it, or reuse a pool (concurrent.futures.ThreadPoolExecutor).",
    "subprocess": "Child processes are left running or unreaped: wait() for them, use "
    "subprocess.run, or terminate()/kill() and then wait().",
    "connection_pool": "Database connections stay open: close them (with "
    "contextlib.closing(sqlite3.connect(...))) or use a pool with a maximum size.",
    "crypto_context": "An SSL context is created per call and kept: create one SSLContext and "
    "reuse it.",
    "unknown": "Memory grows but no allocation site was seen: run with --memleak-diagnose=always "
    "and more --memleak-trace-frames, or check native extensions.",
}

#: A place the memory grew: (path:line, bytes per call, the tracemalloc site if it was one).
Source = tuple[str, Optional[float], Optional[Site]]


@dataclass
class Leak:
    """A leak while it is built (mutable); :meth:`freeze` gives the report's."""

    id: str
    type: LeakType
    source: str
    severity: Severity
    estimated_size: float | None
    growth_rate: float | None
    evidence: list[str] = field(default_factory=list)
    recommendation: str = ""
    stack_trace: list[str] | None = None
    unit: str = "bytes"
    confidence: float = 0.0
    fingerprint: str = ""
    module: str | None = None
    retainer_path: str | None = None
    objects: dict[str, float] = field(default_factory=dict)
    details: dict[str, object] = field(default_factory=dict)  # model.LeakDetails' fields

    def freeze(self) -> model.Leak:
        return model.Leak(
            id=self.id,
            type=self.type,
            source=self.source,
            severity=self.severity,
            estimated_size=self.estimated_size,
            growth_rate=self.growth_rate,
            evidence=tuple(self.evidence),
            recommendation=self.recommendation,
            stack_trace=tuple(self.stack_trace) if self.stack_trace is not None else None,
            unit=self.unit,
            confidence=self.confidence,
            fingerprint=self.fingerprint,
            suppression=entry_for(self.fingerprint),
            module=self.module,
            retainer_path=self.retainer_path,
            objects=dict(self.objects),
            details=model.from_json(model.LeakDetails, self.details),
        )


@dataclass(frozen=True)
class _Facts:
    """What the leak entries are built from."""

    d: Diagnosis
    v: Verdict
    confirmed: frozenset[str]
    iterations: int  # measured calls

    @property
    def severity(self) -> Severity:
        return self.v.severity if self.v.severity != "none" else "low"

    def line_for(self, counter: str) -> str | None:
        """The line the native pass charged most with the counter's growth."""
        top = self.d.lines.get(counter) or []
        return top[0]["source"] if top else None

    def metric_rate(self, metric: str) -> float | None:
        """The finding's rate per call (in bytes when known)."""
        for f in self.v.findings:
            if f.metric == metric:
                return f.bytes_per_iter if f.bytes_per_iter is not None else f.rate_per_iter
        return None

    def memory_rate(self) -> float | None:
        """The largest confirmed memory growth per call (py_blocks, malloc, rss), in bytes."""
        rates = [
            f.bytes_per_iter
            for f in self.v.findings
            if f.failing and f.metric in MEMORY_METRICS and f.bytes_per_iter
        ]
        return max(rates) if rates else None


def leaks_for(m: Measurement, v: Verdict) -> list[model.Leak]:
    """Typed leak entries from the confirmed growth and the diagnosis (empty for clean tests)."""
    d = m.diagnosis
    if v.verdict != "leak" or not isinstance(d, Diagnosis):
        return []
    facts = _Facts(d, v, frozenset(m.confirmed), m.iterations)
    leaks = _resource_leaks(facts)
    if _memory_leaked(facts, leaks):
        leaks += _memory_leaks(facts, owners=list(leaks))
    _annotate(facts, leaks)
    return suppress([lk.freeze() for lk in leaks], m.settings.suppress)


def _new_leak(
    kind: LeakType,
    source: str,
    severity: Severity,
    rate: float | None,
    iterations: int,
    unit: str = "bytes",
) -> Leak:
    return Leak(
        id="",
        type=kind,
        source=source,
        severity=severity,
        estimated_size=(rate * iterations if rate is not None and unit == "bytes" else None),
        growth_rate=rate,
        unit=unit,
        recommendation=RECOMMENDATIONS[kind],
    )


# ---------------------------------------------------------------------------------- resources


def _count(res: Mapping[str, int | list[str]], key: str) -> int:
    value = res.get(key, 0)
    return value if isinstance(value, int) else 0


def _names(res: Mapping[str, int | list[str]], key: str) -> list[str]:
    value = res.get(key, [])
    return value if isinstance(value, list) else []


def _resource_leaks(facts: _Facts) -> list[Leak]:
    """One leak per confirmed resource metric, at the line that grew the count."""
    d, res = facts.d, facts.d.resources
    site_src = d.sites[0].source if d.sites else None
    leaks = []
    if "fds" in facts.confirmed:
        sockets, files = _count(res, "socket_count"), _count(res, "file_count")
        kind: LeakType = "socket" if sockets >= files and sockets else "file_handle"
        lk = _new_leak(
            kind,
            facts.line_for("fds") or site_src or "unknown",
            "high",
            facts.metric_rate("fds"),
            facts.iterations,
            unit="fds",
        )
        lk.evidence.append(
            f"{sockets if kind == 'socket' else files}"
            f" new descriptors in {d.iterations} traced iterations"
        )
        listing = _names(res, "sockets" if kind == "socket" else "files")
        lk.evidence += [f"open: {t}" for t in listing[:3]]
        leaks.append(lk)
    for metric, kind, noun, listing_key, count_key in RESOURCE_KINDS:
        if metric not in facts.confirmed:
            continue
        lk = _new_leak(
            kind,
            facts.line_for(metric) or site_src or "unknown",
            "high",
            facts.metric_rate(metric),
            facts.iterations,
            unit=metric,
        )
        lk.evidence.append(
            f"{_count(res, count_key)} new {noun} in {d.iterations} traced iterations"
        )
        label = "thread" if metric == "threads" else "child"
        lk.evidence += [f"{label}: {x}" for x in _names(res, listing_key)[:3]]
        leaks.append(lk)
    return leaks


# ------------------------------------------------------------------------------------- memory


def _memory_leaked(facts: _Facts, resource_leaks: list[Leak]) -> bool:
    """Memory grew beyond the leaked resources' own wrappers (or nothing else leaked)."""
    if resource_leaks and all(
        any(t.startswith(w) or t == w for w in RESOURCE_WRAPPERS) for t in facts.d.objects
    ):
        return False  # the memory is the leaked resources' own wrappers
    return bool(facts.confirmed & set(MEMORY_METRICS)) or not resource_leaks


def _native_rate(facts: _Facts) -> float:
    """Native growth per call: malloc over the untraced calls, or the RSS finding's rate (not
    when it is the Python heap's, see :func:`_rss_of_python_heap`)."""
    d, confirmed = facts.d, facts.confirmed
    malloc_rate = d.untraced_malloc_per_iter if "malloc" in confirmed else None
    rss = "rss" in confirmed and not _rss_of_python_heap(facts)
    rss_rate = facts.metric_rate("rss") if rss else None
    return max(malloc_rate or 0.0, rss_rate or 0.0)


def _rss_of_python_heap(facts: _Facts) -> bool:
    """RSS rose with the Python blocks while malloc, read, did not: the Python allocator's
    arenas are mapped outside malloc, and a leak of small objects can touch a new 16 KiB pool
    at each call long before it fills one (click's cache late in its suite: 18 blocks, 1.4 KiB
    a call, with RSS +16 KiB a call and malloc flat, was typed native_module, "allocated" at
    the test's line). Not native memory, then."""
    confirmed = facts.confirmed
    malloc_read = facts.d.untraced_malloc_per_iter is not None
    return "py_blocks" in confirmed and malloc_read and not confirmed & {"malloc", "malloc_main"}


def _memory_leaks(facts: _Facts, owners: list[Leak]) -> list[Leak]:
    """One leak per place the memory grew; memory at a leaked resource's own line is added to
    that resource's evidence instead."""
    d = facts.d
    native_rate = _native_rate(facts)
    mostly_native = native_rate > 0 and d.traced_per_iter < 0.5 * native_rate
    evidence = Evidence(
        objects=d.objects,
        top_site=d.sites[0] if d.sites else None,
        malloc_line=facts.line_for("malloc"),
        mostly_native=mostly_native,
        malloc_grew=bool(facts.confirmed & {"malloc", "malloc_main"}),
        py_blocks_grew="py_blocks" in facts.confirmed,
    )
    kind, module = classify(evidence)
    sources = _memory_sources(facts, kind, native_rate, mostly_native)
    if kind == "native_module" and module is None:
        module = native_module_name(sources[0][0] if sources else "", d.modules)
    leaks = []
    for src, rate, site in sources:
        owner = next((r for r in owners if _near(r.source, src)), None)
        if owner is not None:  # the memory of the leaked resource itself
            owner.evidence.append(
                f"memory at {src}: {format_size(rate or 0)}/iter "
                "(the resource's own objects and buffers)"
            )
            continue
        leaks.append(_memory_leak(facts, kind, module, (src, rate, site)))
    return leaks


def _memory_sources(
    facts: _Facts, kind: LeakType, native_rate: float, mostly_native: bool
) -> list[Source]:
    """Where the memory grew: the line charged with native growth, the top allocation sites
    (the largest, and user sites at least a tenth of it), or the malloc line (or unknown)."""
    d = facts.d
    malloc_line = facts.line_for("malloc")
    if mostly_native and malloc_line and kind in NATIVE_KINDS:
        return [(malloc_line, native_rate, None)]
    if not d.sites:
        return [(malloc_line or "unknown", native_rate or facts.metric_rate("py_blocks"), None)]
    top = d.sites[0]
    sources: list[Source] = []
    for s in d.sites[:3]:
        if s is top or (s.user and s.bytes_per_iter >= 0.1 * top.bytes_per_iter):
            # A resized block's traced growth counts its whole size from the first
            # reallocation on: the measured growth is the rate.
            rate = facts.memory_rate() if s.resized else s.bytes_per_iter
            sources.append((s.source, native_rate if mostly_native and s is top else rate, s))
            if s.resized:
                break
    return sources


def _memory_leak(facts: _Facts, kind: LeakType, module: str | None, source: Source) -> Leak:
    src, rate, site = source
    lk = _new_leak(kind, src, facts.severity, rate, facts.iterations)
    lk.module = module
    if site is not None:
        lk.stack_trace = list(site.stack[:10])
        if site.package:
            lk.details["allocated_in"] = site.package
        lk.evidence.append(_site_evidence(site))
    for f in facts.v.findings:
        if f.failing and f.metric in MEMORY_METRICS:
            lk.evidence.append(f"{f.metric}: {f.reason.split(';')[0]}")
    if kind == "buffer_leak":
        lk.details["buffer"] = _buffer_details(facts, site, rate)
    if kind == "native_module":
        _add_native_details(lk, facts.d, module)
    return lk


def _site_evidence(site: Site) -> str:
    if site.known_from:
        inner = location(*site.frames[-1]) if site.frames else site.source
        return (
            f"not traced: {site.source} reached {inner} through the same calls as the leak "
            f"traced in {site.known_from} earlier in this run, with the same surviving objects "
            "and holder"
        )
    if site.resized:
        return (
            f"tracemalloc: a block allocated at {site.source} was resized larger in "
            f"{site.growing_steps} of {site.steps} traced iterations and never shrank"
        )
    return (
        f"tracemalloc: {site.source} grew {format_size(site.bytes_per_iter)}/iter "
        f"({site.blocks_per_iter:+.1f} blocks/iter) in {site.growing_steps} "
        f"of {site.steps} traced iterations" + (" (numpy buffers)" if site.numpy else "")
    )


def _add_native_details(lk: Leak, d: Diagnosis, module: str | None) -> None:
    """The line the C-call profile charged, and the extension modules it names."""
    lines = d.lines.get("malloc")
    if lines:
        top = lines[0]
        lk.evidence.append(
            f"malloc in-use grew {format_size(top['per_iter'])}/iter at "
            f"{top['source']} ({top['allocations']} raising, "
            f"{top['frees']} lowering events)"
        )
    lk.details["native"] = [_native_detail(mm) for mm in d.modules[:5]]
    if module:
        lk.details["category"] = native.category(module)


def _native_detail(charge: ModuleCharge) -> dict[str, object]:
    fields: Mapping[str, object] = charge
    return {k: fields[k] for k in NATIVE_DETAIL_KEYS}


def _buffer_details(facts: _Facts, site: Site | None, rate: float | None) -> dict[str, object]:
    """Per buffer leak: its type, size per call, how long the buffers survived, is-leak and a
    confidence (how consistently the allocation site grew while traced)."""
    d = facts.d
    grown = [t for t in d.objects if t in BUFFER_TYPES]
    if site is not None and site.numpy:
        grown = ["numpy.ndarray", *[t for t in grown if t != "numpy.ndarray"]]
    elif not grown and site is not None:
        line_mods = native.modules_called_on_line(site.source)
        by_module = {
            "array": "array.array",
            "mmap": "mmap.mmap",
            "numpy": "numpy.ndarray",
            "builtins.memoryview": "memoryview",
        }
        grown = [by_module[m] for m in line_mods if m in by_module] or ["buffer"]
    steps = site.steps if site is not None else 0
    return {
        "buffer_type": grown[0] if grown else "buffer",
        "size_per_iter": rate,
        # Every buffer made since the loop began is still alive: the oldest survived all the
        # measured and traced calls.
        "age_iterations": facts.iterations + d.iterations,
        "is_leak": True,
        "confidence": round(site.growing_steps / steps, 2) if site is not None and steps else 0.5,
        "count_per_iter": {t: d.objects[t] for t in d.objects if t in BUFFER_TYPES},
    }


# ----------------------------------------------------------------------------------- all leaks


def _annotate(facts: _Facts, leaks: list[Leak]) -> None:
    """Ids, surviving objects, the finding each leak comes from, retainer, fingerprint."""
    d = facts.d
    if d.objects:
        survivors = ", ".join(f"{t} +{n:g}/iter" for t, n in list(d.objects.items())[:6])
        for lk in leaks:
            lk.objects = dict(list(d.objects.items())[:10])
            lk.evidence.append(f"surviving objects: {survivors}")
    retainer = next((r["path"] for r in d.retainers.values() if r.get("path")), None)
    failing = [f for f in facts.v.findings if f.failing]
    confidence = max((f.confidence for f in failing), default=0.5)
    for i, lk in enumerate(leaks, 1):
        lk.id = f"L{i}"
        finding = _finding_of(lk.type, failing)
        if finding is not None:
            lk.details.setdefault("pattern", finding.pattern)
            lk.details.setdefault("metric", finding.metric)
        if lk.type in HELD_TYPES and retainer:
            lk.retainer_path = retainer
        lk.fingerprint = fingerprint(lk.type, lk.source)
        lk.confidence = confidence


def _finding_of(kind: LeakType, failing: list[Finding]) -> Finding | None:
    """A resource leak's finding is its metric's; memory's is the largest memory finding."""
    wanted = METRIC_OF.get(kind)
    if wanted:
        return next((f for f in failing if f.metric == wanted), None)
    return max(
        (f for f in failing if f.metric not in METRIC_OF.values()),
        key=lambda f: f.bytes_per_iter or 0.0,
        default=None,
    )


def fingerprint(kind: str, source: str) -> str:
    """Type, file name and the allocating line's text: the same in every run. (Not the
    retainer root: its search has a time budget, so under load it is found in some runs only.)"""
    path, _, lineno = source.rpartition(":")
    text = linecache.getline(path, int(lineno)).strip() if lineno.isdigit() else ""
    base = path.replace("\\", "/").rsplit("/", 1)[-1] if path else source
    key = f"{kind}|{base}|{text or lineno}"
    return hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:16]


def _near(a: str, b: str, lines: int = 2) -> bool:
    """Same file and within ``lines`` lines of each other (``path:line`` sources)."""
    pa, _, la = a.rpartition(":")
    pb, _, lb = b.rpartition(":")
    return pa == pb and la.isdigit() and lb.isdigit() and abs(int(la) - int(lb)) <= lines
