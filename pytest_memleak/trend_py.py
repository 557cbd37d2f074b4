"""The trend primitives of :mod:`.stats` on lists of floats, for short series.

A test's series are short (4 snapshots for most clean tests, a few dozen for a leak), and numpy
costs more than it saves there: ~20 us for a median of four numbers. Importing numpy also
costs every run ~0.1 s and adds ~140 modules, which slows code that walks ``sys.modules`` at
every call (freezegun's ``freeze_time``: 2.0 -> 3.0 ms). So series of up to :data:`SHORT`
plain numbers are analysed here, without numpy; ``trend_np`` has the same functions on arrays
for the rest. The two compute the same quantities in the same order; sums and dot products may
differ in the last bits (numpy sums pairwise, BLAS may fuse), never in a verdict.
"""

from __future__ import annotations

import contextlib
import math
import sys
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

ALPHA = 0.05  # significance level of the Mann-Kendall tests
SHORT = 64  # the longest series analysed here


@dataclass(frozen=True)
class MannKendall:
    """Mann-Kendall trend test: statistic S, normal score z, two-sided p, Kendall tau."""

    s: int
    z: float
    p: float
    tau: float


# The two tests below are written once for both modules: they only slice the series and call
# the module's own ``ts``, ``mk`` and ``growing`` (``ops``: this module or ``trend_np``).


def growing_with(ops: ModuleType, y: Any, x: Any, min_slope: float) -> bool:
    """Significant increasing trend whose robust slope is positive and at least min_slope."""
    slope: float = ops.ts(y, x)[0]
    if slope <= 0.0 or slope < min_slope:
        return False
    test: MannKendall = ops.mk(y)
    return test.s > 0 and test.p < ALPHA


def plateau_with(ops: ModuleType, y: Any, x: Any, min_slope: float) -> tuple[bool, float]:
    """First part grows significantly, last half is flat; also returns the head's slope."""
    n = len(y)
    if n < 6:
        return False, 0.0
    h = n // 2
    head_y, head_x = y[: h + 1], x[: h + 1]
    if not ops.growing(head_y, head_x, min_slope):
        return False, 0.0
    head_slope: float = ops.ts(head_y, head_x)[0]
    tail_y, tail_x = y[h:], x[h:]
    tail_slope: float = ops.ts(tail_y, tail_x)[0]
    limit = max(min_slope, 0.1 * head_slope)
    if tail_slope <= -limit:  # memory released again: not a fill-and-hold
        return False, head_slope
    if tail_slope < min_slope:
        return True, head_slope
    return tail_slope < limit and not ops.growing(tail_y, tail_x, min_slope), head_slope


def mk_figures(s: int, n: int, ties: float) -> MannKendall:
    """The Mann-Kendall test from its statistic S over ``n`` points and the ties' sum of
    t(t-1)(2t+5): tie-corrected variance, normal score, two-sided p, Kendall tau."""
    var = (n * (n - 1) * (2 * n + 5) - ties) / 18.0
    tau = s / (n * (n - 1) / 2.0)
    if var <= 0.0 or s == 0:
        return MannKendall(s=s, z=0.0, p=1.0, tau=tau)
    z = (s - math.copysign(1.0, s)) / math.sqrt(var)
    p = min(1.0, max(0.0, math.erfc(abs(z) / math.sqrt(2.0))))
    return MannKendall(s=s, z=z, p=p, tau=tau)


def r2_figure(sxx: float, syy: float, sxy: float) -> float:
    """R^2 from the centred sums of squares and products (0 when degenerate)."""
    if sxx <= 0.0 or syy <= 0.0:
        return 0.0
    value = sxy * sxy / sxx / syy
    return min(1.0, max(0.0, value)) if math.isfinite(value) else 0.0


def exponential_with(ops: ModuleType, y: Any, x: Any, r2_linear: float, scale: float) -> bool:
    """Deltas grow significantly (last third >1.5x first third), or a log fit is clearly better."""
    d = ops.diff(y)
    m = len(d)
    if m < 5:
        return False
    third = max(1, m // 3)
    first: float = ops.mean(d[:third])
    last: float = ops.mean(d[-third:])
    if last <= 0.0 or last <= first:
        return False
    if last > 1.5 * max(first, 0.0):
        dslope: float = ops.ts(d, ops.arange(m))[0]
        dmk: MannKendall = ops.mk(d)
        if dslope > 0.0 and dmk.s > 0 and dmk.p < ALPHA:
            return True
    offset = 1.0 / scale  # "+1" in the caller's units
    if not math.isfinite(offset):
        return False
    r2_log: float | None = ops.log_r2(x, y, offset)
    return r2_log is not None and r2_log >= 0.95 and r2_log >= r2_linear + 0.05


def plain(values: Sequence[float]) -> list[float] | None:
    """``values`` as a list of floats when they are all finite ints or floats, else None (the
    caller then takes numpy's path, which converts and validates)."""
    out: list[float] = []
    for v in values:
        if type(v) is not float and type(v) is not int:
            return None
        f = float(v)
        if not math.isfinite(f):
            return None
        out.append(f)
    return out


def quiet() -> contextlib.nullcontext[None]:
    return contextlib.nullcontext()


def arange(n: int) -> list[float]:
    return [float(k) for k in range(n)]


def scaled(a: list[float], scale: float) -> list[float]:
    return [v / scale for v in a]


def pow2_scale(a: list[float]) -> float:
    """A power of two close to max |a| (1.0 for empty or zero input)."""
    if not a:
        return 1.0
    m = max(abs(v) for v in a)
    if m == 0.0 or not math.isfinite(m):
        return 1.0
    return math.ldexp(1.0, math.frexp(m)[1] - 1)


def median(a: list[float]) -> float:
    n = len(a)
    if n == 0:
        return math.nan
    s = sorted(a)
    k = n // 2
    return s[k] if n % 2 else (s[k - 1] + s[k]) / 2


def ptp(a: list[float]) -> float:
    return max(a) - min(a)


def diff(y: list[float]) -> list[float]:
    return [b - a for a, b in zip(y, y[1:])]


def rising_fraction(d: list[float]) -> float:
    return sum(1 for v in d if v > 0) / len(d) if d else 0.0


def _mean(a: list[float]) -> float:
    return math.fsum(a) / len(a)


def ts(y: list[float], x: list[float]) -> tuple[float, float]:
    """Theil-Sen slope and intercept (pairs with equal x are skipped)."""
    n = len(y)
    if n == 0:
        return 0.0, 0.0
    if n == 1:
        return 0.0, y[0]
    slopes = []
    for i in range(n - 1):
        yi, xi = y[i], x[i]
        for j in range(i + 1, n):
            dx = x[j] - xi
            if dx != 0:
                slopes.append((y[j] - yi) / dx)
    if not slopes:
        return 0.0, median(y)
    slopes = [s for s in slopes if s == s]  # not NaN
    slope = median(slopes) if slopes else 0.0
    if not math.isfinite(slope):
        slope = 0.0
    return slope, median([yi - slope * xi for yi, xi in zip(y, x)])


def spread(y: list[float], x: list[float], slope: float, intercept: float) -> float:
    """Median absolute deviation of the residuals around the line (not yet scaled to sigma)."""
    resid = [yi - (slope * xi + intercept) for yi, xi in zip(y, x)]
    mid = median(resid)
    return median([abs(r - mid) for r in resid])


def mk(y: list[float]) -> MannKendall:
    """Mann-Kendall test with tie-corrected variance; n < 3 gives s=0, z=0, p=1, tau=0."""
    n = len(y)
    if n < 3:
        return MannKendall(s=0, z=0.0, p=1.0, tau=0.0)
    s = 0
    for i in range(n - 1):
        a = y[i]
        for b in y[i + 1 :]:
            if b > a:
                s += 1
            elif b < a:
                s -= 1
    ties = sum(t * (t - 1) * (2 * t + 5) for t in Counter(y).values() if t > 1)
    return mk_figures(s, n, float(ties))


def r2(x: list[float], y: list[float]) -> float:
    """R^2 of the least-squares line (0 for a constant or degenerate series)."""
    if len(y) < 2 or ptp(y) == 0 or ptp(x) == 0:
        return 0.0
    xm_, ym_ = _mean(x), _mean(y)
    xm = [v - xm_ for v in x]
    ym = [v - ym_ for v in y]
    sxx = math.fsum(v * v for v in xm)
    syy = math.fsum(v * v for v in ym)
    return r2_figure(sxx, syy, math.fsum(a * b for a, b in zip(xm, ym)))


def growing(y: list[float], x: list[float], min_slope: float) -> bool:
    """Significant increasing trend whose robust slope is positive and at least min_slope."""
    return growing_with(_SELF, y, x, min_slope)


def is_spike(y: list[float], x: list[float], noise: float, min_slope: float) -> bool:
    """A few isolated points far above a flat baseline, which the series returns to."""
    n = len(y)
    mid = median(y)
    limit = max(5.0 * noise, min_slope * n)
    above = [v - mid > limit for v in y]
    k = sum(above)
    if k == 0 or k > 0.25 * n:
        return False
    first = above.index(True)
    if all(above[first:]):  # never comes back down: a level shift, not a spike
        return False
    keep = [not a for a in above]
    return not growing(
        [v for v, kept in zip(y, keep) if kept], [v for v, kept in zip(x, keep) if kept], min_slope
    )


def is_plateau(y: list[float], x: list[float], min_slope: float) -> tuple[bool, float]:
    """First part grows significantly, last half is flat; also returns the head's slope."""
    return plateau_with(_SELF, y, x, min_slope)


def is_exponential(y: list[float], x: list[float], r2_linear: float, scale: float) -> bool:
    """Deltas grow significantly (last third >1.5x first third), or a log fit is clearly better."""
    return exponential_with(_SELF, y, x, r2_linear, scale)


def mean(a: list[float]) -> float:
    return _mean(a)


def log_r2(x: list[float], y: list[float], offset: float) -> float | None:
    """R^2 of ``log(y - min(y) + offset)`` against x; None when a logarithm is not finite."""
    low = min(y)
    try:
        z = [math.log(v - low + offset) for v in y]
    except (ValueError, OverflowError):  # numpy: -inf or NaN, not finite
        return None
    if not all(math.isfinite(v) for v in z):
        return None
    return r2(x, z)


def is_step(d: list[float]) -> bool:
    """Growth in similar positive jumps spread over the whole series, flat in between."""
    m = len(d)
    pos = [k for k, v in enumerate(d) if v > 0]
    if len(pos) < 3 or len(pos) / m >= 0.6:
        return False
    jumps = [d[k] for k in pos]
    med = median(jumps)
    similar = sum(1 for j in jumps if 0.5 * med <= j <= 2.0 * med) >= 0.8 * len(jumps)
    spread_out = len({k * 3 // m for k in pos}) == 3
    rest = [abs(v) for v in d if v <= 0]
    quiet_between = not rest or median(rest) <= 0.25 * med
    return bool(similar and spread_out and quiet_between)


_SELF = sys.modules[__name__]
