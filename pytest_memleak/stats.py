"""Trend analysis of a metric sampled once per iteration: robust slope, Mann-Kendall, patterns.

Pure functions over numbers. Values are scaled internally by a power of two so that any finite
input (up to the float limits) gives finite results without changing exact integer series.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np

from .model import Growth
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
_ALPHA = 0.05  # significance level of the Mann-Kendall tests
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


@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall trend test: statistic S, normal score z, two-sided p, Kendall tau."""

    s: int
    z: float
    p: float
    tau: float


# --------------------------------------------------------------------------- helpers


@lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (i, j) of every pair i < j for n points (cached, read-only)."""
    i, j = np.triu_indices(n, 1)
    i.flags.writeable = False
    j.flags.writeable = False
    return i, j


def _pow2_scale(a: np.ndarray) -> float:
    """A power of two close to max |a| (1.0 for empty, zero or non-finite input)."""
    if a.size == 0:
        return 1.0
    m = float(np.max(np.abs(a)))
    if m == 0.0 or not math.isfinite(m):
        return 1.0
    return math.ldexp(1.0, math.frexp(m)[1] - 1)


def _finite(v: float) -> float:
    """A plain finite float: NaN becomes 0, infinities the largest float of their sign."""
    v = float(v)
    if math.isnan(v):
        return 0.0
    if math.isinf(v):
        return math.copysign(sys.float_info.max, v)
    return v


def _as_array(values: Sequence[float], what: str) -> np.ndarray:
    """Validate a series (no None, numeric, finite) and return it as a float array."""
    for k, v in enumerate(values):
        if v is None:
            raise ValueError(f"{what}: sample {k} is None; expected a finite number")
    try:
        a = np.asarray(values, dtype=float)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what}: expected a sequence of numbers ({exc})") from None
    if a.ndim != 1:
        raise ValueError(f"{what}: expected a flat sequence of numbers, got shape {a.shape}")
    if not np.all(np.isfinite(a)):
        k = int(np.flatnonzero(~np.isfinite(a))[0])
        raise ValueError(f"{what}: sample {k} is {a[k]!r}; expected a finite number")
    return a


def _ts(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
    """Theil-Sen slope and intercept on arrays (no validation, no scaling)."""
    n = y.size
    if n == 0:
        return 0.0, 0.0
    if n == 1:
        return 0.0, float(y[0])
    i, j = _pairs(n)
    dx = x[j] - x[i]
    ok = dx != 0
    if not np.any(ok):
        return 0.0, float(np.median(y))
    slopes = (y[j][ok] - y[i][ok]) / dx[ok]
    slopes = slopes[~np.isnan(slopes)]
    slope = float(np.median(slopes)) if slopes.size else 0.0
    if not math.isfinite(slope):
        slope = 0.0
    return slope, float(np.median(y - slope * x))


def _mk(y: np.ndarray) -> MannKendall:
    """Mann-Kendall test on an array."""
    n = y.size
    if n < 3:
        return MannKendall(s=0, z=0.0, p=1.0, tau=0.0)
    i, j = _pairs(n)
    a, b = y[i], y[j]
    s = int(np.count_nonzero(b > a)) - int(np.count_nonzero(b < a))
    _, counts = np.unique(y, return_counts=True)
    t = counts[counts > 1].astype(float)
    var = (n * (n - 1) * (2 * n + 5) - float(np.sum(t * (t - 1) * (2 * t + 5)))) / 18.0
    tau = s / (n * (n - 1) / 2.0)
    if var <= 0.0 or s == 0:
        return MannKendall(s=s, z=0.0, p=1.0, tau=tau)
    z = (s - math.copysign(1.0, s)) / math.sqrt(var)
    p = min(1.0, max(0.0, math.erfc(abs(z) / math.sqrt(2.0))))
    return MannKendall(s=s, z=z, p=p, tau=tau)


def _r2(x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of the least-squares line (0 for a constant or degenerate series)."""
    if y.size < 2 or np.ptp(y) == 0 or np.ptp(x) == 0:
        return 0.0
    xm = x - x.mean()
    ym = y - y.mean()
    sxx = float(xm @ xm)
    syy = float(ym @ ym)
    if sxx <= 0.0 or syy <= 0.0:
        return 0.0
    sxy = float(xm @ ym)
    r2 = sxy * sxy / sxx / syy
    return min(1.0, max(0.0, r2)) if math.isfinite(r2) else 0.0


def _growing(y: np.ndarray, x: np.ndarray, min_slope: float) -> bool:
    """Significant increasing trend whose robust slope is positive and at least min_slope."""
    slope = _ts(y, x)[0]
    if slope <= 0.0 or slope < min_slope:
        return False
    mk = _mk(y)
    return mk.s > 0 and mk.p < _ALPHA


# --------------------------------------------------------------------------- public API


def theil_sen(y: Sequence[float], x: Sequence[float] | None = None) -> tuple[float, float]:
    """Robust slope and intercept: median of pairwise slopes (x defaults to 0..n-1).

    n < 2 gives (0.0, y0 or 0). Pairs with equal x are skipped.
    """
    ya = _as_array(y, "y")
    xa = np.arange(ya.size, dtype=float) if x is None else _as_array(x, "x")
    if xa.size != ya.size:
        raise ValueError(f"theil_sen: x has {xa.size} values but y has {ya.size}")
    if ya.size < 2:
        return 0.0, float(ya[0]) if ya.size else 0.0
    scale = _pow2_scale(ya)
    with np.errstate(all="ignore"):
        slope, intercept = _ts(ya / scale, xa)
    return _finite(slope * scale), _finite(intercept * scale)


def mann_kendall(y: Sequence[float]) -> MannKendall:
    """Mann-Kendall test with tie-corrected variance; n < 3 gives s=0, z=0, p=1, tau=0."""
    return _mk(_as_array(y, "y"))


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


def _is_spike(y: np.ndarray, x: np.ndarray, noise: float, min_slope: float) -> bool:
    """A few isolated points far above a flat baseline, which the series returns to."""
    n = y.size
    above = (y - np.median(y)) > max(5.0 * noise, min_slope * n)
    k = int(np.count_nonzero(above))
    if k == 0 or k > 0.25 * n:
        return False
    first = int(np.argmax(above))
    if np.all(above[first:]):  # never comes back down: a level shift, not a spike
        return False
    return not _growing(y[~above], x[~above], min_slope)


def _is_plateau(y: np.ndarray, x: np.ndarray, min_slope: float) -> tuple[bool, float]:
    """First part grows significantly, last half is flat; also returns the head's slope."""
    n = y.size
    if n < 6:
        return False, 0.0
    h = n // 2
    head_y, head_x = y[: h + 1], x[: h + 1]
    if not _growing(head_y, head_x, min_slope):
        return False, 0.0
    head_slope = _ts(head_y, head_x)[0]
    tail_y, tail_x = y[h:], x[h:]
    tail_slope = _ts(tail_y, tail_x)[0]
    limit = max(min_slope, 0.1 * head_slope)
    if tail_slope <= -limit:  # memory released again: not a fill-and-hold
        return False, head_slope
    if tail_slope < min_slope:
        return True, head_slope
    return tail_slope < limit and not _growing(tail_y, tail_x, min_slope), head_slope


def _is_exponential(y: np.ndarray, x: np.ndarray, r2_linear: float, scale: float) -> bool:
    """Deltas grow significantly (last third >1.5x first third), or a log fit is clearly better."""
    d = np.diff(y)
    m = d.size
    if m < 5:
        return False
    third = max(1, m // 3)
    first, last = float(d[:third].mean()), float(d[-third:].mean())
    if last <= 0.0 or last <= first:
        return False
    if last > 1.5 * max(first, 0.0):
        dslope = _ts(d, np.arange(m, dtype=float))[0]
        dmk = _mk(d)
        if dslope > 0.0 and dmk.s > 0 and dmk.p < _ALPHA:
            return True
    offset = 1.0 / scale  # "+1" in the caller's units
    if not math.isfinite(offset):
        return False
    z = np.log(y - y.min() + offset)
    if not np.all(np.isfinite(z)):
        return False
    r2_log = _r2(x, z)
    return r2_log >= 0.95 and r2_log >= r2_linear + 0.05


def _is_step(d: np.ndarray) -> bool:
    """Growth in similar positive jumps spread over the whole series, flat in between."""
    m = d.size
    pos = np.flatnonzero(d > 0)
    if pos.size < 3 or pos.size / m >= 0.6:
        return False
    jumps = d[pos]
    med = float(np.median(jumps))
    similar = np.count_nonzero((jumps >= 0.5 * med) & (jumps <= 2.0 * med)) >= 0.8 * jumps.size
    spread = np.unique(pos * 3 // m).size == 3
    rest = np.abs(d[d <= 0])
    quiet = rest.size == 0 or float(np.median(rest)) <= 0.25 * med
    return bool(similar and spread and quiet)


def _confidence(mk: MannKendall, inc: float, slope: float, min_slope: float) -> float:
    """Combine significance, monotonicity and slope margin into 0..1."""
    margin = 1.0 if min_slope <= 0.0 else min(1.0, max(0.0, slope / (2.0 * min_slope)))
    c = 0.35 * (1.0 - mk.p) + 0.25 * abs(mk.tau) + 0.15 * inc + 0.25 * margin
    return min(1.0, max(0.0, c)) if math.isfinite(c) else 0.0


#: What :func:`analyse` finds for a constant series (most of a clean test's metrics), without
#: the numpy work: no slope, no trend, no noise.
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
    raw = _as_array(values, metric)
    n = raw.size
    t = None if times is None else _as_array(times, f"{metric} times")
    if t is not None and t.size != n:
        raise ValueError(f"{metric}: {t.size} timestamps for {n} values")
    if not math.isfinite(min_slope) or min_slope < 0:
        raise ValueError(f"{metric}: min_slope must be a finite number >= 0, got {min_slope!r}")

    scale = _pow2_scale(raw)
    with np.errstate(all="ignore"):
        y = raw / scale
        ms = min_slope / scale
        x = np.arange(n, dtype=float)
        slope, intercept = _ts(y, x)
        resid = y - (slope * x + intercept)
        noise = _MAD_TO_SIGMA * float(np.median(np.abs(resid - np.median(resid)))) if n else 0.0
        mk = _mk(y)
        r2 = _r2(x, y)
        d = np.diff(y)
        inc = float(np.count_nonzero(d > 0)) / d.size if d.size else 0.0
        slope_s = 0.0
        if t is not None and n >= 2 and np.ptp(t) > 0:
            slope_s = _ts(y, t)[0]
        total = float(raw[-1]) - float(raw[0]) if n else 0.0

        pattern: Pattern = "stable"
        head_slope = 0.0
        if n >= 3 and np.ptp(y) > 0:
            if _is_spike(y, x, noise, ms):
                pattern = "spike"
            else:
                plateau, head_slope = _is_plateau(y, x, ms)
                if plateau:
                    pattern = "plateau"
                elif slope <= 0.0 or slope < ms or mk.s <= 0 or mk.p >= _ALPHA:
                    pattern = "stable"
                elif _is_exponential(y, x, r2, scale):
                    pattern = "exponential"
                elif r2 >= 0.9 and inc >= 0.6:
                    pattern = "linear"
                elif _is_step(d):
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
