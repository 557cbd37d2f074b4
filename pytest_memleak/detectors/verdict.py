"""The verdict: which confirmed growth breaks which threshold, and the health status."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..model import Finding, NoiseFloor, Trend
from ..runner import Measurement
from ..units import format_size
from ..vocabulary import COUNT_METRICS, FLOORS, Severity, VerdictName, severity_rank, worst_severity
from .trend import severity_for

HEALTH_CUTS = ((2.5, "critical"), (1.5, "warning"))
#: Resource leaks (fds, threads, children) hit hard OS limits: they rank high whatever their size.
COUNT_SEVERITY: Severity = "high"


#: Shortest measured window (seconds) for which the per-second severity cut-offs apply.
MIN_WINDOW_FOR_RATE_S = 1.0


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


def _rank(sev: str) -> int:
    return severity_rank(sev)


def _describe(metric: str, value: float) -> str:
    if metric in COUNT_METRICS or metric == "py_blocks":
        unit = "blocks" if metric == "py_blocks" else metric
        return f"{value:+.2f} {unit}"
    return ("+" if value >= 0 else "") + format_size(value)


def judge(m: Measurement) -> Verdict:
    s = m.settings
    series = m.series
    v = Verdict(verdict="ok", severity="none")
    _trend(m, v)
    if m.outcome in ("error", "skipped", "not_repeatable"):
        v.verdict = "skipped" if m.outcome == "skipped" else "error"
        return v
    worst: Severity = "none"
    for metric in m.confirmed:
        g = m.growth.get(metric)
        if g is None:
            continue
        is_count = metric in COUNT_METRICS
        if metric == "py_blocks":
            bpi: float | None = g.slope_per_iter * (m.block_size or 64.0)
            total_b: float | None = g.total_growth * (m.block_size or 64.0)
            bps = g.slope_per_s * (m.block_size or 64.0)
        elif is_count:
            bpi = total_b = None
            bps = 0.0
        else:
            bpi, total_b, bps = g.slope_per_iter, g.total_growth, g.slope_per_s
        # Per-second cut-offs only when the window lasted long enough to mean something: a
        # microsecond body extrapolates 72 B/call to "72 MB/s".
        window = _window_s(m)
        rate_s = max(bps, 0.0) if window >= MIN_WINDOW_FOR_RATE_S else 0.0
        severity = COUNT_SEVERITY if is_count else severity_for(total_b or 0.0, rate_s)
        checks: list[str] = []
        failing = _rank(severity) >= _rank(s.fail_on)
        if not failing:
            checks.append(f"severity {severity} is below fail_on={s.fail_on}")
        if not is_count and s.max_rate is not None:
            rate = bpi if s.max_rate.per == "iter" else bps
            if rate is not None and rate <= s.max_rate.bytes:
                failing = False
                checks.append(f"rate within max_rate={s.max_rate}")
        if not is_count and s.max_growth is not None and (total_b or 0.0) <= s.max_growth:
            failing = False
            checks.append(f"total within max_growth={format_size(s.max_growth)}")
        if g.pattern == "stable" or g.confidence <= 0.0:
            # The analysis of the whole series calls it no trend (one step, then flat):
            # a finding the analysis rates stable never fails a test.
            failing = False
            checks.append(f"pattern {g.pattern} with confidence {g.confidence:.2f} is no trend")
        unconfirmed = _unconfirmed_count(m, metric) or _unconfirmed_native(m, metric, bpi)
        if unconfirmed:
            failing = False
            checks.append(unconfirmed)
        rate_text = _describe(metric, g.slope_per_iter) + "/iter"
        if bpi is not None and metric == "py_blocks":
            rate_text += f" (~{format_size(bpi)}/iter)"
        broke = f"max_rate={s.max_rate}" if s.max_rate is not None else "any confirmed growth"
        reason = (
            f"{metric} grew {rate_text}, {_describe(metric, g.total_growth)} over "
            f"{m.iterations} iterations; pattern {g.pattern}, confidence {g.confidence:.2f}, "
            f"severity {severity}"
        )
        if failing:
            reason += f"; breaks {broke} (fail_on={s.fail_on})"
            v.reasons.append(reason)
            if _rank(severity) > _rank(worst):
                worst = severity
        else:
            reason += "; tolerated: " + ", ".join(checks)
        v.findings.append(
            Finding(
                metric,
                g.slope_per_iter,
                bpi,
                g.slope_per_s,
                g.total_growth,
                g.pattern,
                g.confidence,
                severity,
                failing,
                reason,
            )
        )
    rss = series.get("rss") or []
    if s.max_rss is not None and rss and rss[-1] is not None and rss[-1] > s.max_rss:
        v.limits.append(
            f"rss ended at {format_size(rss[-1])}, above max_rss={format_size(s.max_rss)}"
        )
        v.reasons.append(v.limits[-1])
        worst = worst_severity(worst, "medium")
    ext = series.get("external") or []
    if (
        s.max_external is not None
        and len(ext) > 1
        and ext[0] is not None
        and ext[-1] is not None
        and ext[-1] - ext[0] > s.max_external
    ):
        v.reasons.append(
            f"external memory grew {format_size(ext[-1] - ext[0])}, above "
            f"max_external={format_size(s.max_external)}"
        )
        worst = worst_severity(worst, "medium")
    ratio = v.trend.external_ratio
    if s.max_external_ratio is not None and ratio is not None and ratio > s.max_external_ratio:
        v.limits.append(
            f"external ratio {ratio:.2f} is above max_external_ratio={s.max_external_ratio}"
        )
        v.reasons.append(v.limits[-1])
        worst = worst_severity(worst, "medium")
    if m.runaway:
        v.limits.append(m.runaway)
        v.reasons.append(m.runaway)
        worst = "critical"
    if v.reasons:
        v.verdict = "leak"
        v.severity = worst if worst != "none" else "low"
    return v


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
    if settled is None or settled >= NATIVE_CONFIRM_SHARE * rate:
        return ""
    return (
        f"not confirmed: {format_size(settled)}/iter over the diagnosis's calls with glibc's "
        "caches settled (memory the allocator keeps for reuse)"
    )


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
