"""The diagnosis's passes: call a leaking body a few more times and see what grows.

1. Untraced: which objects survive (a type census before and after), which resources are new
   (an inventory of fds, threads and children), how malloc and RSS move with glibc's caches
   settled. These findings can overturn the verdict; then the diagnosis ends here. (Fewer
   calls when only the Python heap's growth was confirmed: nothing to overturn.)
2. tracemalloc (``trace_frames`` frames), a snapshot after every call: the growing allocation
   sites.
3. When native memory or resources grew (and the Python allocations of pass 2 do not account
   for malloc's growth): a line tracer and a C-call profile hook reading the counters at every
   event: the line and the extension module that grew them.

Then a retainer path for a sample of the surviving objects. Every pass calls the body through
:func:`_iterations`, over the loop's :class:`~pytest_memleak.runner.Calls` protocol.
"""

from __future__ import annotations

import math
import sys
import time
import tracemalloc
from collections.abc import Generator
from dataclasses import dataclass, field
from types import FrameType
from typing import Callable, Protocol, TypedDict

from .. import model
from ..detectors import native, objects, resources, sites
from ..detectors.native import LineCharge, ModuleCharge
from ..detectors.objects import Census
from ..detectors.sites import Site
from ..detectors.verdict import Verdict
from ..detectors.verdict import judge as judge_verdict
from ..model import DiagnosisRecord
from ..runner import Calls
from ..series import Measurement
from ..units import format_size
from . import causes

#: Calls of the body in each pass.
CALLS = 6
#: Calls of the untraced pass when only the Python heap's growth was confirmed: it has no
#: native or resource growth to read again, only the surviving objects to count (a type must
#: gain an object at each call to be listed, as at 5 of the 6 calls otherwise).
HEAP_ONLY_CALLS = 3
RESOURCE_METRICS = ("fds", "threads", "children")
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
#: Traced calls after which a body whose largest growing site was already diagnosed in this
#: process, or grew at each of them, stops tracing (see ``_tracemalloc_pass``).
KNOWN_AT = 3
#: Traced calls after which a body whose largest growing site, grown at each of them, is one an
#: earlier diagnosis of this process found stops tracing (the cause is known: its sites are
#: still read from this call, and only those an earlier diagnosis saw grow are kept).
SEEN_AT = 1
#: Sites remembered as diagnosed (a bound on this process's memory over a long run).
MAX_KNOWN_SITES = 10_000
_known_sites: set[str] = set()
#: Time the C-call profile pass may spend (after its first 2 calls) before it stops tracing.
NATIVE_BUDGET_S = 0.3
#: Time after which the C-call profile stops tracing even within a call (its first two
#: included): a Hypothesis test of attrs' (100 examples a call, a million C calls, each read)
#: spent 20 minutes in one traced call late in a run.
NATIVE_CUT_S = 2.0
#: Time the tracemalloc pass may spend (after its first 2 calls, the fewest that show a site
#: growing twice) before it stops tracing: a slow body traced 6 times (tracing slows
#: allocation 6-35x) took minutes; a body of seconds (pyparsing's select_parser example: 1.6 s
#: a call, 15 s traced) paid 45 s for 3 traced calls, and an allocation-heavy body of
#: milliseconds (26k dicts a call, 5 ms plain) ~0.39 s for each traced call.
TRACE_BUDGET_S = 0.5
#: Traced calls after which a pass that has spent its budget stops.
BUDGET_AT = 2


class Retainer(TypedDict):
    """What holds a growing type's objects: the path from a root, or why none was found."""

    path: str | None
    status: str


@dataclass
class Diagnosis:
    """What the passes found (the measurement's ``diagnosis``, while and after they run)."""

    iterations: int = 0
    seconds: float = 0.0
    sites: list[Site] = field(default_factory=list)
    objects: dict[str, float] = field(default_factory=dict)
    resources: dict[str, int | list[str]] = field(default_factory=dict)
    lines: dict[str, list[LineCharge]] = field(default_factory=dict)
    modules: list[ModuleCharge] = field(default_factory=list)
    retainers: dict[str, Retainer] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    traced_per_iter: float = 0.0  # all traced growth per iteration (tracemalloc pass)
    untraced_malloc_per_iter: float | None = None  # malloc growth per iteration, untraced pass
    untraced_main_per_iter: float | None = None  # the same, glibc's main arena alone
    settled_rss_per_iter: float | None = None  # rss growth per iteration, untraced pass
    allocator_settled: bool = False  # the untraced pass read malloc and rss with glibc settled
    rss_rising_steps: int | None = None  # untraced calls after which rss was higher than before
    untraced_calls: int = 0
    #: Set by :func:`known_cause` (before a confirmation round): the untraced pass ran then,
    #: from the census it returned, and these causes' calls were reached (see ``causes``)
    early: bool = False
    census_before: Census | None = None
    known: list[causes.Reached] = field(default_factory=list)

    def record(self) -> DiagnosisRecord:
        """The report's copy of what the diagnosis found."""
        return model.from_json(
            DiagnosisRecord,
            {
                "iterations": self.iterations,
                "seconds": round(self.seconds, 4),
                "sites": [model.to_object(s) for s in self.sites],
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


def run(
    calls: Calls,
    verdict: Verdict,
    judge: Callable[[Measurement], Verdict] = judge_verdict,
    name: str = "",
) -> Generator[None, None, None]:
    """Extra calls of the body; stores a :class:`Diagnosis` on ``calls.measurement``.

    ``verdict`` is the measured rounds' verdict. When it is a leak, ``judge`` judges again after
    the untraced pass; if what that pass saw does not confirm the growth, the diagnosis ends.
    ``name``: the test's (a cause it traces is remembered under it, see :mod:`.causes`).
    """
    m = calls.measurement
    d = m.diagnosis if isinstance(m.diagnosis, Diagnosis) and m.diagnosis.early else None
    if d is None:
        d = Diagnosis()
        m.diagnosis = d
    t0 = time.perf_counter() - d.seconds
    try:
        yield from _passes(calls, d, m, verdict, judge, t0, name)
    except SlowingDown as slow:
        calls.unfreeze()
        d.seconds = time.perf_counter() - t0
        d.notes.append(f"diagnosis stopped after {d.iterations} calls: {slow}")


class SlowingDown(Exception):
    """The body's calls grow slower and slower (see ``Loop.slowing``): no more of them."""


def _guard(calls: Calls) -> None:
    why = calls.slowing()
    if why:
        raise SlowingDown(why)


def _passes(
    calls: Calls,
    d: Diagnosis,
    m: Measurement,
    verdict: Verdict,
    judge: Callable[[Measurement], Verdict],
    t0: float,
    name: str,
) -> Generator[None, None, None]:
    confirmed = set(m.confirmed)
    if d.early and d.census_before is not None:
        census_before = d.census_before  # (before the confirmation round: see known_cause)
        d.census_before = None
    else:
        census_before = yield from _untraced_pass(calls, d, confirmed)
    if verdict.verdict == "leak" and judge(m).verdict != "leak":
        # What the untraced pass saw does not confirm the growth (no new resource, native
        # memory flat with the allocator settled): the test passes; tracing would cost for
        # nothing (a body with 100 threads spent minutes under the line tracer).
        calls.unfreeze()
        d.seconds = time.perf_counter() - t0
        d.notes.append(
            f"diagnosis: growth not confirmed after {d.iterations} untraced iterations "
            f"in {d.seconds:.2f} s"
        )
        return
    _guard(calls)  # (the last untraced call: the traced ones are slower by themselves)
    types = _specific(d.objects)
    if d.early:
        found = d.known
    else:
        found = yield from _reach_known(calls, d, types, confirmed, census_before)
    if found:
        d.sites = _sites_of_cause(found, judge(m))
        d.traced_per_iter = sum(site.bytes_per_iter for site in d.sites)
        calls.unfreeze()
        d.seconds = time.perf_counter() - t0
        d.notes.append(
            f"tracemalloc: not run (the cause traced in {found[0][0].nodeid}: the same "
            f"surviving objects, holder and calls"
            + ("; it confirmed the growth: no confirmation round" if d.early else "")
            + f"); diagnosis: {d.iterations} iterations in {d.seconds:.2f} s"
        )
        return
    yield from _tracemalloc_pass(calls, d, m.settings.trace_frames)
    yield from _native_pass(calls, d, confirmed)
    _find_retainer(calls, d, census_before)
    if d.sites and not confirmed & causes.NOT_HEAP:
        held = [(t, r["path"]) for t, r in d.retainers.items() if r["path"]]
        causes.remember(d.sites[0], types, held, name)
    d.seconds = time.perf_counter() - t0
    d.notes.append(f"diagnosis: {d.iterations} traced iterations in {d.seconds:.2f} s")


def _specific(grown: dict[str, float]) -> frozenset[str]:
    """The surviving types that say what leaked: neither generic nor plain containers."""
    return frozenset(t for t in grown if t not in GENERIC and t not in CONTAINERS)


def known_cause(calls: Calls) -> Generator[None, None, bool]:
    """Before a confirmation round of the Python heap's growth alone, in a process that
    remembers a cause (see :mod:`.causes`): the untraced pass, then the known-cause check.
    True when the cause is recognised: the objects of a known leak, made by this test's calls,
    survive in the holder an earlier test's traced diagnosis found leaking; that confirms the
    growth of the first round without a confirmation round (:func:`run` then ends the
    diagnosis with its sites). Otherwise the confirmation round decides as usual, and the
    diagnosis goes on from this untraced pass."""
    if not causes.remembered():
        return False
    m = calls.measurement
    d = Diagnosis(early=True)
    m.diagnosis = d
    t0 = time.perf_counter()
    confirmed = {"py_blocks"}
    census_before = yield from _untraced_pass(calls, d, confirmed)
    _guard(calls)
    d.census_before = census_before
    d.known = yield from _reach_known(calls, d, _specific(d.objects), confirmed, census_before)
    d.seconds = time.perf_counter() - t0
    return bool(d.known)


def _reach_known(
    calls: Calls,
    d: Diagnosis,
    types: frozenset[str],
    confirmed: set[str],
    census_before: Census,
) -> Generator[None, None, list[causes.Reached]]:
    """The causes an earlier diagnosis of this process traced that this body's growth may be
    (see :mod:`.causes`): its surviving types, its holder (walking down from the holders found
    before, untraced) and, in one watched call, its calls. Sets the holder found; returns what
    the watched call reached (empty: not a known cause)."""
    held: list[causes.Cause] = []
    for cause in causes.candidates(types, confirmed):
        samples = objects.find_new_instances(cause.sample, census_before, limit=3)
        path = causes.held_as(cause, samples)
        del samples
        if path is not None:
            held.append(cause)
            d.retainers.setdefault(cause.sample, {"path": path[0], "status": path[1]})
    if not held:
        return []
    watch = causes.Watch(held)
    yield from _iterations(calls, d, tracer=watch, count=1)
    return watch.found


def _sites_of_cause(found: list[causes.Reached], verdict: Verdict) -> list[Site]:
    """The sites of a recognised cause: one per user's line whose objects survived, the
    measured growth of the Python heap shared out as they did."""
    grew = next((f for f in verdict.findings if f.metric == "py_blocks"), None)
    blocks_per_iter = grew.rate_per_iter if grew is not None else 0.0
    rate = (grew.bytes_per_iter or 0.0) if grew is not None else 0.0
    survived = sum(n for _, _, n in found)
    return [
        sites.known_site(frames, rate * n / survived, blocks_per_iter * n / survived, c.nodeid)
        for c, frames, n in found[: causes.MAX_SITES]
    ]


class Tracer(Protocol):
    def install(self) -> None: ...

    def uninstall(self) -> None: ...


#: CPython 3.11 computes a frame's line number for tracemalloc by scanning its code's line
#: table, unless the code has a line array, which 3.11 builds the first time it line-traces the
#: code (``_PyCode_InitLineArray``). A body's code and pytest's under it, traced once (a global
#: trace function that traces nothing: the line events cost C only), take half the time under
#: tracemalloc afterwards (click's traced calls: 1.14 s -> 0.51 s). Other versions: no effect.
LINE_ARRAYS = sys.version_info[:2] == (3, 11)


class _LineArrays:
    """Line-traces one call (the first it is installed for) so that the code it runs gets
    line arrays (see :data:`LINE_ARRAYS`); never when a trace function is already set (a
    debugger, coverage: the arrays exist then)."""

    def __init__(self) -> None:
        self._calls = 0
        self._set = False
        # A trace function makes a frame object for each frame it sees: those of the
        # generators this pass runs in (``run``, ``_untraced_pass``) would then survive the
        # call and count as new objects in the census. Made now, before it, by walking the
        # stack (each frame's object is made when first asked for).
        frame: FrameType | None = sys._getframe()
        while frame is not None:
            frame = frame.f_back

    @staticmethod
    def _nothing(frame: FrameType, event: str, arg: object) -> None:
        return None

    def install(self) -> None:
        self._calls += 1
        if self._calls == 1 and sys.gettrace() is None:
            sys.settrace(self._nothing)
            self._set = True

    def uninstall(self) -> None:
        if self._set:
            if sys.gettrace() is self._nothing:  # (a body that set its own keeps it)
                sys.settrace(None)
            self._set = False


def _iterations(
    calls: Calls,
    d: Diagnosis,
    *,
    after: Callable[[], object] | None = None,
    tracer: Tracer | None = None,
    stop: Callable[[], bool] | None = None,
    count: int = CALLS,
    guard: bool = False,
) -> Generator[None, None, None]:
    """``count`` calls of the body (one per ``yield``), each followed by the settling a
    snapshot needs and then by ``after``; ``tracer`` is installed during the calls only;
    ``stop`` ends the pass early when it returns True after a call. ``guard``: raises
    :class:`SlowingDown` before a call when the calls grow slower and slower (untraced calls
    only: tracing slows them by itself)."""
    for _ in range(count):
        if guard:
            _guard(calls)
        calls.before_call()
        if tracer is not None:
            tracer.install()
        try:
            yield
        finally:
            if tracer is not None:
                tracer.uninstall()
        calls.after_call()
        d.iterations += 1
        calls.settle()
        if after is not None:
            after()
        if stop is not None and stop():
            return


def _untraced_pass(
    calls: Calls, d: Diagnosis, confirmed: set[str]
) -> Generator[None, None, Census]:
    """Surviving objects, new resources, and malloc and RSS read with the allocator settled at
    both ends (what glibc keeps for reuse is not growth: see ``probes.settle_allocator``).
    Returns the census taken before (the retainer search looks for objects newer than it)."""

    def read_rss() -> None:
        rss_seen.append(calls.rss())

    heap_only = not confirmed & {"malloc", "malloc_main", "rss", *RESOURCE_METRICS}
    count = HEAP_ONLY_CALLS if heap_only else CALLS
    # Made before the census: our own objects must not count as survivors. (Line arrays for
    # the traced pass to come, made in the first call: they are memory, so only where this
    # pass's readings of it judge nothing, the heap's growth being confirmed.)
    arrays = _LineArrays() if heap_only and LINE_ARRAYS else None
    each_call = _iterations(calls, d, after=read_rss, count=count, tracer=arrays, guard=True)
    inv_before = resources.capture(want_children="children" in confirmed)
    calls.settle()  # the verdict's garbage: not counted as existing before
    objects.census()  # a first call fills ABC caches (sets) that would count as new objects
    census_before = objects.census()
    # The start is read in the state each call's reading is taken in (garbage collected,
    # caches cleared): what the verdict left for the collector and the caches the census
    # filled were freed at the first call otherwise, and read as memory the body freed (under
    # PYTHONMALLOC=malloc: 58 KiB and 4 KiB, and 10 KiB and 640 B/call leaks read as
    # -1 KiB and -43 B/call, not confirmed).
    calls.settle()
    d.allocator_settled = calls.settle_allocator()
    main = calls.reader("malloc_main")
    main_start = main() if main is not None else math.nan
    malloc_start, rss_start = calls.malloc(), calls.rss()
    rss_seen = [rss_start]
    yield from each_call
    d.rss_rising_steps = sum(1 for a, b in zip(rss_seen, rss_seen[1:]) if b > a)
    d.untraced_calls = count
    # malloc read before the trim and after it: trimming moves what glibc keeps (a small
    # native leak served from its per-thread cache can read as nothing after it, a buffer
    # grown in place as nothing before it); the growth is the larger. RSS read after the trim.
    calls.settle_allocator(trim=False)
    untrimmed = calls.malloc()
    main_untrimmed = main() if main is not None else math.nan
    calls.settle_allocator()
    d.untraced_malloc_per_iter = (max(untrimmed, calls.malloc()) - malloc_start) / count
    # The main arena alone as well: a thread churning memory in its own arena moves the total
    # by kilobytes over these few calls, which hid a 1.2 KiB/call leak of the main thread's
    # (read as -208 B/iter, not confirmed).
    if main is not None:
        main_growth = max(main_untrimmed, main()) - main_start
        if main_growth == main_growth:  # not NaN
            d.untraced_main_per_iter = main_growth / count
    d.settled_rss_per_iter = (calls.rss() - rss_start) / count
    census_after = objects.census(census_before)
    inv_after = resources.capture("children" in confirmed)
    d.objects = objects.growth(census_before, census_after, count)
    d.resources = resources.diff(inv_before, inv_after)
    d.notes.append(
        f"census: {census_before.seconds * 1000:.1f} ms + {census_after.seconds * 1000:.1f} ms"
    )
    return census_before


def _tracemalloc_pass(calls: Calls, d: Diagnosis, frames: int) -> Generator[None, None, None]:
    """Where the surviving memory was allocated: a tracemalloc snapshot after every call.

    Do not pay twice for one cause: once :data:`SEEN_AT` calls are traced, a body whose
    largest growing site grew at each of them and is one an earlier diagnosis of this process
    found (a library leak that hundreds of tests go through) stops tracing there. Its sites
    are still its own, read from that call; of them, only those an earlier diagnosis saw grow
    at each of at least 2 traced calls are kept (one call's growth also holds what the next
    call frees). After :data:`KNOWN_AT` calls, so does a body whose largest site is in
    the user's code and grew at each of those calls (its source is known). After
    :data:`BUDGET_AT` calls, so does one that has spent :data:`TRACE_BUDGET_S` (a slow or
    allocation-heavy body, traced). A leak every few calls is traced for all :data:`CALLS`
    calls."""
    # The retainer search by allocation site needs tracing on after the calls; otherwise it
    # stops before the grouping, which then allocates untraced.
    by_site = not any(t not in GENERIC and t not in CONTAINERS for t in d.objects)
    if by_site:
        # It tells the user's modules from the libraries' by their files: looked up here,
        # untraced, once per module (430 modules, traced: 45 ms in the zoo's first search).
        objects.user_modules()
    tracing_before = tracemalloc.is_tracing()
    if not tracing_before:
        tracemalloc.start(frames)
    snaps = [tracemalloc.take_snapshot()]
    early: list[sites.Grouped] = []
    early_sites: list[Site] = []  # what ``known`` found when it stopped the pass (no stacks)
    over_budget = False
    why = ""
    t0 = time.perf_counter()

    def after() -> None:
        snaps.append(tracemalloc.take_snapshot())

    def known() -> bool:
        # (Grouping allocates, traced: what it keeps past this check would swell every later
        # snapshot; it keeps nothing unless the pass stops here.)
        nonlocal over_budget, why
        spent = time.perf_counter() - t0
        if len(snaps) - 1 >= BUDGET_AT and spent > TRACE_BUDGET_S:
            over_budget = True
            return True
        traced = len(snaps) - 1
        if traced != KNOWN_AT and not (traced == SEEN_AT and _known_sites):
            return False
        grouped = [sites.group(s) for s in snaps]
        found = sites.find_sites_in(grouped, stacks=False)
        if not found:
            return False
        top = found[0]
        if top.source in _known_sites and (traced == KNOWN_AT or top.growing_steps == top.steps):
            why = "already diagnosed in this run"
            if traced < KNOWN_AT:
                found = [s for s in found if s.source in _known_sites]
        elif traced == KNOWN_AT and _steady(top):
            why = f"grew at each of {top.steps} calls"
        else:
            return False
        early[:] = grouped
        early_sites[:] = found
        return True

    first = d.iterations
    try:
        yield from _iterations(calls, d, after=after, stop=known)
        traced = d.iterations - first
        if not (by_site or tracing_before):
            tracemalloc.stop()
        stopped = bool(early)
        grouped = early or [sites.group(s) for s in snaps]
        snaps.clear()
        # (When ``known`` stopped the pass, it found the sites in these very snapshots.)
        d.sites = sites.with_stacks(early_sites) if stopped else sites.find_sites_in(grouped)
        d.traced_per_iter = sites.traced_growth_in(grouped) / max(1, traced)
        grouped.clear()
        if over_budget:
            d.notes.append(
                f"tracemalloc: {traced} of {CALLS} calls traced ({TRACE_BUDGET_S:g} s budget)"
            )
        elif stopped and d.sites:
            d.notes.append(
                f"tracemalloc: {traced} of {CALLS} calls traced (site {d.sites[0].source} {why})"
            )
        if d.sites:
            _remember(d.sites)
            if by_site:
                _retainer_by_site(d)  # needs tracemalloc still tracing
    finally:
        if not tracing_before and tracemalloc.is_tracing():
            tracemalloc.stop()


def _remember(found: list[Site]) -> None:
    """Note a diagnosis's sites as known: its largest, and every other that grew at each of at
    least 2 traced calls (within :data:`MAX_KNOWN_SITES`)."""
    for i, site in enumerate(found):
        if len(_known_sites) >= MAX_KNOWN_SITES:
            return
        if i == 0 or site.growing_steps == site.steps >= 2:
            _known_sites.add(site.source)


def _steady(site: Site) -> bool:
    """A site in the user's code that grew at every traced call: its source is known; more
    traced calls would only cost (tracing slows allocation 6-35x)."""
    return site.user and not site.resized and site.growing_steps == site.steps > 0


def _retainer_by_site(d: Diagnosis) -> None:
    """Leaked objects the collector does not track: find their holder by allocation site."""
    found = objects.find_by_site(
        {x.source for x in d.sites[:3]}, deadline=time.perf_counter() + RETAINER_BUDGET_S
    )
    if found is not None:
        d.retainers[objects.type_name(type(found[0]))] = {
            "path": found[1],
            "status": "found (module global, by allocation site)",
        }


def _native_pass(calls: Calls, d: Diagnosis, confirmed: set[str]) -> Generator[None, None, None]:
    """When native memory or resources grew (or tracemalloc found no site): which line and
    which extension module's C function grew the counters."""
    counters = _counters(calls, confirmed)
    native_suspect = bool(confirmed & {"malloc", "rss", *RESOURCE_METRICS}) or not d.sites
    if not (counters and native_suspect):
        return
    if _python_explains_malloc(d, confirmed):
        d.notes.append(
            "C-call profile: not run (the traced Python allocations grew "
            f"{format_size(d.traced_per_iter)}/iter, malloc "
            f"{format_size(d.untraced_malloc_per_iter or 0)}/iter: no native growth to charge)"
        )
        return
    att = native.Attributor(counters)
    t0 = time.perf_counter()
    att.deadline = t0 + NATIVE_CUT_S
    first = d.iterations

    def over_budget() -> bool:
        # The line tracer costs with the body's Python lines (a 10k-iteration loop: seconds a
        # call): at least 2 traced calls, then stop once the budget is spent.
        return att.cut or (d.iterations - first >= 2 and time.perf_counter() - t0 > NATIVE_BUDGET_S)

    yield from _iterations(calls, d, tracer=att, stop=over_budget)
    traced = d.iterations - first
    if att.cut:
        d.notes.append(
            f"C-call profile: cut {NATIVE_CUT_S:g} s into its call {traced} (of {CALLS}): "
            "that call's charges are left out"
        )
        traced -= 1  # (the cut call is no traced call)
    elif traced < CALLS:
        d.notes.append(
            f"C-call profile: {traced} of {CALLS} calls traced ({NATIVE_BUDGET_S:g} s budget)"
        )
    for counter in counters:
        d.lines[counter] = att.top_lines(counter, traced)
    if "malloc" in counters:
        d.modules = att.modules("malloc", traced)


#: What malloc may grow beyond the traced Python allocations and still be theirs: glibc counts
#: each chunk's header and rounding (8-24 B a block), tracemalloc the sizes asked for. A 1 KiB
#: ``bytes`` kept per call read 1,156 B traced and 1,163 B of malloc, and every such test paid
#: the C-call profile (6 line-traced calls, 48 malloc readings: late in a long run on 3.11,
#: where each reading takes ~200 us, 10 ms a test).
CHUNK_SLACK_MIN = 64.0
CHUNK_SLACK_SHARE = 0.05


def _python_explains_malloc(d: Diagnosis, confirmed: set[str]) -> bool:
    """malloc's growth is the Python allocations tracemalloc located: they grew per call as
    much as malloc did over the untraced calls (less glibc's chunk overhead, see
    :data:`CHUNK_SLACK_MIN`), neither RSS nor a resource count grew as well, and the largest
    site is in the user's code (the leak's type is then read from that line, never from the
    line the profile would charge). The line tracer, which reads malloc whenever the line
    changes (tens of microseconds a reading in a fragmented heap), would only charge those
    same allocations."""
    if confirmed & {"rss", *RESOURCE_METRICS} or not d.sites or not d.sites[0].user:
        return False
    malloc = d.untraced_malloc_per_iter
    if malloc is None:
        return False
    slack = max(CHUNK_SLACK_MIN, CHUNK_SLACK_SHARE * d.traced_per_iter)
    return d.traced_per_iter + slack >= malloc


def _counters(calls: Calls, confirmed: set[str]) -> dict[str, Callable[[], float]]:
    """The counters the native pass reads: malloc where it can be read, and the resource
    counts that were confirmed growing."""
    out: dict[str, Callable[[], float]] = {}
    for metric in ("malloc", *(r for r in RESOURCE_METRICS if r in confirmed)):
        read = calls.reader(metric)
        if read is not None:
            out[metric] = read
    return out


def _find_retainer(calls: Calls, d: Diagnosis, census_before: Census) -> None:
    """The retainer path of a sample of the most telling growing type (unfreezes the loop):
    one search from up to three samples at once, within :data:`RETAINER_BUDGET_S`."""
    candidates = [t for t in d.objects if t not in GENERIC]
    candidates.sort(key=lambda t: (t in CONTAINERS, "." not in t, -d.objects[t]))
    name = candidates[0] if candidates and not d.retainers else None
    # Samples are new objects: found among the young ones while the freeze still holds.
    samples = objects.find_new_instances(name, census_before, limit=3) if name else []
    calls.unfreeze()  # the retainer search must see the objects that existed before the loop
    if name is None or not samples:
        return
    path, status = objects.find_retainer(samples, budget_s=RETAINER_BUDGET_S)
    d.retainers[name] = {"path": path, "status": status}
    if status.startswith("gave up"):
        d.notes.append("retainer search stopped: time budget used")
