"""Trend analysis of a metric sampled once per iteration: robust slope, Mann-Kendall, patterns.

Pure functions over numbers. Values are scaled internally by a power of two so that any finite
input (up to the float limits) gives finite results without changing exact integer series.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import Any

from . import trend_py
from .model import Growth
from .trend_py import ALPHA as _ALPHA
from .trend_py import MannKendall
from .vocabulary import PATTERNS, SEVERITIES, Pattern, Severity

__all__ = [
    "PATTERNS",
    "SEVERITIES",
    "Growth",
    "MannKendall",
    "analyse",
    "mann_kendall",
    "severity_for",
    "theil_sen",
]


_MB = 1024.0**2
_KB = 1024.0
_MAD_TO_SIGMA = 1.4826

RECOMMENDATIONS = {
    "stable": "No sustained growth: nothing to do.",
    "spike": (
        "Transient spikes that return to baseline: temporary allocations (large buffers, "
        "batching, GC timing), not a leak."
    ),
    "plateau": (
        "Growth stopped after the first iterations (a cache filling up): not a leak unless "
        "the bound is too large."
    ),
    "linear": (
        "Memory grows by a constant amount every iteration: look for a container (list, dict, "
        "cache, listener registry) that is appended to and never pruned."
    ),
    "step": (
        "Memory grows in discrete, similar jumps every few iterations: look for a buffer, pool "
        "or arena that is extended in chunks, or something retained every N calls."
    ),
    "exponential": (
        "Growth accelerates each iteration: look for a structure rebuilt from or copied into "
        "itself (a list extended with its own items, nested references kept alive)."
    ),
    "leak": (
        "Sustained but irregular growth: objects are being retained; compare tracemalloc "
        "snapshots or follow gc.get_referrers() to find what holds them."
    ),
}


# --------------------------------------------------------------------------- public API


def theil_sen(y: Sequence[float], x: Sequence[float] | None = None) -> tuple[float, float]:
    """Robust slope and intercept: median of pairwise slopes (x defaults to 0..n-1).

    n < 2 gives (0.0, y0 or 0). Pairs with equal x are skipped.
    """
    ops, ya, xa = _series(y, x, "y", "x")
    n = len(ya)
    if xa is None:
        xa = ops.arange(n)
    if len(xa) != n:
        raise ValueError(f"theil_sen: x has {len(xa)} values but y has {n}")
    if n < 2:
        return 0.0, float(ya[0]) if n else 0.0
    scale = ops.pow2_scale(ya)
    with ops.quiet():
        slope, intercept = ops.ts(ops.scaled(ya, scale), xa)
    return _finite(slope * scale), _finite(intercept * scale)


def mann_kendall(y: Sequence[float]) -> MannKendall:
    """Mann-Kendall test with tie-corrected variance; n < 3 gives s=0, z=0, p=1, tau=0."""
    ops, ya, _ = _series(y, None, "y", "")
    result: MannKendall = ops.mk(ya)
    return result


def severity_for(total_growth_bytes: float, rate_bytes_per_s: float) -> Severity:
    """Severity of a memory growth from its total and its rate (callers use "none" themselves)."""
    total, rate = total_growth_bytes, rate_bytes_per_s
    if total > 100 * _MB or rate > 1 * _MB:
        return "critical"
    if total > 50 * _MB or rate > 500 * _KB:
        return "high"
    if total > 20 * _MB or rate > 100 * _KB:
        return "medium"
    return "low"


def _series(
    values: Sequence[float], times: Sequence[float] | None, what: str, what_times: str
) -> tuple[ModuleType, Any, Any]:
    """The primitives for these series, and the series in the form they take: ``trend_py``
    and lists of floats for a short series of plain finite numbers; ``trend_np`` and arrays
    otherwise (numpy is imported then; it validates, and a None, a string or a NaN raises a
    ValueError naming ``what`` or ``what_times``)."""
    if len(values) <= trend_py.SHORT:
        y = trend_py.plain(values)
        t = None if times is None else trend_py.plain(times)
        if y is not None and (times is None or t is not None):
            return trend_py, y, t
    from . import trend_np

    ya = trend_np.as_array(values, what)
    ta = None if times is None else trend_np.as_array(times, what_times)
    return trend_np, ya, ta


def _finite(v: float) -> float:
    """A plain finite float: NaN becomes 0, infinities the largest float of their sign."""
    v = float(v)
    if math.isnan(v):
        return 0.0
    if math.isinf(v):
        return math.copysign(sys.float_info.max, v)
    return v


def _confidence(mk: MannKendall, inc: float, slope: float, min_slope: float) -> float:
    """Combine significance, monotonicity and slope margin into 0..1."""
    margin = 1.0 if min_slope <= 0.0 else min(1.0, max(0.0, slope / (2.0 * min_slope)))
    c = 0.35 * (1.0 - mk.p) + 0.25 * abs(mk.tau) + 0.15 * inc + 0.25 * margin
    return min(1.0, max(0.0, c)) if math.isfinite(c) else 0.0


#: What :func:`analyse` finds for a constant series (most of a clean test's metrics), without
#: computing it: no slope, no trend, no noise.
_FLAT: dict[str, Any] = {
    "pattern": "stable",
    "slope_per_iter": 0.0,
    "slope_per_s": 0.0,
    "total_growth": 0.0,
    "r2": 0.0,
    "mk_p": 1.0,
    "tau": 0.0,
    "increasing_fraction": 0.0,
    "confidence": 0.0,
    "noise": 0.0,
    "recommendation": RECOMMENDATIONS["stable"],
}


def _constant(values: Sequence[float], times: Sequence[float] | None, min_slope: float) -> bool:
    """True for a valid input whose values are all one finite number (the fast path of
    :func:`analyse`); anything else, invalid input included, takes the full path."""
    try:
        if len(values) == 0 or (times is not None and len(times) != len(values)):
            return False
        first = values[0]
        if type(first) not in (float, int) or not math.isfinite(first):
            return False
        if any(v != first or type(v) not in (float, int) for v in values):
            return False
        if times is not None and not all(
            type(t) in (float, int) and math.isfinite(t) for t in times
        ):
            return False
        return math.isfinite(min_slope) and min_slope >= 0
    except TypeError:
        return False


def analyse(
    values: Sequence[float],
    times: Sequence[float] | None = None,
    *,
    metric: str,
    unit: str,
    min_slope: float = 0.0,
) -> Growth:
    """Classify the trend of a metric sampled after each measured iteration.

    ``times`` are the sample timestamps in seconds (for ``slope_per_s``); ``min_slope`` is the
    smallest slope per iteration that counts as growth for this metric.
    """
    flat = _constant(values, times, min_slope)
    if flat:
        return Growth(metric=str(metric), unit=str(unit), **_FLAT)
    ops, raw, t = _series(values, times, metric, f"{metric} times")
    n = len(raw)
    if t is not None and len(t) != n:
        raise ValueError(f"{metric}: {len(t)} timestamps for {n} values")
    if not math.isfinite(min_slope) or min_slope < 0:
        raise ValueError(f"{metric}: min_slope must be a finite number >= 0, got {min_slope!r}")

    scale = ops.pow2_scale(raw)
    with ops.quiet():
        y = ops.scaled(raw, scale)
        ms = min_slope / scale
        x = ops.arange(n)
        slope, intercept = ops.ts(y, x)
        noise = _MAD_TO_SIGMA * ops.spread(y, x, slope, intercept) if n else 0.0
        mk = ops.mk(y)
        r2 = ops.r2(x, y)
        d = ops.diff(y)
        inc = ops.rising_fraction(d)
        slope_s = 0.0
        if t is not None and n >= 2 and ops.ptp(t) > 0:
            slope_s = ops.ts(y, t)[0]
        total = float(raw[-1]) - float(raw[0]) if n else 0.0

        pattern: Pattern = "stable"
        head_slope = 0.0
        if n >= 3 and ops.ptp(y) > 0:
            if ops.is_spike(y, x, noise, ms):
                pattern = "spike"
            else:
                plateau, head_slope = ops.is_plateau(y, x, ms)
                if plateau:
                    pattern = "plateau"
                elif slope <= 0.0 or slope < ms or mk.s <= 0 or mk.p >= _ALPHA:
                    pattern = "stable"
                elif ops.is_exponential(y, x, r2, scale):
                    pattern = "exponential"
                elif r2 >= 0.9 and inc >= 0.6:
                    pattern = "linear"
                elif ops.is_step(d):
                    pattern = "step"
                else:
                    pattern = "leak"

        if pattern in ("stable", "spike"):
            confidence = 0.0
        elif pattern == "plateau":  # bounded growth: much less sure it is a leak
            confidence = 0.5 * _confidence(mk, inc, max(slope, head_slope), ms)
        else:
            confidence = _confidence(mk, inc, slope, ms)

        return Growth(
            metric=str(metric),
            unit=str(unit),
            pattern=pattern,
            slope_per_iter=_finite(slope * scale),
            slope_per_s=_finite(slope_s * scale),
            total_growth=_finite(total),
            r2=_finite(r2),
            mk_p=_finite(mk.p),
            tau=_finite(mk.tau),
            increasing_fraction=_finite(inc),
            confidence=_finite(confidence),
            noise=_finite(noise * scale),
            recommendation=RECOMMENDATIONS[pattern],
        )
