"""The verdict: which confirmed growth breaks which threshold, and the health status.

One step judges every series: :func:`judge_growth` takes the trend analysis of each metric, the
series' unit of time (one point per measured iteration, or samples taken in time), the settings
and the facts about the series, and gives the findings, the failing reasons and the severity.
The repeat loop reaches it through :func:`judge`; a soak and a watch through
``soak.build_result``, with their sampling rules as a :class:`Sampling` policy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Literal

from ..model import Finding, Growth, NoiseFloor, Trend
from ..series import Measurement
from ..settings import Settings
from ..stats import severity_for
from ..units import format_size
from ..vocabulary import (
    COUNT_METRICS,
    FLOORS,
    UNITS,
    Pattern,
    Severity,
    VerdictName,
    severity_rank,
    worst_severity,
)

HEALTH_CUTS = ((2.5, "critical"), (1.5, "warning"))
#: Resource leaks (fds, threads, children) hit hard OS limits: they rank high whatever their size.
COUNT_SEVERITY: Severity = "high"


#: Shortest measured window (seconds) for which the per-second severity cut-offs apply.
MIN_WINDOW_FOR_RATE_S = 1.0

#: A series' unit of time: one point per measured iteration, or samples taken in time.
Per = Literal["iter", "s"]


def _window_s(m: Measurement) -> float:
    t = m.series.get("t") or []
    return float(t[-1] - t[0]) if len(t) > 1 and t[0] is not None and t[-1] is not None else 0.0


def health_for(ratio: float | None) -> str:
    if ratio is None:
        return "unknown"
    for cut, name in HEALTH_CUTS:
        if ratio > cut:
            return name
    return "healthy"


@dataclass
class Verdict:
    verdict: VerdictName
    severity: Severity
    findings: list[Finding] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)  # failing threshold lines
    health: str = "unknown"
    trend: Trend = field(default_factory=Trend)
    noise: dict[str, NoiseFloor] = field(default_factory=dict)
    #: absolute limits broken (max_rss, max_external_ratio): no suppressed leak explains them
    limits: list[str] = field(default_factory=list)


# ------------------------------------------------------------------------- the one step


@dataclass(frozen=True)
class Breach:
    """A limit the series broke beside its growth (max_rss, max_external, a runaway)."""

    reason: str
    severity: Severity
    #: an absolute limit: no suppressed leak explains it (max_external is not one)
    absolute: bool = True


@dataclass(frozen=True)
class SeriesFacts:
    """What the verdict needs to know about a series besides the trend of each metric."""

    #: points in the series: measured iterations, or samples in the judged window
    length: int
    #: seconds the series covers: the loop's measured window; a sampled series' last sample
    seconds: float
    #: bytes of one Python block, to read py_blocks as memory (None: they stay a count)
    block_size: float | None = None
    #: metric -> why the diagnosis does not confirm its growth (tolerated)
    unconfirmed: Mapping[str, str] = field(default_factory=dict)
    #: metric -> which reading of it was judged, when not its own series (see judge)
    readings: Mapping[str, str] = field(default_factory=dict)
    breaches: Sequence[Breach] = ()


@dataclass(frozen=True)
class Sampling:
    """How a series sampled in time (a soak, a watch) is judged.

    No screening rounds confirmed its growth: a metric is judged when its pattern is one of
    ``patterns`` with Mann-Kendall p below ``max_p`` and its total reaches its floor
    (``max_growth`` when larger, for a metric in bytes). Then it fails: ``fail_on`` does not
    apply, and tolerated growth is not reported. Its memory metrics are one growth of one
    process: each takes the severity of the one that grew most.
    """

    floors: Mapping[str, float]
    max_p: float
    patterns: frozenset[Pattern]


@dataclass(frozen=True)
class Judgement:
    findings: tuple[Finding, ...] = ()
    reasons: tuple[str, ...] = ()  # failing threshold lines, then the breaches
    severity: Severity = "none"  # the worst failing one ("none" when nothing fails)
    limits: tuple[str, ...] = ()  # the absolute breaches

    @property
    def failing(self) -> bool:
        return bool(self.reasons)


def _rank(sev: str) -> int:
    return severity_rank(sev)


def _describe(metric: str, value: float) -> str:
    if metric in COUNT_METRICS or metric == "py_blocks":
        unit = "blocks" if metric == "py_blocks" else metric
        return f"{value:+.2f} {unit}"
    return ("+" if value >= 0 else "") + format_size(value)


def _sampled(metric: str, g: Growth, settings: Settings, sampling: Sampling) -> bool:
    """Whether a sampled metric grew enough to be judged."""
    need = sampling.floors.get(metric, 0.0)
    if UNITS.get(metric) == "bytes" and settings.max_growth is not None:
        need = max(need, float(settings.max_growth))
    sustained = g.pattern in sampling.patterns and g.mk_p < sampling.max_p
    return sustained and g.total_growth >= need


@dataclass(frozen=True)
class _Bytes:
    """A memory metric's growth in bytes (None: a count, or py_blocks without a block size)."""

    total: float | None = None
    per_s: float | None = None
    per_iter: float | None = None  # only in a series of iterations


def _in_bytes(metric: str, g: Growth, per: Per, block_size: float | None) -> _Bytes:
    scale = block_size if metric == "py_blocks" else 1.0
    if metric in COUNT_METRICS or scale is None:
        return _Bytes()
    return _Bytes(
        total=g.total_growth * scale,
        per_s=g.slope_per_s * scale,
        per_iter=g.slope_per_iter * scale if per == "iter" else None,
    )


def _severity(metric: str, g: Growth, b: _Bytes, timed: bool) -> Severity:
    if metric in COUNT_METRICS:
        return COUNT_SEVERITY
    # Per-second cut-offs only when the window lasted long enough to mean something: a
    # microsecond body extrapolates 72 B/call to "72 MB/s".
    rate_s = max(g.slope_per_s if b.per_s is None else b.per_s, 0.0) if timed else 0.0
    return severity_for(g.total_growth if b.total is None else b.total, rate_s)


def _tolerated(
    metric: str,
    g: Growth,
    b: _Bytes,
    severity: Severity,
    s: Settings,
    facts: SeriesFacts,
    sampling: Sampling | None,
) -> list[str]:
    """Why a growth does not fail ([] when it does)."""
    checks: list[str] = []
    if sampling is None and _rank(severity) < _rank(s.fail_on):
        checks.append(f"severity {severity} is below fail_on={s.fail_on}")
    if b.total is not None and s.max_rate is not None:
        rate = b.per_iter if s.max_rate.per == "iter" else b.per_s
        if rate is not None and rate <= s.max_rate.bytes:
            checks.append(f"rate within max_rate={s.max_rate}")
    if (
        sampling is None  # a sampled series takes max_growth as its floor
        and b.total is not None
        and s.max_growth is not None
        and b.total <= s.max_growth
    ):
        checks.append(f"total within max_growth={format_size(s.max_growth)}")
    if _no_trend(g):
        # The analysis of the whole series calls it no trend (one step, then flat): a finding
        # the analysis rates stable never fails a test.
        checks.append(f"pattern {g.pattern} with confidence {g.confidence:.2f} is no trend")
    unconfirmed = facts.unconfirmed.get(metric)
    if unconfirmed:
        checks.append(unconfirmed)
    return checks


def _no_trend(g: Growth) -> bool:
    return g.pattern == "stable" or g.confidence <= 0.0


def _reason(
    metric: str,
    g: Growth,
    b: _Bytes,
    per: Per,
    severity: Severity,
    checks: list[str],
    s: Settings,
    facts: SeriesFacts,
) -> str:
    if per == "s":
        if UNITS.get(metric) == "bytes":
            rate, total = f"{format_size(g.slope_per_s)}/s", format_size(g.total_growth)
        else:
            rate, total = f"{g.slope_per_s:+.2f} {metric}/s", f"{g.total_growth:+.0f}"
        return (
            f"{metric} grew {rate}, {total} over {facts.seconds:.1f} s; pattern {g.pattern}, "
            f"confidence {g.confidence:.2f}"
        )
    rate = _describe(metric, g.slope_per_iter) + "/iter"
    if b.per_iter is not None and metric == "py_blocks":
        rate += f" (~{format_size(b.per_iter)}/iter)"
    if metric in facts.readings:
        rate += f" {facts.readings[metric]}"
    reason = (
        f"{metric} grew {rate}, {_describe(metric, g.total_growth)} over {facts.length} "
        f"iterations; pattern {g.pattern}, confidence {g.confidence:.2f}, severity {severity}"
    )
    if checks:
        return reason + "; tolerated: " + ", ".join(checks)
    broke = f"max_rate={s.max_rate}" if s.max_rate is not None else "any confirmed growth"
    return reason + f"; breaks {broke} (fail_on={s.fail_on})"


def judge_growth(
    growth: Mapping[str, Growth],
    per: Per,
    settings: Settings,
    facts: SeriesFacts,
    sampling: Sampling | None = None,
) -> Judgement:
    """The findings, failing reasons and severity of the metrics in ``growth``.

    ``growth`` holds the analysis of each metric to judge, in the order to report them: the
    metrics the loop's rounds confirmed, or (with ``sampling``) every sampled metric, of which
    only those whose growth the policy counts are judged. Rates are per ``per``: the
    per-second severity cut-offs apply to a series in time, and to a series of iterations that
    lasted :data:`MIN_WINDOW_FOR_RATE_S`; a ``max_rate`` applies in its own unit only.
    """
    findings: list[Finding] = []
    reasons: list[str] = []
    timed = per == "s" or facts.seconds >= MIN_WINDOW_FOR_RATE_S
    for metric, g in growth.items():
        if sampling is not None and not _sampled(metric, g, settings, sampling):
            continue
        b = _in_bytes(metric, g, per, facts.block_size)
        severity = _severity(metric, g, b, timed)
        checks = _tolerated(metric, g, b, severity, settings, facts, sampling)
        if checks and sampling is not None:
            continue  # tolerated sampled growth is not reported
        reason = _reason(metric, g, b, per, severity, checks, settings, facts)
        if not checks:
            reasons.append(reason)
        findings.append(
            Finding(
                metric=metric,
                rate_per_iter=g.slope_per_iter,
                bytes_per_iter=b.per_iter,
                rate_per_s=g.slope_per_s,
                total=g.total_growth,
                pattern=g.pattern,
                confidence=g.confidence,
                severity=severity,
                failing=not checks,
                reason=reason,
            )
        )
    if sampling is not None:
        findings = _one_memory_growth(findings)
    worst = worst_severity(*(f.severity for f in findings if f.failing))
    for breach in facts.breaches:
        reasons.append(breach.reason)
        worst = worst_severity(worst, breach.severity)
    if not reasons:
        return Judgement(findings=tuple(findings))
    return Judgement(
        findings=tuple(findings),
        reasons=tuple(reasons),
        severity=worst if worst != "none" else "low",
        limits=tuple(x.reason for x in facts.breaches if x.absolute),
    )


def _one_memory_growth(findings: list[Finding]) -> list[Finding]:
    """The memory findings of a sampled process take the severity of the one that grew most."""
    memory = [f for f in findings if f.metric not in COUNT_METRICS]
    if not memory:
        return findings
    severity = max(memory, key=lambda f: f.total).severity
    return [f if f.metric in COUNT_METRICS else replace(f, severity=severity) for f in findings]


# ------------------------------------------------------------------------- the repeat loop

#: How a malloc finding read from the main arena's series says so.
MAIN_ARENA_READING = "in the main arena (the total moved with other threads' memory)"


def judge(m: Measurement) -> Verdict:
    """The verdict of the repeat loop's measurement."""
    v = Verdict(verdict="ok", severity="none")
    _trend(m, v)
    if m.outcome in ("error", "skipped", "not_repeatable"):
        v.verdict = "skipped" if m.outcome == "skipped" else "error"
        return v
    growth = {metric: m.growth[metric] for metric in m.confirmed if metric in m.growth}
    readings: dict[str, str] = {}
    main = m.growth.get("malloc_main")
    if (
        "malloc" in growth
        and _no_trend(growth["malloc"])
        and main is not None
        and not _no_trend(main)
        and main.slope_per_iter > 0
    ):
        # The rounds confirmed malloc through the main arena's screen, or the total's; other
        # threads' memory moving the total by kilobytes can leave its whole series without a
        # trend. The main arena's own series then speaks for the test's growth.
        growth["malloc"] = main
        readings["malloc"] = MAIN_ARENA_READING
    unconfirmed: dict[str, str] = {}
    for metric, g in growth.items():
        why = _unconfirmed_count(m, metric) or _unconfirmed_native(m, metric, g.slope_per_iter)
        if why:
            unconfirmed[metric] = why
    facts = SeriesFacts(
        length=m.iterations,
        seconds=_window_s(m),
        block_size=m.block_size or 64.0,
        unconfirmed=unconfirmed,
        readings=readings,
        breaches=_breaches(m, v.trend),
    )
    j = judge_growth(growth, "iter", m.settings, facts)
    v.findings = list(j.findings)
    v.reasons = list(j.reasons)
    v.limits = list(j.limits)
    if j.failing:
        v.verdict = "leak"
        v.severity = j.severity
    return v


def _breaches(m: Measurement, trend: Trend) -> list[Breach]:
    """The loop's limits beside growth: max_rss, max_external, max_external_ratio, a runaway."""
    s = m.settings
    out: list[Breach] = []
    rss = m.series.get("rss") or []
    if s.max_rss is not None and rss and rss[-1] is not None and rss[-1] > s.max_rss:
        out.append(
            Breach(
                f"rss ended at {format_size(rss[-1])}, above max_rss={format_size(s.max_rss)}",
                "medium",
            )
        )
    ext = m.series.get("external") or []
    if (
        s.max_external is not None
        and len(ext) > 1
        and ext[0] is not None
        and ext[-1] is not None
        and ext[-1] - ext[0] > s.max_external
    ):
        out.append(
            Breach(
                f"external memory grew {format_size(ext[-1] - ext[0])}, above "
                f"max_external={format_size(s.max_external)}",
                "medium",
                absolute=False,
            )
        )
    ratio = trend.external_ratio
    if s.max_external_ratio is not None and ratio is not None and ratio > s.max_external_ratio:
        out.append(
            Breach(
                f"external ratio {ratio:.2f} is above max_external_ratio={s.max_external_ratio}",
                "medium",
            )
        )
    if m.runaway:
        out.append(Breach(m.runaway, "critical"))
    return out


#: Diagnosis counts that confirm a count metric's growth.
_RESOURCE_COUNTS = {
    "threads": (("thread_count",), "threads"),
    "fds": (("file_count", "socket_count"), "descriptors"),
    "children": (("child_count",), "child processes"),
}


def _unconfirmed_count(m: Measurement, metric: str) -> str:
    """Why a count finding is not confirmed by the diagnosis ("" when it is, or when no
    diagnosis ran): its inventory found no new resource of that kind."""
    d = m.diagnosis
    if metric not in _RESOURCE_COUNTS or d is None or not d.resources:
        return ""
    keys, noun = _RESOURCE_COUNTS[metric]
    if sum(int(d.resources.get(k, 0) or 0) for k in keys) > 0:
        return ""
    return f"not confirmed: 0 new {noun} in {d.iterations} traced iterations"


#: Share of a native finding's rate that the settled re-reading must show to confirm it.
NATIVE_CONFIRM_SHARE = 0.25


def _unconfirmed_native(m: Measurement, metric: str, rate: float | None) -> str:
    """Why a malloc or rss finding without Python heap growth is not confirmed ("" when it is,
    or when no settled diagnosis ran): read again over the diagnosis's untraced calls, with
    glibc's per-thread cache filled and free pages trimmed at both ends, it did not grow by a
    quarter of its rate. What grew was memory the allocator keeps for reuse, not the test's."""
    d = m.diagnosis
    if (
        metric not in ("malloc", "malloc_main", "rss")
        or d is None
        or not d.allocator_settled
        or "py_blocks" in m.confirmed
        or not rate
        or rate <= 0
    ):
        return ""
    if metric == "rss":
        if "malloc" in m.confirmed or any(c in m.confirmed for c in COUNT_METRICS):
            return ""
        steps = d.rss_rising_steps
        if not d.objects and steps is not None and steps < d.untraced_calls - 1:
            # Neither heap grew, no object survived, and RSS did not rise call after call (a
            # mapping kept per call does): pages the allocators keep, fragmentation.
            return (
                f"not confirmed: rss rose after {steps} of {d.untraced_calls} untraced "
                "calls, with no surviving object and no heap growth (memory the allocators "
                "keep)"
            )
        settled = d.settled_rss_per_iter
    else:
        settled = d.untraced_malloc_per_iter
        main = d.untraced_main_per_iter
        if settled is not None and main is not None:
            # what the main thread's own arena kept counts, whatever other threads freed
            settled = max(settled, main)
        if _steps_too_sparse(m.series.get(metric) or [], d.untraced_calls):
            return ""
    if settled is None or settled >= NATIVE_CONFIRM_SHARE * rate:
        return ""
    return (
        f"not confirmed: {format_size(settled)}/iter over the diagnosis's calls with glibc's "
        "caches settled (memory the allocator keeps for reuse)"
    )


def _steps_too_sparse(series: list[float | None], window: int) -> bool:
    """The measured series grew in steps too far apart for the diagnosis's untraced window to
    see one for sure (a buffer grown in place is reallocated every few calls, with headroom):
    its silence then refutes nothing."""
    values = [v for v in series if v is not None]
    rises = sum(1 for a, b in zip(values, values[1:]) if b > a)
    if rises == 0 or window <= 0:
        return False
    return (len(values) - 1) / rises * 2 > window


def _slope(m: Measurement, metric: str) -> float | None:
    g = m.growth.get(metric)
    return None if g is None else g.slope_per_iter


def _trend(m: Measurement, v: Verdict) -> None:
    ext = m.series.get("external") or []
    ratios = m.series.get("external_ratio") or []
    ratio = ratios[-1] if ratios else None
    v.health = health_for(ratio)
    v.trend = Trend(
        rss_slope_per_iter=_slope(m, "rss"),
        heap_slope_per_iter=_slope(m, "heap"),
        divergence_start=ext[0] if ext else None,
        divergence_end=ext[-1] if ext else None,
        divergence_slope_per_iter=_slope(m, "external"),
        external_ratio=ratio,
        health=v.health,
    )
    n = max(1, m.iterations)
    for metric, g in m.growth.items():
        floor = FLOORS.get(metric, FLOORS["malloc"])
        v.noise[metric] = NoiseFloor(
            noise=g.noise, min_detectable_per_iter=max(floor, 3.0 * g.noise / n)
        )
