"""The repeat runner: warm up, then measure in rounds until the verdict is clear.

The loop is a generator of "call the body now" steps, so one implementation serves plain and
``async def`` bodies (see :func:`drive` and :func:`drive_async`). Between iterations it clears
the standard library's caches, runs ``gc.collect()`` and takes a snapshot with the cheap probes.
Objects that existed before the loop are moved out of the collector's way with ``gc.freeze()``
(no full collection first), so a collection costs what the test allocates, not what the whole
process holds.

Screening (per round of ``iterations`` snapshots, per metric) says ``clean``, ``suspect`` or
``ambiguous``. A metric is confirmed as growing only when it was suspect in two rounds and clean
in none (a confirmation round, as LeakCanary does); ambiguous rounds buy another round, up to
``max_iterations``. Confirmed growth then goes to the verdict and, when leaking (or when asked),
to the diagnosis pass, which traces.
"""

from __future__ import annotations

import gc
import math
import platform
import signal
import statistics
import sys
import threading
import time
import tracemalloc
from array import array
from collections.abc import Awaitable, Generator
from typing import Any, Callable, Generic, Protocol, TypeVar

from .caches import CacheClearer
from .hygiene import Hygiene
from .iteration import REPEAT_FAILURES, NotRepeatable
from .probes import (
    FIELDS,
    INDEX,
    WIDTH,
    Probes,
    derive,
    identities,
    os_thread_count,
    other_threads_cpu,
)
from .series import Measurement
from .settings import Settings
from .stats import analyse
from .units import format_size
from .vocabulary import COUNT_METRICS, FLOORS, JUDGED_MEMORY_METRICS, UNITS

#: Fewest measured calls from which a round can show a trend (fewer cannot reach p < 0.01:
#: the reason ``iterations`` is at least 5).
MIN_MEASURED = 5
#: RSS growth since the loop began at which it stops at once (a runaway leak): the test fails
#: as critical instead of taking the machine's memory (``max_rss``, when set, stops it sooner).
RUNAWAY_GROWTH = 1024**3
#: Passes of the measuring path before the baseline (free lists, first-call caches). Before
#: 3.11 a function's first call leaves a frame cached for good, and 8 passes made clean bodies
#: stop flat on 3.9; from 3.11 (frames on the interpreter's own stack) 3 give the same
#: verdicts (the zoo, the real suites) for 5 passes fewer per test that reaches the rounds.
PRIME_PASSES = 8 if sys.version_info < (3, 11) else 3
#: The same before the quick check's baseline (the path is warm after the first test): what a
#: pass too few leaves behind shows as movement, which ends the quick check (the full rounds run).
QUICK_PRIME_PASSES = 2
#: Measured iterations after which a body whose exact counters stayed flat is judged clean.
EARLY_AT = 5
#: Calls after the quick check's baseline from which a body that left every exact counter
#: where it was is judged clean during the warm-up (see ``Loop._warm_up``).
QUICK_MEASURED = 3
#: Most calls the quick check makes (its first, the calls before a baseline that moved once,
#: and the measured ones) before it leaves a body to the full rounds.
QUICK_MAX_CALLS = 7
#: What the quick check may wait in all for helpers that hold a count above its baseline: at
#: most HANDOFF_WAIT_S a snapshot, apart from the measured rounds' own budget.
QUICK_WAIT_BUDGET_S = 0.04
#: Other threads' CPU time above which their work may move the readings: a thread started
#: and joined that does nothing uses ~170 us; two readings with no other thread differ by up
#: to ~30 us (see ``probes.other_threads_cpu``).
OTHERS_RAN_S = 200e-6
#: The most calls the quick check makes while other threads' work moves the readings.
QUICK_NOISY_MAX_CALLS = 10
#: The most ``iterations`` for which the quick check's window through noise, at its cap, is
#: made into the first measured round (see ``Loop._noise_round``).
NOISE_ROUND_MAX = 12
#: A call this long, and this many times the median of the calls before it, ends the
#: diagnosis (see ``Loop.slowing``).
SLOW_CALL_S = 0.25
SLOWING_FACTOR = 8.0
DURATIONS = 64  # calls whose durations are kept
#: Mann-Kendall p value under which a round counts as growing.
P_SUSPECT = 0.01
P_AMBIGUOUS = 0.1
GROWING = ("linear", "step", "exponential", "leak")
#: Growth of a round through noise, not a trend, buys another round only when it is beyond
#: this many times the round's noise (the robust spread of its readings around their trend):
#: otherwise a reading that swings by megabytes (RSS under a hundred threads) rises by more
#: than its floor in one round of two, by chance, and buys rounds at random.
NOISE_MARGIN = 3.0
#: Calls of a confirmation round after a first round in which every undecided metric grew at
#: each call (see ``Loop._next_round_length``); otherwise a confirmation round is as long as
#: the first.
CONFIRM_CALLS = 5

#: Readings not judged for a body that stops tracemalloc where that leaks (see
#: ``hygiene.TRACEMALLOC_STOP_LEAKS``).
_EXCUSED = ("malloc", "rss")

#: What :meth:`Loop._flat` looks at by default.
_FLAT_METRICS = ("py_blocks", *COUNT_METRICS, "malloc", "rss")

#: Helpers that outlive a call (a daemon thread, a Timer, a reaper thread, a pool shut down
#: with wait=False) get this long to finish before a snapshot, polled with backoff as goleak
#: does; at most HELPER_BUDGET_S per test in all, so that a real resource leak stays cheap.
#: A leaking resource pays one full wait. 50 ms was tried (stop 21): under load a helper
#: that outlives one wait ends the waiting for the test, and helpers piling up at later
#: snapshots hold Python objects the thread identities cannot excuse; 100 ms kept.
HELPER_WAIT_S = 0.1
HELPER_BUDGET_S = 0.3
#: The wait when no thread was started since the last snapshot (none above its count): a
#: descriptor or child above its count can then only be released by a thread that already
#: existed, to which the body handed it off, and that takes it at once. Each fd, socket and
#: child leak of the zoo paid the full 100 ms here, for nothing.
HANDOFF_WAIT_S = 0.02

#: A full collection after a loop once the Python heap is this many times what it was after
#: the last one. While a loop holds everything frozen, the collector's own full collections
#: never reach what existed before it: the garbage that earlier tests left (their failures'
#: tracebacks, fixtures in reference cycles). Unfrozen, those objects rejoin the oldest
#: generation without counting towards its next full collection, so on CPython 3.13 none came
#: (58,000 objects of garbage after 300 leaking tests: RSS +34 MiB per 1,000 tests). The same
#: growth rule as CPython's own (25 %), on the allocated blocks (a reading of ~35 us; it reads
#: 0 under ``PYTHONMALLOC=malloc``, where the loop then leaves the collector to itself).
FULL_COLLECT_GROWTH = 1.25
_blocks_after_full = 0  # the allocated blocks after this process's last such collection


def collect_if_owed() -> None:
    """After a loop: the full collection the collector owes, if the heap grew by
    :data:`FULL_COLLECT_GROWTH` since the last one (~100 ms per million objects, once per
    25 % of growth)."""
    global _blocks_after_full
    if sys.getallocatedblocks() > _blocks_after_full * FULL_COLLECT_GROWTH:
        gc.collect()
        _blocks_after_full = sys.getallocatedblocks()


#: CPython 3.11 finds a frame's line number for tracemalloc by scanning its code's line table,
#: unless the code has a line array, which it builds the first time the code runs while a trace
#: function is set (see ``diagnose.passes.LINE_ARRAYS``). Each traced allocation looks up the
#: lines of all its frames, pytest's and this plugin's under the test included: bench_scale's
#: 8 leaking 5 ms bodies spent 5.7 s in the tracemalloc pass, 3.1 s once those frames had
#: arrays. So the first loop of the process leaves a trace function that traces nothing set
#: while the call unwinds through them (:func:`line_the_callers`), removed before the report is
#: made (:func:`stop_lining_the_callers`); never where a trace function is set (a debugger,
#: coverage: the arrays exist then). Other versions: nothing to do.
CALLER_LINE_ARRAYS = sys.version_info[:2] == (3, 11)
_callers_lined = False


def _trace_nothing(frame: object, event: str, arg: object) -> None:
    return None


def line_the_callers() -> None:
    """Once per process, after a loop (3.11): set a trace function that traces nothing."""
    global _callers_lined
    if CALLER_LINE_ARRAYS and not _callers_lined and sys.gettrace() is None:
        _callers_lined = True
        sys.settrace(_trace_nothing)


def stop_lining_the_callers() -> None:
    if sys.gettrace() is _trace_nothing:
        sys.settrace(None)


_probes: Probes | None = None


def shared_probes() -> Probes:
    """One probe set per process (its mean block size is read once)."""
    global _probes
    if _probes is None:
        _probes = Probes()
    return _probes


class Calls(Protocol):
    """What the code that runs after the measured rounds (the diagnosis) may do with the loop:
    call the body again (``yield`` between :meth:`before_call` and :meth:`after_call`), settle
    the process as for a snapshot, and read the probes it needs. :class:`Loop` implements it."""

    @property
    def measurement(self) -> Measurement:
        """What the measured rounds found; the diagnosis adds its findings to it."""

    def before_call(self) -> None:
        """Just before a call of the body (pytest's per-call bookkeeping is rewound)."""

    def after_call(self) -> None:
        """Just after a call of the body."""

    def settle(self) -> None:
        """Clear the known caches and collect garbage: the state a snapshot is taken in."""

    def unfreeze(self) -> None:
        """Give the objects frozen before the loop back to the collector."""

    def settle_allocator(self, trim: bool = True) -> bool:
        """Settle glibc's caches before a native reading (``trim``: and return free pages to
        the system, for an RSS reading); False where that is not possible."""

    def malloc(self) -> float:
        """malloc in-use bytes (NaN where unavailable)."""

    def rss(self) -> float:
        """Resident set size in bytes."""

    def reader(self, metric: str) -> Callable[[], float] | None:
        """A reader of the counter ``metric``; None when its probe is not available. malloc,
        fds, threads and children are cheap enough to call at every traced line; malloc_main
        (a ``malloc_info`` walk, ~30 us) is read at the untraced pass's ends only."""

    def slowing(self) -> str:
        """Why no more calls should be made ("" when they may): they grow slower and slower."""
        ...


#: Runs after the measured rounds (unless the runaway guard stopped the loop): yields once per
#: extra call of the body it wants. ``analysis.make_loop`` sets the diagnosis here.
DiagnoseHook = Callable[[Calls], Generator[None, None, None]]
#: Runs, when set, before a confirmation round of the Python heap's growth alone (the first
#: round suspect, every call growing): yields once per extra call of the body it wants; True
#: when it recognised the growth as a cause an earlier test's diagnosis traced (see
#: ``diagnose.causes``), which confirms it: no confirmation round is made.
KnownCauseHook = Callable[[Calls], Generator[None, None, bool]]


def screen(
    metric: str, values: list[float], times: list[float], history: list[float] | None = None
) -> str:
    """One round's verdict for one metric: clean, suspect or ambiguous.

    ``history`` is the metric since the baseline (all rounds so far, stitched): a staircase of
    rare steps is judged on it, since one round may hold a single step or none.
    """
    if any(math.isnan(v) for v in values) or len(values) < 3:
        return "clean"
    floor = FLOORS[metric]
    if metric in COUNT_METRICS:
        rise = values[-1] - values[0]
        if rise <= 0:
            return "clean"
        return "suspect" if values[-1] >= max(values) else "ambiguous"
    if metric == "py_blocks" and values[1] > values[0] and all(v == values[1] for v in values[2:]):
        # One step, from the baseline to the round's first call, then flat: the baseline is
        # taken apart from the calls (after priming or screening), when the last call's helper
        # thread has ended; the snapshot right after each call finds that call's helper still
        # exiting, its Thread and target alive (~8 blocks). Judged as a full-round ambiguity,
        # this bought rounds to the iteration cap (the zoo's reaper thread, 1 run in 2).
        return "clean"
    g = analyse(values, times, metric=metric, unit=UNITS[metric], min_slope=floor)
    need = floor * (len(values) - 1) * 0.5
    rises = sum(1 for a, b in zip(values, values[1:]) if b > a)
    # One jump is an event, not a trend (a library's pool growing by a block): growth must
    # show in at least two calls of the round.
    if g.pattern in GROWING and g.total_growth >= need and rises >= 2:
        if g.mk_p < P_SUSPECT:
            return "suspect"
        if g.mk_p < P_AMBIGUOUS:
            return "ambiguous"
    # A staircase must also climb inside this round: a cache that filled in an earlier round
    # and then held leaves a staircase in the history but a flat round.
    rising = any(b > a for a, b in zip(values, values[1:]))
    if metric in ("malloc", "malloc_main") and rising and _staircase(history or values, floor):
        # Weak evidence: it buys more rounds but never confirms by itself (a library's pool,
        # sqlite's say, climbs in irregular jumps for dozens of calls, then stops).
        return "ambiguous"
    if (
        g.total_growth >= floor * (len(values) - 1)
        and g.total_growth >= NOISE_MARGIN * g.noise
        and (g.slope_per_iter >= floor or rises == 1)
    ):
        # Grew by more than the floor per call, but through noise (another thread's memory
        # moving): not clean yet, another round decides. Not when the growth is within the
        # noise: a trend under it is for the Mann-Kendall test above to find.
        return "ambiguous"
    return "clean"


def _staircase(values: list[float], floor: float) -> bool:
    """Growth in rare steps that never goes back: glibc's per-thread cache hands out 7 chunks
    it already counts as in use, then refills 8 at once, so a small malloc leak moves the
    counter once every 8 calls. Too sparse for a trend test, plain as a staircase."""
    steps = [b - a for a, b in zip(values, values[1:])]
    return (
        all(d >= 0 for d in steps)
        and values[-1] - values[0] >= floor * (len(values) - 1)
        and sum(1 for d in steps if d > 0) >= 1
    )


class Loop:
    """Runs one body: ``steps()`` yields once per call of the body."""

    def __init__(self, settings: Settings, probes: Probes | None = None) -> None:
        self.settings = settings
        self.probes = probes or shared_probes()
        self.m = Measurement(settings=settings, block_size=self.probes.block_size)
        cap = settings.max_iterations + settings.max_iterations // max(1, settings.iterations) + 4
        self._buf = array("d", bytes(8 * WIDTH * cap))
        self._n = 0  # snapshots taken
        self._rebase: list[int] = []  # snapshot indices that start a new round's baseline
        self._clear = CacheClearer()
        self._frozen = False
        self._hygiene = Hygiene()
        self._t_start = 0.0
        self._t_call = 0.0  # when the current call began (the budget's estimate of the next)
        # The last DURATIONS calls' durations (see :meth:`slowing`), in place: a float kept per
        # call would move the exact counters.
        self._durations = array("d", bytes(8 * DURATIONS))
        self._calls_made = 0
        self.diagnosing = False  # the measured rounds are over: the calls are the diagnosis's
        # Count metrics at the last snapshot, updated in place (no allocation per snapshot).
        self._counts: dict[str, float] = dict.fromkeys(COUNT_METRICS, math.nan)
        self._waiting = False  # helpers are waited for once the baseline is taken
        self._waited = 0.0
        self._quick = False  # the quick check's snapshots (a shorter wait, its own budget)
        self._quick_waited = 0.0
        self._read_main = True  # malloc_main is read (not during the quick check)
        self._others_cpu = math.nan  # other threads' CPU at the quick check's baseline
        self._rss0 = math.nan
        p = self.probes
        self._readers: dict[str, Callable[[], float]] = {
            "threads": p._threads,
            "fds": p.fds,
            "children": p.children,
        }
        self._ids_base: dict[str, set[tuple[object, ...]]] = {}
        self._tasks_base = -1  # OS threads at the baseline (-1: not known yet)
        self._ids_new: dict[str, set[tuple[object, ...]]] = {}
        self.diagnose_hook: DiagnoseHook | None = None
        self.known_cause_hook: KnownCauseHook | None = None
        # A test function's fixtures set up for the next call (``iteration.FixtureCycle``):
        # run once the objects that existed before the loop are frozen, then after each call
        # (see :meth:`_prepare_next`).
        self.prepare: Callable[[], None] | None = None
        self._prepared = False

    def watch_item(self, item: Any, recorder_at_setup: object) -> None:
        """The pytest item whose own lists a call can append to, and where warnings went
        before its set-up (see ``Hygiene.watch``)."""
        self._hygiene.watch(item, recorder_at_setup)

    # -- measuring ---------------------------------------------------------------------------
    def settle(self, clear: bool = True) -> None:
        """Clear the known caches and collect garbage: the state a snapshot is taken in.
        ``clear=False``: the caches are left as they are (a snapshot that is thrown away:
        clearing them costs ~60 us, and type lookups refill after it)."""
        if clear:
            self._clear()
        gc.collect()
        if self._waiting and self._wait_left() > 0 and self._above_last():
            self._await_helpers()

    def _wait_left(self) -> float:
        """What is left of the budget for waiting on helpers (once a wait expired: nothing,
        and the counts need not be read at every snapshot to find out)."""
        if self._quick:
            return QUICK_WAIT_BUDGET_S - self._quick_waited
        return HELPER_BUDGET_S - self._waited

    def _above_last(self) -> bool:
        for name, last in self._counts.items():
            if last == last and self._readers[name]() > last:  # last == last: not NaN
                return True
        return False

    def _wait_limit(self) -> float:
        """How long helpers get before this snapshot. 0 when no code but this loop can run
        meanwhile (no Python thread but this one, no native thread started since the loop
        began, SIGCHLD at its default): a descriptor or child count above its last value then
        stays there, and the zoo's fd, socket and child leaks each paid a full expired wait.
        HELPER_WAIT_S while a thread started since the last snapshot (or since the loop began,
        for native ones) may be the helper; HANDOFF_WAIT_S otherwise."""
        python_threads = threading.active_count()
        native_started = self._tasks_base < 0 or os_thread_count() > self._tasks_base
        if python_threads == 1 and not native_started:
            sigchld = getattr(signal, "SIGCHLD", None)
            if sigchld is None or signal.getsignal(sigchld) is signal.SIG_DFL:
                return 0.0
        started = native_started or python_threads > self._counts.get("threads", math.inf)
        return HELPER_WAIT_S if started else HANDOFF_WAIT_S

    def _await_helpers(self) -> None:
        """While a thread, descriptor or child count is above its value at the last snapshot,
        give the helper that holds it a bounded chance to finish (backoff 0.5 ms .. 20 ms).
        During the quick check: only while a thread started since the last snapshot may be
        the helper, at most HANDOFF_WAIT_S, from a budget of its own (a count still above
        then ends the quick check, and the rounds wait as they always did; a descriptor or
        child kept with no new thread would only pay the wait twice)."""
        quick = self._quick
        budget = QUICK_WAIT_BUDGET_S if quick else HELPER_BUDGET_S
        left = self._wait_left()
        limit = self._wait_limit() if left > 0 else 0.0
        if quick:
            limit = HANDOFF_WAIT_S if limit == HELPER_WAIT_S else 0.0
        if not limit:
            return
        t0 = time.perf_counter()
        deadline = t0 + min(limit, left)
        delay = 0.0005
        expired = False
        while self._above_last():
            now = time.perf_counter()
            if now >= deadline:
                # Not a helper that finishes just after the call: a resource that stays. No
                # more waiting for this body (the identities of the resources decide whether
                # the same ones survive; waiting again would only cost time).
                expired = True
                break
            time.sleep(min(delay, deadline - now))
            delay = min(delay * 2, 0.02)
        spent = budget if expired else time.perf_counter() - t0
        if quick:
            self._quick_waited += spent
        else:
            self._waited += spent

    def unfreeze(self) -> None:
        """Give the objects frozen before the loop back to the collector (diagnosis needs them)."""
        if self._frozen:
            gc.unfreeze()
            self._frozen = False

    # -- what the diagnosis may do (the Calls protocol) ----------------------------------------
    @property
    def measurement(self) -> Measurement:
        return self.m

    def before_call(self) -> None:
        self._hygiene.before_iteration()
        self._t_call = time.perf_counter()

    def after_call(self) -> None:
        self._durations[self._calls_made % DURATIONS] = time.perf_counter() - self._t_call
        self._calls_made += 1
        self._prepare_next()
        self._hygiene.after_iteration()

    def slowing(self) -> str:
        """The last call took :data:`SLOW_CALL_S` or more, and :data:`SLOWING_FACTOR` times
        the median of the calls before it: a body that piles state up at every call and
        walks it all (wrapt's test stacking one more wrapper on a class attribute per call
        doubled its time at each: 0.56 s at the loop's 21st call, 17 s at the 26th, and the
        diagnosis's calls took 255 s). No more calls are worth it."""
        made = self._calls_made
        if made < 4:
            return ""
        last = self._durations[(made - 1) % DURATIONS]
        if last < SLOW_CALL_S:
            return ""
        before = [self._durations[i % DURATIONS] for i in range(max(0, made - DURATIONS), made - 1)]
        typical = statistics.median(before)
        if last < SLOWING_FACTOR * typical:
            return ""
        return (
            f"the calls slow down: the last took {last:.2f} s, "
            f"{last / max(typical, 1e-9):.0f}x the median of the {len(before)} before it"
        )

    def _prepare_next(self) -> None:
        """After a call: ``prepare`` (the next call's fixtures set up), here rather than in the
        call itself, so that the diagnosis's line tracer and C-call profile do not charge the
        fixtures' set-up to the body; not before the loop has frozen what existed (see
        :meth:`_freeze`). Not while the diagnosis traces allocations either: the next call
        sets its fixtures up itself then (a set-up traced from here took 4.4 ms instead of
        1.0 in click's suite, for the same allocations)."""
        if self.prepare is None or not self._prepared:
            return
        if self.diagnosing and tracemalloc.is_tracing():
            return
        self.prepare()

    def settle_allocator(self, trim: bool = True) -> bool:
        return self.probes.settle_allocator(trim)

    def malloc(self) -> float:
        return self.probes.malloc()

    def rss(self) -> float:
        return self.probes.rss()

    def reader(self, metric: str) -> Callable[[], float] | None:
        if metric == "malloc":
            return self.probes.malloc if self.probes.status["malloc"].available else None
        if metric == "malloc_main":
            status = self.probes.status.get("malloc_main")
            return self.probes.malloc_main if status is not None and status.available else None
        return self._readers.get(metric)

    def _snap(self) -> None:
        base = self._n * WIDTH
        self.probes.read(self._buf, base, self._read_main)
        self._n += 1
        counts = self._counts
        for name in COUNT_METRICS:
            counts[name] = self._buf[base + INDEX[name]]

    def _column(self, name: str, start: int, stop: int) -> list[float]:
        i = INDEX[name]
        return [self._buf[k * WIDTH + i] for k in range(start, stop)]

    def _runaway(self, rss: float | None = None) -> bool:
        """Has RSS grown past the guard since the loop began (or passed ``max_rss``)? Then the
        loop stops at once, before the machine runs out of memory; the test fails as critical
        with what was measured. ``rss``: the reading of the snapshot just taken, if any."""
        if rss is None:
            rss = self.probes.rss()
        if rss != rss or self._rss0 != self._rss0:  # NaN: no RSS probe here
            return False
        limit = self.settings.max_rss
        grown = rss - self._rss0
        if grown > RUNAWAY_GROWTH or (limit is not None and rss > limit and grown > 0):
            calls = self.m.warmup + self.m.iterations
            guard = (
                f"max_rss={format_size(limit)}"
                if limit is not None and rss > limit
                else f"the runaway guard ({format_size(RUNAWAY_GROWTH)} of growth)"
            )
            self.m.runaway = (
                f"rss grew {format_size(grown)} in {calls} calls (to {format_size(rss)}), past "
                f"{guard}: the loop was stopped"
            )
            self.m.stop_reason = "runaway"
            return True
        return False

    def _timed_out(self) -> bool:
        """The budget is spent, or the next call (as long as the last one) would overrun it."""
        limit = self.settings.timeout
        if limit is None:
            return False
        now = time.perf_counter()
        return now - self._t_start + (now - self._t_call) > limit

    def _no_room_to_measure(self) -> bool:
        """After warm-up: would the transition call and the fewest measured calls that can show
        a trend overrun the budget, at the pace of the last call?"""
        limit = self.settings.timeout
        if limit is None or self.m.warmup == 0:
            return False
        now = time.perf_counter()
        return now - self._t_start + (1 + MIN_MEASURED) * (now - self._t_call) > limit

    def _warmup_over(self) -> bool:
        """Warm-up may use at most a third of the budget: the measured calls need the rest."""
        limit = self.settings.timeout
        return limit is not None and time.perf_counter() - self._t_start > limit / 3

    def steps(self) -> Generator[None, None, None]:
        s = self.settings
        m = self.m
        self._t_start = time.perf_counter()
        self._rss0 = self.probes.rss()
        hygiene = self._hygiene
        with hygiene:
            try:
                quick = yield from self._warm_up()
                if m.runaway:
                    return
                if not quick:
                    if self._no_room_to_measure():
                        m.partial, m.stop_reason = True, "timeout"
                        m.undecided = (
                            f"the time budget of {s.timeout:g} s leaves no room for the "
                            f"transition call and {MIN_MEASURED} measured calls after "
                            f"{m.warmup} warm-up calls of "
                            f"{time.perf_counter() - self._t_call:.2g} s"
                        )
                        return
                    yield from self._measure()
                self._finish_series()
                if self.diagnose_hook is not None and not m.runaway:
                    self._waiting = True
                    self.diagnosing = True
                    try:
                        yield from self.diagnose_hook(self)
                    except Exception as exc:  # the diagnosis's own code (a call's raise: drive)
                        self.stop_diagnosis(exc, ours=True)
                    finally:
                        self.diagnosing = False
            finally:
                self.unfreeze()
                m.duration_s = time.perf_counter() - self._t_start
                if not m.series:
                    self._finish_series()
        collect_if_owed()

    def _call(self) -> Generator[None, None, None]:
        """One call of the body, with pytest's per-call bookkeeping rewound around it."""
        self.before_call()
        yield
        self.after_call()

    def _warm_up(self) -> Generator[None, None, bool]:
        """The warm-up calls; True when the quick check found the body clean (nothing more to
        measure). Most bodies leave no trace once called: after its first call the loop takes
        a baseline, and when the next ``QUICK_MEASURED`` calls leave every exact counter where
        it was and memory within its floor, the body is clean (4 calls in all). Their malloc
        readings leave out glibc's per-thread cache (see ``probes._load_tcache_reader``):
        otherwise a small native leak served from that cache moves the reading only when it
        is refilled, too rarely for a few calls to see. A snapshot that moved becomes the
        baseline (see :meth:`_moved_once`) when it is the first after the baseline (the first
        call that meets fixtures set up again, caches that fill at the second call) or when
        nothing in it is above the baseline (memory freed); the calls after it are measured.
        While only malloc moved, and little (see :meth:`_malloc_only`), it goes on. All
        within ``QUICK_MAX_CALLS`` calls. A count above its baseline gets a short wait for
        the helper that holds it. Any other movement ends the quick check; its calls count
        as warm-up, the rest of the warm-up runs and the measured rounds follow as usual, the
        quick snapshots dropped."""
        s = self.settings
        m = self.m
        if s.warmup >= 2 + QUICK_MEASURED and not s.thorough:
            k = 0
            base = 1  # the call after which the baseline was taken
            noisy = False  # other threads ran: see :meth:`_through_noise`
            extending = False  # the noise did not settle: a round is made (_noise_round)
            moved = ""
            others_before = other_threads_cpu()
            while True:
                yield from self._call()
                m.warmup += 1
                k += 1
                # (after later calls, the runaway guard reads the snapshot's RSS: one read less)
                if self._warmup_over() or (k == 1 and self._runaway()):
                    self._quick = False
                    return False
                if k == 1:  # the first call (imports, first-call caches) is never measured
                    self._freeze()
                    # (read before the baseline: the reading is an object the baseline counts)
                    self._others_cpu = other_threads_cpu()
                    # malloc_main is not judged here (see Probes.read), unless other threads
                    # ran during the first call: through their noise the main arena is what
                    # shows the body's own native growth (see :meth:`_through_noise`)
                    self._read_main = self._others_cpu - others_before > OTHERS_RAN_S
                    self._prime_and_snap(passes=QUICK_PRIME_PASSES)
                    self._quick = True
                    continue
                self._exact_snap()
                # (no local name: a float kept alive would move the exact counters)
                if self._runaway(self._buf[(self._n - 1) * WIDTH + INDEX["rss"]]):
                    self._quick = False
                    return False
                measured = k - base
                if self._flat(0, quick=True):
                    if measured < QUICK_MEASURED:
                        continue
                elif k + QUICK_MEASURED <= QUICK_MAX_CALLS and self._moved_once(k == 2):
                    base = k
                    continue
                else:
                    moved = "moved" if noisy else self._malloc_only(measured)
                    if extending:
                        moved = self._noise_round(measured)
                    elif moved == "moved" and (noisy or (self._read_main and self._others_ran())):
                        noisy = True
                        moved = self._through_noise(k)
                    cap = self._noisy_cap() if noisy else QUICK_MAX_CALLS
                    if noisy and moved == "more" and k >= cap and not extending:
                        extending = True
                        moved = self._noise_round(measured)
                    if moved == "moved" or (moved == "more" and k >= cap and not extending):
                        break
                    if moved == "more":
                        continue
                self._quick = False
                m.warmup -= measured
                m.iterations = measured
                m.rounds.append(m.iterations)
                m.stop_reason = "clean" if moved == "round" else "flat"
                state = dict.fromkeys(JUDGED_MEMORY_METRICS + COUNT_METRICS, 0)
                self._screen_round(0, state, set())
                return True
            self._quick = False
            self._n = 0
        for _ in range(s.warmup - m.warmup):  # the quick check's calls were warm-up calls too
            yield from self._call()
            m.warmup += 1
            if self._warmup_over() or self._runaway():
                break
        return False

    def _others_ran(self) -> bool:
        """Since the quick check's baseline: did threads other than the loop's use the CPU
        (more than ``OTHERS_RAN_S``)? Their allocations and frees land between snapshots
        at their own pace."""
        return other_threads_cpu() - self._others_cpu > OTHERS_RAN_S

    def _noise_round(self, measured: int) -> str:
        """The quick check through other threads' noise reached its cap with the readings
        still moving, but with nothing that ended it (see :meth:`_through_noise`): its window
        is judged as the first measured round would be, by the same screens on as many calls
        as a round (``iterations``, one or two calls more), instead of starting the rounds
        over from a new baseline (idna's thread-pool test paid 21 calls instead of 11 that
        way). "more": calls needed to make a round; "round": every reading screened clean;
        "moved": anything else (the rounds decide, as before)."""
        s = self.settings
        if s.iterations > NOISE_ROUND_MAX or not self._flat(0, only=COUNT_METRICS):
            return "moved"
        # A step of the main arena that stays is never taken for noise (a small native leak
        # served from memory freed elsewhere reads so): one of its last readings must be back
        # within its floor of the baseline; so must malloc's where the main arena is unread.
        for name in ("malloc_main", "malloc"):
            col = self._column(name, 0, self._n)
            if any(v != v for v in col):
                continue  # NaN: not read
            if min(col[-QUICK_MEASURED:]) - col[0] >= FLOORS[name]:
                return "moved"
            break
        if measured < s.iterations:
            return "more" if self._n + 1 < len(self._buf) // WIDTH else "moved"
        times = self._column("t", 0, self._n)
        if any(self._screen_metric(m, 0, times) != "clean" for m in JUDGED_MEMORY_METRICS):
            return "moved"
        return "round"

    def _noisy_cap(self) -> int:
        """The most calls the quick check makes through other threads' noise (fewer when
        the series buffer is short: a small ``max_iterations``)."""
        return min(QUICK_NOISY_MAX_CALLS, len(self._buf) // WIDTH - 2)

    def _through_noise(self, k: int) -> str:
        """During the quick check of a body whose calls ran other threads (their allocations
        and frees land between snapshots at their own pace), when the exact counters or
        memory moved: "clean", "more" (calls needed) or "moved" (the quick check ends).

        Entered only when other threads also ran during the first call, so that the quick
        check's snapshots read the main arena's malloc too (``malloc_main``): the main
        thread's own native growth, which a thread churning memory in its own arena hides
        in the total.

        The Python blocks, malloc and the main arena's malloc: each rise by its floor above
        the level of the last rise counts; a reading is clean when its last rise is followed by
        ``QUICK_MEASURED`` calls without one and then by a reading back below that level
        (threads' objects freed later: an oscillation), or when it rose once only: the Python
        blocks (a one-time object, like a cache filled at a later call), and malloc while
        the main arena did not rise (what the threads' arenas keep). A leak
        rises again and again: three rises, or a rise at a call after which no
        ``QUICK_MEASURED`` calls fit, end the quick check. RSS keeps what the threads'
        arenas and stacks touched: it is judged by its rise over the last
        ``QUICK_MEASURED`` calls, below its floor per call (the quick check's own rule). The
        descriptor, thread and child counts must not have moved (their waits decide). At
        least ``QUICK_MEASURED`` calls are measured."""
        if not self._flat(0, only=COUNT_METRICS):
            return "moved"
        n = self._n
        cap = self._noisy_cap()
        verdict = "clean" if n - 1 >= QUICK_MEASURED else "more"
        main_rose = True  # unknown unless malloc_main was read
        for name in ("py_blocks", "malloc_main", "malloc", "rss"):
            col = self._column(name, 0, n)
            if any(v != v for v in col):  # NaN: not read here
                continue
            tol = FLOORS[name]
            if name == "rss":
                if (
                    n - 1 >= QUICK_MEASURED
                    and col[-1] - col[-1 - QUICK_MEASURED] >= tol * QUICK_MEASURED
                ):
                    verdict = "more"
                continue
            level, rises, last = col[0], 0, 0
            for i in range(1, n):
                if col[i] - level >= tol:
                    level, rises, last = col[i], rises + 1, i
            if name == "malloc_main":
                main_rose = rises > 0
            if not rises:
                continue
            if rises >= 3 or (last == n - 1 and k + QUICK_MEASURED > cap):
                return "moved"
            quiet = n - 1 - last >= QUICK_MEASURED
            back = min(col[last + 1 :], default=math.inf) <= level - tol
            # One step that stays: an object made once (blocks), or memory the threads'
            # arenas keep while the main arena stayed put (malloc; a native leak of the main
            # thread served from memory freed elsewhere also reads as one step, in the main
            # arena)
            once = rises == 1 and (name == "py_blocks" or (name == "malloc" and not main_rose))
            if not (quiet and (back or once)):
                verdict = "more"
        return verdict

    def _moved_once(self, first: bool) -> bool:
        """During the quick check, when the last snapshot is not flat: may it become the
        baseline? Yes when it is the first after the loop's baseline (whatever moved: the
        calls after it are measured, as the old baseline's were), or when no reading in it is
        above the baseline's (an exact counter higher, malloc or RSS by its floor or more) and
        a reading other than malloc is below it: memory freed once (a cache emptied, glibc
        trimming RSS) hides no growth of the calls after it. (malloc alone: see
        :meth:`_malloc_only`.) The snapshot is then the only one; the calls before it count
        as warm-up."""
        last = (self._n - 1) * WIDTH
        if not first:
            below = False
            for name in ("py_blocks", *COUNT_METRICS, "malloc", "rss"):
                i = INDEX[name]
                now, then = self._buf[last + i], self._buf[i]
                if now != now or then != then:  # NaN: not read here
                    continue
                floor = FLOORS[name]  # (counts: 1, blocks: 0.5; integers either way)
                if now - then >= floor:
                    return False
                if name != "malloc" and then - now >= floor:
                    below = True
            if not below:
                return False
        for i in range(WIDTH):
            self._buf[i] = self._buf[last + i]
        self._n = 1
        return True

    def _exact_snap(self) -> None:
        """Settle, take a snapshot with an exact malloc reading (where glibc's per-thread cache
        cannot be read, it is filled first, so that what it holds is constant)."""
        self.settle()
        self.probes.settle_allocator(trim=False)
        self._snap()

    def _freeze(self) -> None:
        # Freeze first, collect after: what existed before the loop (garbage included) is
        # moved out of the collector's way without a full collection, whose cost grows with
        # the whole heap (~100 ms at 1M objects). Frozen garbage stays constant during the
        # loop and is collected normally once we unfreeze.
        gc.freeze()
        self._frozen = True
        self._waiting = False
        if self.prepare is not None:
            self.prepare()
            self._prepared = True  # from now on after every call (:meth:`_prepare_next`)
        self._tasks_base = os_thread_count()
        self.settle(clear=False)
        self.probes.reset_clock()

    def _prime_and_snap(
        self, resources: bool = False, wait: bool = True, passes: int = PRIME_PASSES
    ) -> None:
        """Run the measuring path (and the mid-round check) a few times, then take the
        baseline snapshot: the interpreter's free lists fill up with its temporaries, and
        before 3.11 a function's first call leaves a frame cached for good. ``resources``:
        also note which threads, descriptors and children exist at the baseline (to tell the
        same resources surviving from helpers caught alive at a snapshot). ``wait``: the
        snapshots wait for helpers (see :meth:`_await_helpers`). ``passes``: of the path."""
        self._waiting = wait  # the wait path is primed too (its first calls allocate)
        for _ in range(passes):
            self.settle(clear=False)
            self._snap()
            self._flat(0)
            self._n = 0
        if resources:
            self._ids_base = {k: identities(k) for k in COUNT_METRICS}
        # Where the per-thread cache cannot be read and is filled instead: fill it once before
        # the baseline's own fill (the priming passes above do not fill it, and a single fill
        # after them left the next test's quick check moving). A no-op otherwise.
        self.probes.settle_allocator(trim=False)
        self._exact_snap()

    def _measure(self) -> Generator[None, None, None]:
        """The measured rounds after the warm-up: screening, confirmation, budgets."""
        s = self.settings
        m = self.m
        # Everything the measuring path keeps is made before the baseline.
        state = dict.fromkeys(JUDGED_MEMORY_METRICS + COUNT_METRICS, 0)
        clean: set[str] = set()
        round_start = 0
        done = 0
        self._read_main = True  # (the quick check's snapshots did without it)
        self._freeze()
        # One transition iteration through the measuring path itself (its first run
        # allocates a few objects of ours), then the baseline.
        yield from self._call()
        m.warmup += 1
        self._prime_and_snap(resources=True)
        length = s.iterations
        while True:
            done = 0
            while done < length:
                done += 1
                yield from self._call()
                m.iterations += 1
                self._exact_snap()
                # (no local name: a float kept alive would move the exact counters)
                if self._timed_out() or self._runaway(
                    self._buf[(self._n - 1) * WIDTH + INDEX["rss"]]
                ):
                    break
                if done == EARLY_AT and not m.rounds and self._flat(round_start, first_step=True):
                    m.stop_reason = "flat"
                    break
            m.rounds.append(m.iterations)
            if m.runaway:
                break
            cut = done < MIN_MEASURED and m.stop_reason != "flat"
            undecided = self._screen_round(round_start, state, clean)
            if self._timed_out():
                m.partial, m.stop_reason = True, "timeout"
                if (cut or undecided) and not any(v >= 2 for v in state.values()):
                    m.undecided = (
                        f"the time budget of {s.timeout:g} s ran out after {m.warmup} "
                        f"warm-up and {m.iterations} measured calls, before growth "
                        "could be confirmed or ruled out"
                    )
                break
            if not undecided:
                break
            length = self._next_round_length(round_start, clean)
            if length == CONFIRM_CALLS and self._blocks_alone(state, clean):
                known = yield from self._known_cause()
                if known:
                    state["py_blocks"] += 1
                    m.stop_reason = "known cause"
                    break
            if m.iterations + length > s.max_iterations:
                m.stop_reason = "iteration cap"
                break
            # Helpers keep their chance in the confirmation rounds: the identities of the
            # resources decide the counts (a helper caught alive is not the same thread, fd
            # or child as the last round's), but a helper thread alive at a snapshot also
            # holds its Python objects, ~26 blocks, which a count cannot excuse (the zoo's
            # helper thread was once a false alarm as python_object that way). A real
            # resource leak does not pay again: one expired wait ends the waiting.
            # Screening allocated objects of ours: measure the next round from a new
            # baseline (the series are stitched across it).
            round_start = self._n
            self._rebase.append(self._n)
            self._exact_snap()
        m.confirmed = [k for k, v in state.items() if k not in clean and v >= 2]
        if m.stop_reason == "clean" and m.confirmed:
            m.stop_reason = "confirmed growth"

    def _blocks_alone(self, state: dict[str, int], clean: set[str]) -> bool:
        """Is the Python heap's growth, suspect once, all that is left to confirm?"""
        undecided = [k for k in state if k not in clean]
        return undecided == ["py_blocks"] and state["py_blocks"] == 1

    def _known_cause(self) -> Generator[None, None, bool]:
        """The known-cause hook's calls, as the diagnosis's (a call that raises ends the loop
        unconfirmed; the hook's own bug is noted and the confirmation round decides)."""
        if self.known_cause_hook is None or self.settings.thorough:
            return False
        self.diagnosing = True
        try:
            return (yield from self.known_cause_hook(self))
        except Exception as exc:  # the hook's own code (a call's raise: drive)
            self.stop_diagnosis(exc, ours=True)
            self.m.diagnosis = None
            return False
        finally:
            self.diagnosing = False

    def _next_round_length(self, start: int, clean: set[str]) -> int:
        """Calls of the next round: :data:`CONFIRM_CALLS` to confirm a first round whose every
        undecided metric was suspect and grew at each of its calls (a steady leak: a second
        round shows it again in as many calls as the quick check needs), when a full round
        still fits in ``max_iterations`` after it (a dict's resize can leave one of its calls
        flat: the full round then decides); the full round otherwise (growth every few calls,
        only ambiguous evidence, ``thorough``)."""
        s = self.settings
        if s.thorough or len(self.m.rounds) != 1 or s.iterations <= CONFIRM_CALLS:
            return s.iterations
        if self.m.iterations + CONFIRM_CALLS + s.iterations > s.max_iterations:
            return s.iterations  # a short round that does not confirm must leave a full one
        for metric, verdicts in self.m.screens.items():
            if metric in clean:
                continue
            if verdicts[-1] != "suspect":
                return s.iterations
            col = self._column(metric, start, self._n)
            if not all(b > a for a, b in zip(col, col[1:])):
                return s.iterations
        return CONFIRM_CALLS

    def _malloc_only(self, measured: int) -> str:
        """During the quick check, when it is not flat: "clean", "more" (calls needed) or
        "moved" (the quick check ends). It may go on only while malloc alone moved (the exact
        counters and RSS stayed put) and by less than the full rounds' early exit allows in
        all (its floor per call over ``EARLY_AT`` calls): native code that allocates a chunk
        above the small-object limit and frees it later, or frees one and re-allocates one
        (glibc's time-zone state), moves the exact reading by
        ~600 B; a native leak keeps moving it up. Clean: back within the floor of the
        baseline after ``EARLY_AT`` calls, which is stricter than the early exit of the full
        rounds on the same readings."""
        if not self._flat(0, only=("py_blocks", "rss", *COUNT_METRICS)):
            return "moved"
        col = self._column("malloc", 0, self._n)
        floor = FLOORS["malloc"]
        if any(math.isnan(v) for v in col) or max(col) - min(col) >= floor * EARLY_AT:
            return "moved"
        # (Not clean after a single step that then stays put: glibc can serve a small leak
        # from memory freed elsewhere for several calls in a row, which reads exactly so.)
        if measured < EARLY_AT:
            return "more"
        return "clean" if col[-1] - col[0] < floor else "moved"

    def _flat(
        self,
        start: int,
        quick: bool = False,
        only: tuple[str, ...] = _FLAT_METRICS,
        first_step: bool = False,
    ) -> bool:
        """True when the exact counters did not move at all and memory moved less than its
        floor: a clean body is decided after ``EARLY_AT`` iterations instead of a full round.
        ``quick`` (the check during the warm-up, see :meth:`_warm_up`, whose malloc readings
        are exact): malloc may move less than its floor in all, not per call; RSS less than its
        floor per call over the ``QUICK_MEASURED`` calls the check judges, from its first
        measured call on (RSS that rose by a few pages at that call and then held used to make
        that snapshot the baseline and cost a call: a fifth of platformdirs' tests). ``only``:
        the metrics looked at. ``first_step``: the blocks may step once, at the first call after
        the baseline (the early exit of the first round: see :func:`screen`)."""
        stop = self._n
        if self._hygiene.tracemalloc_stops:
            only = tuple(name for name in only if name not in _EXCUSED)
        for name in ("py_blocks", *COUNT_METRICS):
            if name not in only:
                continue
            col = self._column(name, start, stop)
            if len(col) > 1 and not col[1] > col[0]:
                # A dip below the baseline is no growth: on 3.9 the first call after a
                # baseline frees one block of the measuring path's and the second makes it
                # again, every time. The counter must never rise above its baseline and must
                # stay put after the first measured call (after the second in a round).
                late = 2 if len(col) >= 6 and not any(v > col[0] for v in col) else 1
                col = col[late:]
            elif name == "py_blocks" and first_step and len(col) > 2:
                col = col[1:]  # a step at the first call only (a helper exiting): see screen()
            if any(v != col[0] for v in col if not math.isnan(v)):
                return False
        for name in ("malloc", "rss"):
            if name not in only:
                continue
            col = [v for v in self._column(name, start, stop) if not math.isnan(v)]
            calls = stop - start - 1
            if quick:
                calls = 1 if name == "malloc" else max(calls, QUICK_MEASURED)
            if col and max(col) - min(col) >= FLOORS[name] * calls:
                return False
        return not math.isnan(self._buf[start * WIDTH + INDEX["py_blocks"]])

    def _screen_round(self, start: int, state: dict[str, int], clean: set[str]) -> bool:
        """Screen the round that began at snapshot ``start``; True while a metric is undecided."""
        times = self._column("t", start, self._n)
        undecided = False
        excused = self._hygiene.tracemalloc_stops > 0
        for metric in state:
            if metric in clean:
                continue
            if excused and metric in _EXCUSED:
                verdict = "clean"  # not judged (never confirmed): see _finish_series's note
            else:
                verdict = self._screen_metric(metric, start, times)
            self.m.screens.setdefault(metric, []).append(verdict)
            if verdict == "clean":
                clean.add(metric)
            elif verdict == "suspect" and metric in COUNT_METRICS and not self._survivors(metric):
                # The count is higher, but not because the same resources lived on: helpers
                # that end after the call, caught alive at the instant of a snapshot.
                self.m.screens[metric][-1] = "clean"
                clean.add(metric)
            elif verdict == "suspect":
                state[metric] += 1
                if state[metric] < 2:
                    undecided = True
            else:
                undecided = True
        return undecided

    def _screen_metric(self, metric: str, start: int, times: list[float]) -> str:
        """:func:`screen` of ``metric`` over the snapshots from ``start`` on."""
        history = self._stitched(metric) if metric == "malloc" else None
        verdict = screen(metric, self._column(metric, start, self._n), times, history)
        if metric == "malloc" and verdict != "suspect":
            # A second opinion from the main arena alone: other threads' memory moves the
            # total by kilobytes between snapshots and can hide the test's own growth.
            main = self._column("malloc_main", start, self._n)
            if screen("malloc_main", main, times, self._stitched("malloc_main")) == "suspect":
                verdict = "suspect"
        return verdict

    def _survivors(self, metric: str) -> bool:
        """For a count metric suspect in this round: are resources that were new at the end of
        its previous suspect round still alive now? The first suspect round only records them."""
        new = identities(metric) - self._ids_base.get(metric, set())
        before = self._ids_new.get(metric)
        self._ids_new[metric] = new
        if before is None:
            return bool(new)
        return bool(new & before)

    def _stitched(self, name: str) -> list[float]:
        """The metric since the baseline, each round's new baseline continuing the last value."""
        out: list[float] = []
        offset = 0.0
        i = INDEX[name]
        for k in range(self._n):
            raw = self._buf[k * WIDTH + i]
            if k in self._rebase and out:
                if name != "t":  # time runs on; the other metrics continue their last value
                    offset = out[-1] - raw
                continue
            out.append(raw + offset)
        return out

    def _finish_series(self) -> None:
        m = self.m
        columns = [self._stitched(name) for name in FIELDS]
        rows = [dict(zip(FIELDS, values)) for values in zip(*columns)]
        for row in rows:
            row.update(derive(row, self.probes.block_size))
        names = [*FIELDS, "heap", "external", "external_ratio"]
        series: dict[str, list[float | None]] = {}
        for name in names:
            series[name] = [None if math.isnan(r[name]) else r[name] for r in rows]
        m.series = series
        m.probe_notes = {k: v.note for k, v in self.probes.status.items() if v.note}
        stops = self._hygiene.tracemalloc_stops
        if stops:
            m.probe_notes["tracemalloc"] = (
                f"the test stopped tracemalloc {stops} time(s), which on Python "
                f"{platform.python_version()} leaks every traceback it traced (cpython#121390, "
                "fixed in 3.12.5): native growth (malloc, rss) is not charged to it"
            )
        times = [r["t"] for r in rows]
        metrics = [*JUDGED_MEMORY_METRICS, "heap", "external", *COUNT_METRICS]
        if "malloc" in m.confirmed:
            # the verdict's second reading of a confirmed malloc growth (see judge)
            metrics.append("malloc_main")
        for metric in metrics:
            values = series[metric]
            if len(values) < 2 or any(v is None for v in values):
                continue
            vals = [float(v) for v in values]  # type: ignore[arg-type]
            m.growth[metric] = analyse(
                vals,
                times,
                metric=metric,
                unit=UNITS[metric],
                min_slope=FLOORS.get(metric, FLOORS["malloc"]),
            )

    def record_error(self, exc: BaseException) -> None:
        m = self.m
        name = type(exc).__name__
        # unittest.SkipTest raised from a plain test function: pytest reports it skipped too
        # (freezegun's tests skip so when a locale or an optional library is missing)
        unittest = sys.modules.get("unittest")
        skip_test = getattr(unittest, "SkipTest", None)
        if name in ("Skipped", "XFailed") or (
            isinstance(skip_test, type) and isinstance(exc, skip_test)
        ):
            m.outcome = "skipped"
        else:
            m.outcome = "error"
            m.error = f"{name}: {exc}"[:2000]
        m.error_iteration = m.warmup + m.iterations + 1
        m.partial = True
        m.stop_reason = "skipped" if m.outcome == "skipped" else "error"

    def stop_diagnosis(self, exc: BaseException, ours: bool = False) -> None:
        """A call of the diagnosis raised (a MemoryError under a memory limit, say), or
        (``ours``) the diagnosis's own code did: the verdict of the measured rounds stands; the
        diagnosis ends with what it found. A bug of ours must not fail the user's test."""
        d = self.m.diagnosis
        what = "pytest-memleak's own code" if ours else "a call"
        text = f"diagnosis stopped: {what} raised {type(exc).__name__}: {exc}"[:300]
        if ours:
            text += " (a bug in pytest-memleak: please report it)"
        if d is not None:
            d.notes.append(text)
        self.m.probe_notes["diagnosis"] = text

    def record_not_repeatable(self, text: str, call: int) -> None:
        """A call after the first failed: the test passes as a single call would; nothing
        measured is judged."""
        m = self.m
        m.outcome = "not_repeatable"
        m.error = text[:2000]
        m.error_iteration = call
        m.partial = True
        m.stop_reason = "not repeatable"


T = TypeVar("T")


class _Driving(Generic[T]):
    """What :func:`drive` and :func:`drive_async` keep: the first call's value, the calls made,
    and what a later call's failure means."""

    def __init__(self, loop: Loop, repeat_failures_pass: bool) -> None:
        self.loop = loop
        self.count = 0
        self.result: T | None = None
        self.tolerated = REPEAT_FAILURES if repeat_failures_pass else ()

    def done(self, value: T) -> None:
        if self.count == 0:
            self.result = value
        self.count += 1

    def ends_diagnosis(self, exc: BaseException) -> bool:
        """True when a call of the diagnosis failed: the diagnosis stops, the verdict stands."""
        if not (self.loop.diagnosing and isinstance(exc, Exception)):
            return False
        self.loop.stop_diagnosis(exc)
        return True

    def repeat_failed(self, exc: BaseException) -> bool:
        """True when a failed call ends the loop as "not repeatable" (False: re-raise)."""
        if self.count == 0 or not isinstance(exc, self.tolerated):
            return False
        n = self.count + 1
        text = str(exc if isinstance(exc, NotRepeatable) else NotRepeatable(n, exc))
        self.loop.record_not_repeatable(text, n)
        return True

    def failed(self, exc: BaseException) -> None:
        if self.loop.m.outcome != "not_repeatable":
            self.loop.record_error(exc)


def drive(loop: Loop, call: Callable[[], T], *, repeat_failures_pass: bool = False) -> T | None:
    """Run the loop for a plain body; returns the first call's value.

    The first call's exceptions propagate unchanged. With ``repeat_failures_pass`` (whole
    tests), a later call that fails ends the loop as "not repeatable" and does not fail the
    test: a test that passes once must not fail because it was repeated.
    """
    steps = loop.steps()
    calls: _Driving[T] = _Driving(loop, repeat_failures_pass)
    try:
        for _ in steps:
            try:
                calls.done(call())
            except BaseException as exc:
                if calls.ends_diagnosis(exc) or calls.repeat_failed(exc):
                    break
                raise
    except BaseException as exc:
        calls.failed(exc)
        raise
    finally:
        steps.close()
    return calls.result


async def drive_async(
    loop: Loop, call: Callable[[], Awaitable[T]], *, repeat_failures_pass: bool = False
) -> T | None:
    """Run the loop for an ``async def`` body, inside the test's event loop (as :func:`drive`)."""
    steps = loop.steps()
    calls: _Driving[T] = _Driving(loop, repeat_failures_pass)
    try:
        for _ in steps:
            try:
                calls.done(await call())
            except BaseException as exc:
                if calls.ends_diagnosis(exc) or calls.repeat_failed(exc):
                    break
                raise
    except BaseException as exc:
        calls.failed(exc)
        raise
    finally:
        steps.close()
    return calls.result
