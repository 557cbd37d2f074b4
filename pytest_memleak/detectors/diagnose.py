"""The diagnosis pass: trace a few more iterations of a leaking body and name its leaks.

Runs only when a test is judged leaking (or with ``diagnose=always``), so clean tests never pay
for tracing. Two passes of a few iterations each:

1. tracemalloc (``trace_frames`` frames) with a snapshot per iteration -> leak sites; a type
   census before and after -> surviving objects per iteration; an inventory of fds, threads and
   children before and after -> the new resources;
2. when native memory or resources grew: a line tracer and a C-call profile hook reading malloc
   in-use bytes and the resource counters -> the line and the extension module that grew them.

``leaks_for`` then turns the evidence into typed leak entries with a source, a stack, a
retainer path, a fingerprint and a recommendation.
"""

from __future__ import annotations

import fnmatch
import hashlib
import linecache
import time
import tracemalloc
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import Any

from .. import model
from ..model import DiagnosisRecord
from ..units import format_size
from ..vocabulary import LeakType, Severity
from . import native, objects, resources
from .sites import Site, find_sites, traced_growth
from .verdict import judge

RESOURCE_METRICS = ("fds", "threads", "children")

BUFFER_TYPES = ("numpy.ndarray", "memoryview", "array.array", "mmap.mmap")
CONNECTION_TYPES = (
    "sqlite3.Connection",
    "sqlite3.Cursor",
    "psycopg",
    "pymysql.connections",
    "asyncpg.connection",
)
CRYPTO_TYPES = (
    "ssl.SSLContext",
    "_ssl._SSLContext",
    "ssl.SSLSocket",
    "ssl.SSLObject",
    "_ssl._SSLSocket",
)
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
#: Growing types too generic to look for a retainer path first.
GENERIC = {
    "int",
    "float",
    "str",
    "tuple",
    "cell",
    "builtin_function_or_method",
    "weakref.ReferenceType",
    "method",
    "frame",
    "code",
    "_thread.lock",
    "_thread.RLock",
    "encodings.utf_8.IncrementalDecoder",
    "weakref",
}
#: Plain containers: searched only when nothing more specific grew.
CONTAINERS = {"list", "dict", "set", "collections.deque", "collections.OrderedDict"}
RETAINER_BUDGET_S = 0.15

RECOMMENDATIONS = {
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

#: Known caches of the interpreter and common libraries whose growth is accepted by default.
#: Each is named; ``memleak_suppress = -NAME`` switches one off, ``-defaults`` all of them.
#: A rule matches a leak entry (dict of its fields) and says why it is accepted.
KNOWN_CACHES: dict[str, tuple[str, Any]] = {
    "openssl-cache": (
        "OpenSSL fills internal caches during roughly the first hundred SSL_CTX_new() calls of "
        "a process (no Python object survives; only _ssl's malloc grows, then stops)",
        lambda lk: lk.type == "native_module" and lk.module in ("_ssl", "ssl") and not lk.objects,
    ),
    "environ-strings": (
        "glibc keeps every distinct NAME=value string ever given to setenv/putenv (old environ "
        "pointers must stay valid); a fresh tmp_path per call set into os.environ "
        "(monkeypatch.setenv) makes a new one each call",
        lambda lk: lk.type == "native_module" and not lk.objects and _mostly_putenv(lk),
    ),
    "typing-cache": ("typing's generic-alias caches", lambda lk: _in_file(lk, "typing.py")),
    "re-cache": (
        "compiled regular expressions kept by re's own cache",
        lambda lk: _in_file(lk, "re/_compiler.py", "sre_compile.py", "re/__init__.py"),
    ),
    "linecache": ("source lines cached for tracebacks", lambda lk: _in_file(lk, "linecache.py")),
    "import-system": (
        "modules imported on first use",
        lambda lk: _in_file(lk, "importlib/_bootstrap.py", "importlib/_bootstrap_external.py"),
    ),
    "pytest-records": (
        "pytest's and pluggy's own per-item records",
        lambda lk: _in_file(lk, "_pytest/", "pluggy/"),
    ),
}


def _mostly_putenv(lk: Leak) -> bool:
    """The C-call profile charges at least half of the leak's growth to ``posix.putenv``."""
    rate = lk.growth_rate or 0.0
    for mod in lk.details.get("native") or []:
        functions = mod.get("functions") or {}
        total = sum(functions.values())
        if rate <= 0 or total <= 0:
            continue
        # functions hold totals over the traced calls; per_iter is the module's per call
        putenv_per_call = (mod.get("per_iter") or 0.0) * functions.get("posix.putenv", 0.0) / total
        if putenv_per_call >= 0.5 * rate:
            return True
    return False


def _in_file(lk: Leak, *parts: str) -> bool:
    path = lk.source.rpartition(":")[0].replace("\\", "/")
    return any(path.endswith(p) or f"/{p}" in path for p in parts)


@dataclass
class Leak:
    """A leak while the diagnosis builds it (mutable); :meth:`freeze` gives the report's."""

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
    details: dict[str, Any] = field(default_factory=dict)
    suppressed: bool = False
    suppressed_by: str | None = None

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
            module=self.module,
            retainer_path=self.retainer_path,
            objects=dict(self.objects),
            details=model.from_json(model.LeakDetails, self.details),
            suppressed=self.suppressed,
            suppressed_by=self.suppressed_by,
        )


@dataclass
class Diagnosis:
    iterations: int = 0
    seconds: float = 0.0
    sites: list[Site] = field(default_factory=list)
    objects: dict[str, float] = field(default_factory=dict)
    resources: dict[str, Any] = field(default_factory=dict)
    lines: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    modules: list[dict[str, Any]] = field(default_factory=list)
    retainers: dict[str, dict[str, Any]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    traced_per_iter: float = 0.0  # all traced growth per iteration (tracemalloc pass)
    untraced_malloc_per_iter: float | None = None  # malloc growth per iteration, untraced pass
    settled_rss_per_iter: float | None = None  # rss growth per iteration, untraced pass
    allocator_settled: bool = False  # the untraced pass read malloc and rss with glibc settled
    rss_rising_steps: int | None = None  # untraced calls after which rss was higher than before
    untraced_calls: int = 0

    def record(self) -> DiagnosisRecord:
        """The report's copy of what the diagnosis found."""
        return model.from_json(
            DiagnosisRecord,
            {
                "iterations": self.iterations,
                "seconds": round(self.seconds, 4),
                "sites": [s.to_dict() for s in self.sites],
                "objects": self.objects,
                "resources": self.resources,
                "lines": self.lines,
                "modules": self.modules,
                "retainers": self.retainers,
                "notes": self.notes,
                "traced_per_iter": self.traced_per_iter,
                "untraced_malloc_per_iter": self.untraced_malloc_per_iter,
                "settled_rss_per_iter": self.settled_rss_per_iter,
                "allocator_settled": self.allocator_settled,
                "rss_rising_steps": self.rss_rising_steps,
            },
        )


def run(loop: Any, verdict: Any) -> Generator[None, None, None]:
    """Extra iterations with tracing; stores a :class:`Diagnosis` on ``loop.m``."""
    m = loop.m
    s = loop.settings
    d = Diagnosis()
    m.diagnosis = d
    t0 = time.perf_counter()
    n = 6
    confirmed = set(m.confirmed)
    # Pass A, untraced: which objects survive, which resources are new, how malloc moves.
    inv_before = resources.capture(want_children="children" in confirmed)
    objects.census()  # a first call fills ABC caches (sets) that would count as new objects
    census_before = objects.census()
    # Native readings with glibc's per-thread cache filled and free pages trimmed at both
    # ends: what the allocator keeps for reuse is not growth (see probes.settle_allocator).
    d.allocator_settled = loop.probes.settle_allocator()
    malloc_start, rss_start = loop.probes.malloc(), loop.probes.rss()
    rss_seen = [rss_start]
    for _ in range(n):
        loop.before_iteration()
        yield
        loop.after_iteration()
        d.iterations += 1
        loop.settle()
        rss_seen.append(loop.probes.rss())
    d.rss_rising_steps = sum(1 for a, b in zip(rss_seen, rss_seen[1:]) if b > a)
    d.untraced_calls = n
    loop.probes.settle_allocator()
    d.untraced_malloc_per_iter = (loop.probes.malloc() - malloc_start) / n
    d.settled_rss_per_iter = (loop.probes.rss() - rss_start) / n
    census_after = objects.census(census_before)
    inv_after = resources.capture("children" in confirmed)
    d.objects = objects.growth(census_before, census_after, n)
    d.resources = resources.diff(inv_before, inv_after)
    d.notes.append(
        f"census: {census_before.seconds * 1000:.1f} ms + {census_after.seconds * 1000:.1f} ms"
    )
    if verdict.verdict == "leak" and judge(m).verdict != "leak":
        # What the untraced pass saw does not confirm the growth (no new resource, native
        # memory flat with the allocator settled): the test passes; tracing would cost for
        # nothing (a body with 100 threads spent minutes under the line tracer).
        loop.unfreeze()
        d.seconds = time.perf_counter() - t0
        d.notes.append(
            f"diagnosis: growth not confirmed after {d.iterations} untraced iterations "
            f"in {d.seconds:.2f} s"
        )
        return
    # Pass B, tracemalloc: where the surviving memory was allocated.
    tracing_before = tracemalloc.is_tracing()
    if not tracing_before:
        tracemalloc.start(s.trace_frames)
    snaps = [tracemalloc.take_snapshot()]
    try:
        for _ in range(n):
            loop.before_iteration()
            yield
            loop.after_iteration()
            d.iterations += 1
            loop.settle()
            snaps.append(tracemalloc.take_snapshot())
        d.sites = find_sites(snaps)
        d.traced_per_iter = traced_growth(snaps) / n
        del snaps
        if d.sites and not any(t not in GENERIC and t not in CONTAINERS for t in d.objects):
            # Leaked objects the collector does not track: find their holder by site.
            found = objects.find_by_site(
                {x.source for x in d.sites[:3]}, deadline=time.perf_counter() + RETAINER_BUDGET_S
            )
            if found is not None:
                d.retainers[objects.type_name(type(found[0]))] = {
                    "path": found[1],
                    "status": "found (module global, by allocation site)",
                }
            found = None
    finally:
        if not tracing_before:
            tracemalloc.stop()

    counters = {}
    if loop.probes.status["malloc"].available:
        counters["malloc"] = loop.probes.malloc
    if "fds" in confirmed:
        counters["fds"] = loop.probes.fds
    if "threads" in confirmed:
        import threading

        counters["threads"] = lambda: float(threading.active_count())
    if "children" in confirmed:
        counters["children"] = loop.probes.children
    native_suspect = bool(confirmed & {"malloc", "rss", *RESOURCE_METRICS}) or not d.sites
    if counters and native_suspect:
        att = native.Attributor(counters)
        for _ in range(n):
            loop.before_iteration()
            att.install()
            try:
                yield
            finally:
                att.uninstall()
            loop.after_iteration()
            d.iterations += 1
            loop.settle()
        for counter in counters:
            d.lines[counter] = att.top_lines(counter, n)
        if "malloc" in counters:
            d.modules = att.modules("malloc", n)

    candidates = [t for t in d.objects if t not in GENERIC]
    candidates.sort(key=lambda t: (t in CONTAINERS, "." not in t, -d.objects[t]))
    name: str | None = candidates[0] if candidates and not d.retainers else None
    # Samples are new objects: found among the young ones while the freeze still holds.
    samples = objects.find_new_instances(name, census_before, limit=3) if name else []
    loop.unfreeze()  # the retainer search must see the objects that existed before the loop
    budget_end = time.perf_counter() + RETAINER_BUDGET_S
    if name is not None:
        for sample in samples:
            left = budget_end - time.perf_counter()
            if left <= 0:
                d.notes.append("retainer search stopped: time budget used")
                break
            path, status = objects.retainer_path(sample, budget_s=left)
            d.retainers[name] = {"path": path, "status": status}
            if path:
                break
        sample = None
    del census_before, census_after, samples
    d.seconds = time.perf_counter() - t0
    d.notes.append(f"diagnosis: {d.iterations} traced iterations in {d.seconds:.2f} s")


# --------------------------------------------------------------------------------------------
def _fingerprint(kind: str, source: str) -> str:
    """Type, file name and the allocating line's text: the same in every run. (Not the
    retainer root: its search has a time budget, so under load it is found in some runs only.)"""
    path, _, lineno = source.rpartition(":")
    text = linecache.getline(path, int(lineno)).strip() if lineno.isdigit() else ""
    base = path.replace("\\", "/").rsplit("/", 1)[-1] if path else source
    key = f"{kind}|{base}|{text or lineno}"
    return hashlib.sha1(key.encode("utf-8", "replace")).hexdigest()[:16]


def _kind_from_objects(grown: dict[str, float]) -> tuple[LeakType, str | None]:
    """(leak type, module) from the growing object types."""
    for name in grown:
        if any(name.startswith(c) for c in CONNECTION_TYPES):
            return "connection_pool", native.extension_module(name.split(".")[0])
    for name in grown:
        if name in CRYPTO_TYPES:
            return "crypto_context", "_ssl"
    for name in grown:
        mod = name.split(".")[0] if "." in name else ""
        if mod and native.category(mod) in ("compression", "xml", "ffi"):
            return "native_module", native.extension_module(mod)
    for name in grown:
        if name in BUFFER_TYPES:
            return "buffer_leak", None
    return "python_object", None


BUFFER_MODULES = ("array", "mmap", "numpy", "builtins.memoryview")


def _kind_from_line(source: str) -> tuple[LeakType, str | None] | None:
    """Leak type from what the allocating line calls, for objects the census cannot see."""
    for mod in native.modules_called_on_line(source):
        top = mod.split(".")[0]
        if native.category(top) in ("compression", "xml", "ffi") and top != "builtins":
            return "native_module", top
        if native.category(top) == "database":
            return "connection_pool", native.extension_module(top)
        if any(mod == b or mod.startswith(b + ".") for b in BUFFER_MODULES):
            return "buffer_leak", None
    return None


def _buffer_details(
    d: Diagnosis, site: Site | None, rate: float | None, measured: int
) -> dict[str, Any]:
    """Per buffer leak: its type, size per call, how long the buffers survived, is-leak and a
    confidence (how consistently the allocation site grew while traced)."""
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
        "age_iterations": measured + d.iterations,
        "is_leak": True,
        "confidence": round(site.growing_steps / steps, 2) if site is not None and steps else 0.5,
        "count_per_iter": {t: d.objects[t] for t in d.objects if t in BUFFER_TYPES},
    }


def _memory_rate(v: Any) -> float | None:
    """The largest confirmed memory growth per call (py_blocks, malloc, rss), in bytes."""
    rates = [
        f.bytes_per_iter
        for f in v.findings
        if f.failing and f.metric in ("py_blocks", "malloc", "rss") and f.bytes_per_iter
    ]
    return max(rates) if rates else None


def _metric_rate(v: Any, metric: str) -> float | None:
    for f in v.findings:
        if f.metric == metric:
            rate: float = f.bytes_per_iter if f.bytes_per_iter is not None else f.rate_per_iter
            return rate
    return None


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


def leaks_for(m: Any, v: Any) -> list[model.Leak]:
    """Typed leak entries from the confirmed growth and the diagnosis (empty for clean tests)."""
    d: Diagnosis | None = m.diagnosis
    if v.verdict != "leak" or d is None:
        return []
    leaks: list[Leak] = []
    confirmed = set(m.confirmed)
    res = d.resources
    sev: Severity = v.severity if v.severity != "none" else "low"

    def line_for(counter: str) -> str | None:
        top = d.lines.get(counter) or []
        return top[0]["source"] if top else None

    site = d.sites[0] if d.sites else None
    site_src = site.source if site else None
    if "fds" in confirmed:
        kind: LeakType = (
            "socket"
            if res.get("socket_count", 0) >= res.get("file_count", 0) and res.get("socket_count")
            else "file_handle"
        )
        lk = _new_leak(
            kind,
            line_for("fds") or site_src or "unknown",
            "high",
            _metric_rate(v, "fds"),
            m.iterations,
            unit="fds",
        )
        items = res.get("sockets" if kind == "socket" else "files", [])
        lk.evidence.append(
            f"{res.get('socket_count' if kind == 'socket' else 'file_count', 0)}"
            f" new descriptors in {d.iterations} traced iterations"
        )
        lk.evidence += [f"open: {t}" for t in items[:3]]
        leaks.append(lk)
    resource_kinds: tuple[tuple[str, LeakType, str, str, str], ...] = (
        ("threads", "thread", "threads", "threads", "thread_count"),
        ("children", "subprocess", "child processes", "children", "child_count"),
    )
    for metric, kind, noun, listing, count in resource_kinds:
        if metric not in confirmed:
            continue
        lk = _new_leak(
            kind,
            line_for(metric) or site_src or "unknown",
            "high",
            _metric_rate(v, metric),
            m.iterations,
            unit=metric,
        )
        lk.evidence.append(f"{res.get(count, 0)} new {noun} in {d.iterations} traced iterations")
        label = "thread" if metric == "threads" else "child"
        lk.evidence += [f"{label}: {x}" for x in res.get(listing, [])[:3]]
        leaks.append(lk)

    memory = confirmed & {"py_blocks", "malloc", "rss"} or not leaks
    if leaks and all(any(t.startswith(w) or t == w for w in RESOURCE_WRAPPERS) for t in d.objects):
        memory = False  # the memory is the leaked resources' own wrappers
    if memory:
        kind, module = _kind_from_objects(d.objects)
        traced = d.traced_per_iter
        malloc_rate = d.untraced_malloc_per_iter if "malloc" in confirmed else None
        rss_rate = _metric_rate(v, "rss") if "rss" in confirmed else None
        native_rate = max(malloc_rate or 0.0, rss_rate or 0.0)
        mostly_native = native_rate > 0 and traced < 0.5 * native_rate
        sources: list[tuple[str, float | None, Site | None]] = []
        if kind == "python_object":
            # Objects the census cannot see (untracked, held by an old container): what does
            # the allocating line call? (sqlite3.connect -> connection_pool, zlib -> native)
            line = d.sites[0].source if d.sites and d.sites[0].user else line_for("malloc")
            if line:
                kind, module = _kind_from_line(line) or (kind, module)
        if mostly_native and kind == "python_object":
            kind = "native_module"
        if (
            mostly_native
            and line_for("malloc")
            and kind in ("native_module", "connection_pool", "crypto_context")
        ):
            sources.append((line_for("malloc") or "unknown", native_rate, None))
        elif d.sites:
            top = d.sites[0]
            for s in d.sites[:3]:
                if s is top or (s.user and s.bytes_per_iter >= 0.1 * top.bytes_per_iter):
                    # A resized block's traced growth counts its whole size from the first
                    # reallocation on: the measured growth is the rate.
                    rate = _memory_rate(v) if s.resized else s.bytes_per_iter
                    sources.append((s.source, rate, s))
                    if s.resized:
                        break
            if any(s.numpy for s in d.sites[:1]) and kind == "python_object":
                kind = "buffer_leak"
            if kind == "python_object" and top.user:
                kind, module = _kind_from_line(top.source) or (kind, module)
            if mostly_native:
                sources = [(src, native_rate if s is top else rate, s) for src, rate, s in sources]
        else:
            src = line_for("malloc") or "unknown"
            sources.append((src, native_rate or _metric_rate(v, "py_blocks"), None))
            malloc_grew = bool(confirmed & {"malloc", "malloc_main"})
            if (
                kind == "python_object"
                and malloc_grew
                and "py_blocks" not in confirmed
                and not d.objects
            ):
                # malloc grew, tracemalloc saw no Python allocation grow and no object
                # survived: the memory is native (ctypes, an extension's own malloc), even when
                # no single line could be charged with it.
                kind = "native_module"
            elif src == "unknown" and kind == "python_object":
                kind = "unknown"
        if kind == "native_module" and module is None:
            mods = d.modules
            src0 = sources[0][0] if sources else ""
            if src0 and native.ctypes_on_line(src0):
                module = "ctypes"
            elif mods:
                module = mods[0]["module"]
        resource_leaks = list(leaks)
        for src, rate, grown in sources:
            owner = next((r for r in resource_leaks if _near(r.source, src)), None)
            if owner is not None:  # the memory of the leaked resource itself
                owner.evidence.append(
                    f"memory at {src}: {format_size(rate or 0)}/iter "
                    "(the resource's own objects and buffers)"
                )
                continue
            lk = _new_leak(kind, src, sev, rate, m.iterations)
            lk.module = module
            if grown is not None:
                lk.stack_trace = grown.stack[:10]
                if grown.package:
                    lk.details["allocated_in"] = grown.package
                if grown.resized:
                    lk.evidence.append(
                        f"tracemalloc: a block allocated at {src} was resized larger in "
                        f"{grown.growing_steps} of {grown.steps} traced iterations and never "
                        "shrank"
                    )
                else:
                    lk.evidence.append(
                        f"tracemalloc: {src} grew {format_size(grown.bytes_per_iter)}/iter "
                        f"({grown.blocks_per_iter:+.1f} blocks/iter) in {grown.growing_steps} "
                        f"of {grown.steps} traced iterations"
                        + (" (numpy buffers)" if grown.numpy else "")
                    )
            for f in v.findings:
                if f.failing and f.metric in ("py_blocks", "malloc", "rss"):
                    lk.evidence.append(f"{f.metric}: {f.reason.split(';')[0]}")
            if kind == "buffer_leak":
                lk.details["buffer"] = _buffer_details(d, grown, rate, m.iterations)
            if kind == "native_module":
                top_line = (d.lines.get("malloc") or [{}])[0]
                if top_line:
                    lk.evidence.append(
                        f"malloc in-use grew {format_size(top_line['per_iter'])}/iter at "
                        f"{top_line['source']} ({top_line['allocations']} raising, "
                        f"{top_line['frees']} lowering events)"
                    )
                lk.details["native"] = [
                    {
                        k: mm[k]
                        for k in (
                            "module",
                            "category",
                            "per_iter",
                            "allocations",
                            "frees",
                            "functions",
                            "range",
                            "confidence",
                        )
                    }
                    for mm in d.modules[:5]
                ]
                if module:
                    lk.details["category"] = native.category(module)
            leaks.append(lk)

    if d.objects:
        survivors = ", ".join(f"{t} +{n:g}/iter" for t, n in list(d.objects.items())[:6])
        for lk in leaks:
            lk.objects = dict(list(d.objects.items())[:10])
            lk.evidence.append(f"surviving objects: {survivors}")
    retainer = next((r["path"] for r in d.retainers.values() if r.get("path")), None)
    metric_of = {
        "file_handle": "fds",
        "socket": "fds",
        "thread": "threads",
        "subprocess": "children",
    }
    failing = [f for f in v.findings if f.failing]
    for i, lk in enumerate(leaks, 1):
        lk.id = f"L{i}"
        wanted = metric_of.get(lk.type)
        finding = (
            next((f for f in failing if f.metric == wanted), None)
            if wanted
            else max(
                (f for f in failing if f.metric not in metric_of.values()),
                key=lambda f: f.bytes_per_iter or 0.0,
                default=None,
            )
        )
        if finding is not None:
            lk.details.setdefault("pattern", finding.pattern)
            lk.details.setdefault("metric", finding.metric)
        if (
            lk.type
            in (
                "python_object",
                "buffer_leak",
                "connection_pool",
                "crypto_context",
                "native_module",
            )
            and retainer
        ):
            lk.retainer_path = retainer
        lk.fingerprint = _fingerprint(lk.type, lk.source)
        lk.confidence = max((f.confidence for f in v.findings if f.failing), default=0.5)
    _suppress(leaks, m.settings.suppress)
    return [lk.freeze() for lk in leaks]


def _near(a: str, b: str, lines: int = 2) -> bool:
    """Same file and within ``lines`` lines of each other (``path:line`` sources)."""
    pa, _, la = a.rpartition(":")
    pb, _, lb = b.rpartition(":")
    return pa == pb and la.isdigit() and lb.isdigit() and abs(int(la) - int(lb)) <= lines


def _suppress(leaks: list[Leak], patterns: tuple[str, ...]) -> None:
    """Mark accepted leaks: the user's patterns (fnmatch on the fingerprint, source, type,
    module, object types, top frame), then the named known caches not switched off."""
    switched_off = {p[1:] for p in patterns if p.startswith("-")}
    user = [p for p in patterns if not p.startswith("-")]
    for lk in leaks:
        fields = [
            lk.fingerprint,
            lk.source,
            lk.type,
            lk.module or "",
            *lk.objects.keys(),
            *(lk.stack_trace or [])[:1],
        ]
        for pat in user:
            if any(fnmatch.fnmatchcase(f, pat) for f in fields if f):
                lk.suppressed, lk.suppressed_by = True, pat
                break
        if lk.suppressed or "defaults" in switched_off:
            continue
        for name, (why, matches) in KNOWN_CACHES.items():
            if name not in switched_off and matches(lk):
                lk.suppressed, lk.suppressed_by = True, f"known cache {name}: {why}"
                break
