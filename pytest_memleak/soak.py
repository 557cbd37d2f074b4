"""Soak mode and process watching: a background sampler instead of a repeat loop.

A long-running test runs once while a thread samples the cheap probes every ``interval``; a
server started by the test is sampled the same way through psutil. Samples are kept up to
``retention`` (then every other one is dropped, so the whole run stays covered at a coarser
step). The series go through the same trend analysis and the same verdict step
(``detectors.verdict.judge_growth``) as the repeat loop, with rates per second and the sampling
rules of :data:`SAMPLING`. The terminal progress of a soak is ``render.progress``.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Sequence
from typing import Any, Callable

from .detectors.verdict import Sampling, SeriesFacts, judge_growth
from .model import (
    Finding,
    Growth,
    Leak,
    LeakDetails,
    ProcessInfo,
    TestResult,
    Trend,
    to_object,
)
from .probes import Probes, proc_children
from .settings import Settings
from .stats import analyse
from .vocabulary import SOAK_FLOORS, UNITS, LeakType

SOAK_FIELDS = ("t", "rss", "py_blocks", "malloc", "fds", "threads", "children")
WATCH_FIELDS = ("t", "rss", "fds", "threads", "children")
#: Fewest samples from which a soak or a watch can tell growth from noise.
MIN_SAMPLES = 5
MAX_POINTS = 200  # samples handed to the trend analysis (evenly thinned)
#: What makes sampled growth count: a growing pattern with Mann-Kendall p < 0.01, and a total
#: that reaches the metric's floor (or ``max_growth`` when larger, for memory in bytes).
SAMPLING = Sampling(
    floors=SOAK_FLOORS,
    max_p=0.01,
    patterns=frozenset(("linear", "step", "exponential", "leak")),
)


class Sampler:
    """Samples ``read()`` every ``interval`` seconds on a daemon thread until stopped."""

    def __init__(
        self,
        read: Callable[[], dict[str, float]],
        fields: tuple[str, ...],
        interval: float,
        retention: int,
        progress: Callable[[dict[str, float]], None] | None = None,
        progress_every: float = 1.0,
    ) -> None:
        self.read = read
        self.fields = fields
        self.interval = max(0.001, interval)
        self.retention = max(10, retention)
        self.samples: list[dict[str, float]] = []
        self.step = 1  # keep one sample in ``step`` after downsampling
        self.errors: list[str] = []
        self.ended: str | None = None  # why sampling ended early (the process exited...)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memleak-sampler", daemon=True)
        self._progress = progress
        self._progress_every = progress_every
        self._t0 = 0.0
        self.cpu_s = 0.0

    def start(self) -> Sampler:
        self._t0 = time.perf_counter()
        self._take()
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        if self.ended is None:
            self._take()

    def _take(self) -> bool:
        try:
            row = self.read()
        except ProcessLookupError as exc:
            self.ended = str(exc) or "the process ended"
            if len(self.samples) > 1:
                # The last reading before the end may have caught the process tearing down
                # (its memory freed on the way out): a leak would end on a drop.
                self.samples.pop()
            return False
        except Exception as exc:  # a probe failed: note it, keep the samples we have
            self.errors.append(repr(exc))
            return len(self.errors) < 5
        row["t"] = time.perf_counter() - self._t0
        self.samples.append(row)
        if len(self.samples) > self.retention:
            self.samples = self.samples[::2]
            self.step *= 2
        return True

    def _run(self) -> None:
        last_progress = time.perf_counter()
        cpu0 = time.thread_time()
        tick = 0
        while not self._stop.wait(self.interval):
            tick += 1
            if tick % self.step:
                continue
            if not self._take():
                break
            now = time.perf_counter()
            if self._progress is not None and now - last_progress >= self._progress_every:
                last_progress = now
                try:
                    self._progress(self.samples[-1])
                except Exception:
                    self._progress = None
        self.cpu_s = time.thread_time() - cpu0


def own_reader(probes: Probes) -> Callable[[], dict[str, float]]:
    """Read this process's cheap probes (no gc.collect: the test is running)."""

    def read() -> dict[str, float]:
        return {
            "rss": probes.rss(),
            "py_blocks": float(__import__("sys").getallocatedblocks()) or math.nan,
            "malloc": probes.malloc(),
            "fds": probes.fds(),
            "threads": float(threading.active_count()),
            "children": probes.children(),
        }

    return read


def _child_count(ps: Any) -> float:
    """The direct children of another process (``probes.proc_children``), else psutil's scan
    of every process on the machine."""
    pids = proc_children(ps.pid)
    return float(len(pids)) if pids is not None else float(len(ps.children()))


def process_reader(proc: Any) -> Callable[[], dict[str, float]]:
    """Read another process: a ``subprocess.Popen``, a ``psutil.Process`` or a pid."""
    import psutil

    popen = proc if hasattr(proc, "poll") and hasattr(proc, "pid") else None
    pid = proc if isinstance(proc, int) else proc.pid
    ps = proc if isinstance(proc, psutil.Process) else psutil.Process(pid)

    def ended() -> ProcessLookupError:
        code = popen.poll() if popen is not None else None
        if code is None and popen is not None:
            try:
                code = popen.wait(timeout=1)
            except Exception:
                code = None
        if code is None:
            return ProcessLookupError(f"process {pid} ended")
        what = f"killed by signal {-code}" if code < 0 else f"exited with code {code}"
        return ProcessLookupError(f"process {pid} {what}")

    def read() -> dict[str, float]:
        if popen is not None and popen.poll() is not None:
            raise ended()
        try:
            with ps.oneshot():
                return {
                    "rss": float(ps.memory_info().rss),
                    "fds": float(ps.num_fds()) if hasattr(ps, "num_fds") else math.nan,
                    "threads": float(ps.num_threads()),
                    "children": _child_count(ps),
                }
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            raise ended() from None

    return read


def short_command(cmdline: str, limit: int = 60) -> str:
    """A command line as a person names it: the program's and script's base names
    (``/venv/bin/python /srv/app/server.py --port 80`` -> ``python server.py --port 80``)."""
    words = [w.rsplit("/", 1)[-1] if w.startswith("/") else w for w in cmdline.split(" ")]
    text = " ".join(words)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe_process(proc: Any) -> ProcessInfo:
    import psutil

    pid = proc if isinstance(proc, int) else proc.pid
    try:
        cmd = " ".join(psutil.Process(pid).cmdline())
    except Exception:
        cmd = " ".join(map(str, getattr(proc, "args", []) or [])) or "?"
    cmd = cmd.replace("\r", "\\r").replace("\n", "\\n")  # one line in messages and tables
    return ProcessInfo(pid=int(pid), cmdline=cmd[:500])


def _thin(values: list[float], times: list[float]) -> tuple[list[float], list[float]]:
    n = len(values)
    if n <= MAX_POINTS:
        return values, times
    idx = [round(i * (n - 1) / (MAX_POINTS - 1)) for i in range(MAX_POINTS)]
    return [values[i] for i in idx], [times[i] for i in idx]


def _achieved_interval(samples: list[dict[str, float]]) -> float | None:
    """The median time between samples as taken (a loaded machine stretches the interval)."""
    gaps = sorted(b["t"] - a["t"] for a, b in zip(samples, samples[1:]))
    return round(gaps[len(gaps) // 2], 6) if gaps else None


def judged_window(samples: list[dict[str, float]], settings: Settings) -> list[dict[str, float]]:
    """The samples the growth-detection window keeps (all of them without a window)."""
    if settings.window is None or not samples:
        return samples
    start = samples[-1]["t"] - settings.window
    return [s for s in samples if s["t"] >= start]


def analyse_samples(samples: list[dict[str, float]], fields: tuple[str, ...]) -> dict[str, Growth]:
    """The trend of each sampled metric, rates per second (none under :data:`MIN_SAMPLES`
    samples, nor for a metric a probe could not read)."""
    growth: dict[str, Growth] = {}
    if len(samples) < MIN_SAMPLES:
        return growth
    times = [s["t"] for s in samples]
    for metric in fields:
        if metric == "t":
            continue
        values = [s.get(metric, math.nan) for s in samples]
        if any(v is None or math.isnan(v) for v in values):
            continue
        v_thin, t_thin = _thin(values, times)
        unit = UNITS.get(metric, "count")
        growth[metric] = analyse(v_thin, t_thin, metric=metric, unit=unit, min_slope=0.0)
    return growth


_KINDS: dict[str, LeakType] = {"fds": "file_handle", "threads": "thread", "children": "subprocess"}
_RESOURCE_FIX = {
    "file_handle": "Open file descriptors keep growing: close files and sockets after use.",
    "thread": "Threads keep being started and never end: join them or use a bounded pool.",
    "subprocess": "Child processes accumulate: wait() for them or use subprocess.run.",
}


def sampled_leaks(
    findings: Sequence[Finding], where: str, process: ProcessInfo | None
) -> tuple[Leak, ...]:
    """The leaks of a soak or a watch: one for the memory that grew (told by the metric that
    grew most), one per resource kind (fds: file_handle, threads: thread, children:
    subprocess)."""
    failing = [f for f in findings if f.failing]
    memory = [f for f in failing if f.metric not in _KINDS]
    groups: list[tuple[LeakType, list[Finding]]] = [("unknown", memory)] if memory else []
    groups += [(_KINDS[f.metric], [f]) for f in failing if f.metric in _KINDS]
    leaks: list[Leak] = []
    for i, (kind, group) in enumerate(groups, 1):
        main = max(group, key=lambda f: f.total) if kind == "unknown" else group[0]
        leaks.append(
            Leak(
                id=f"L{i}",
                type=kind,
                source=where,
                severity=main.severity,
                estimated_size=main.total if kind == "unknown" else None,
                growth_rate=main.rate_per_s,
                unit="bytes/s" if kind == "unknown" else f"{main.metric}/s",
                evidence=tuple(f.reason for f in group),
                recommendation=(
                    "Memory of the watched process grows under load: profile that process "
                    "(tracemalloc, memray) while it handles requests."
                    if process and kind == "unknown"
                    else "Memory grows while the test runs: rerun the workload as a "
                    "repeated @pytest.mark.memcheck test to get leak sites."
                    if kind == "unknown"
                    else _RESOURCE_FIX[kind]
                ),
                details=LeakDetails(pattern=main.pattern, metric=main.metric),
                confidence=main.confidence,
                growth_rate_per_s=main.rate_per_s,
            )
        )
    return tuple(leaks)


def build_result(
    nodeid: str,
    label: str,
    origin: str,
    sampler: Sampler,
    fields: tuple[str, ...],
    settings: Settings,
    process: ProcessInfo | None = None,
) -> TestResult:
    """The result of a soak or a watch: its samples judged by the one verdict step."""
    samples = sampler.samples
    window = judged_window(samples, settings)
    growth = analyse_samples(window, fields)
    facts = SeriesFacts(length=len(window), seconds=window[-1]["t"] if window else 0.0)
    judgement = judge_growth(growth, "s", settings, facts, SAMPLING)
    reasons = judgement.reasons
    snapshots = {
        f: tuple(
            s.get(f) if not (isinstance(s.get(f), float) and math.isnan(s[f])) else None
            for s in samples
        )
        for f in fields
    }
    where = f"pid {process.pid} ({short_command(process.cmdline)})" if process else nodeid
    leaks = sampled_leaks(judgement.findings, where, process)
    notes: dict[str, str] = {}
    if sampler.ended:
        notes["ended"] = sampler.ended
    if sampler.errors:
        notes["errors"] = "; ".join(sampler.errors[:3])
    judged = len(window)
    what = f"watched process {process.pid} ({process.cmdline[:80]})" if process else nodeid
    undecided = None
    message = ""
    if not reasons and judged < MIN_SAMPLES:
        # Too few samples to tell growth from noise: not a pass.
        undecided = (
            f"{judged} sample{'s' if judged != 1 else ''} in the judged window, at least "
            f"{MIN_SAMPLES} are needed (run it longer, or shorten interval, or widen window)"
        )
        message = f"memleak: {what} not decided: {undecided}"
    duration = samples[-1]["t"] if samples else 0.0
    if reasons:
        message = "\n".join(
            [f"memleak: {what} leaks ({len(samples)} samples over {duration:.1f} s)"]
            + [f"  - {r}" for r in reasons]
        )
    return TestResult(
        nodeid=nodeid,
        label=label,
        origin=origin,
        verdict="leak" if reasons else "skipped" if undecided else "ok",
        severity=judgement.severity,
        message=message,
        iterations=len(samples),
        warmup=0,
        partial=bool(sampler.ended) and "exited with code 0" not in (sampler.ended or ""),
        stop_reason="not decided"
        if undecided
        else sampler.ended or ("confirmed growth" if reasons else "clean"),
        duration_s=duration,
        snapshots=snapshots,
        growth=growth,
        findings=judgement.findings,
        leaks=leaks,
        settings=to_object(settings.to_dict()),
        probe_notes=notes,
        trend=Trend(
            mode="watch" if process else "soak",
            samples=len(samples),
            interval_s=sampler.interval * sampler.step,
            sampler_cpu_s=round(sampler.cpu_s, 4),
            judged_samples=judged,
            interval_achieved_s=_achieved_interval(samples),
            process=process,
            undecided=undecided,
        ),
    )


class Watch:
    """Context manager returned by ``memcheck.watch(proc)``: samples another process."""

    def __init__(
        self, proc: Any, settings: Settings, nodeid: str, sink: Callable[[TestResult], None]
    ) -> None:
        self.process = describe_process(proc)
        self.settings = settings
        self.nodeid = nodeid
        self._sink = sink
        self.sampler = Sampler(
            process_reader(proc), WATCH_FIELDS, settings.interval, settings.retention
        )
        self.result: TestResult | None = None

    def __enter__(self) -> Watch:
        self.sampler.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.sampler.stop()
        self.result = build_result(
            self.nodeid,
            f"watch pid {self.process.pid}",
            "watch",
            self.sampler,
            WATCH_FIELDS,
            self.settings,
            self.process,
        )
        self._sink(self.result)
