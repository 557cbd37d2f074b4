"""The trend primitives of :mod:`.stats` on numpy arrays: for series longer than
``trend_py.SHORT`` (the monitor's, a long diagnosis), or values that are not plain numbers
(numpy validates and converts them). Imported only when such a series is analysed: most
runs never import numpy (see ``trend_py``)."""

from __future__ import annotations

import contextlib
import math
import sys
from collections.abc import Iterator, Sequence
from functools import lru_cache

import numpy as np

from .trend_py import (
    MannKendall,
    exponential_with,
    growing_with,
    mk_figures,
    plateau_with,
    r2_figure,
)

_SORT_LIMIT = 256  # arrays up to this size: medians in plain Python (see median)


@lru_cache(maxsize=64)
def _pairs(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (i, j) of every pair i < j for n points (cached, read-only)."""
    i, j = np.triu_indices(n, 1)
    i.flags.writeable = False
    j.flags.writeable = False
    return i, j


def pow2_scale(a: np.ndarray) -> float:
    """A power of two close to max |a| (1.0 for empty, zero or non-finite input)."""
    if a.size == 0:
        return 1.0
    m = float(np.max(np.abs(a)))
    if m == 0.0 or not math.isfinite(m):
        return 1.0
    return math.ldexp(1.0, math.frexp(m)[1] - 1)


def as_array(values: Sequence[float], what: str) -> np.ndarray:
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
        raise ValueError(f"{what}: sample {k} is {float(a[k])!r}; expected a finite number")
    return a


def median(a: np.ndarray) -> float:
    """``float(np.median(a))`` of a 1-D array of finite floats: for a short one, the same value
    (the middle one, or the mean of the middle two) without numpy's overhead (~20 us a call,
    seven calls a series)."""
    n = a.size
    if n > _SORT_LIMIT or n == 0:
        return float(np.median(a))
    s: list[float] = sorted(a.tolist())
    k = n // 2
    return s[k] if n % 2 else (s[k - 1] + s[k]) / 2


def ts(y: np.ndarray, x: np.ndarray) -> tuple[float, float]:
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
        return 0.0, median(y)
    slopes = (y[j][ok] - y[i][ok]) / dx[ok]
    slopes = slopes[~np.isnan(slopes)]
    slope = median(slopes) if slopes.size else 0.0
    if not math.isfinite(slope):
        slope = 0.0
    return slope, median(y - slope * x)


def mk(y: np.ndarray) -> MannKendall:
    """Mann-Kendall test on an array."""
    n = y.size
    if n < 3:
        return MannKendall(s=0, z=0.0, p=1.0, tau=0.0)
    i, j = _pairs(n)
    a, b = y[i], y[j]
    s = int(np.count_nonzero(b > a)) - int(np.count_nonzero(b < a))
    _, counts = np.unique(y, return_counts=True)
    t = counts[counts > 1].astype(float)
    return mk_figures(s, n, float(np.sum(t * (t - 1) * (2 * t + 5))))


def r2(x: np.ndarray, y: np.ndarray) -> float:
    """R^2 of the least-squares line (0 for a constant or degenerate series)."""
    if y.size < 2 or np.ptp(y) == 0 or np.ptp(x) == 0:
        return 0.0
    xm = x - x.mean()
    ym = y - y.mean()
    return r2_figure(float(xm @ xm), float(ym @ ym), float(xm @ ym))


def growing(y: np.ndarray, x: np.ndarray, min_slope: float) -> bool:
    """Significant increasing trend whose robust slope is positive and at least min_slope."""
    return growing_with(_SELF, y, x, min_slope)


def is_spike(y: np.ndarray, x: np.ndarray, noise: float, min_slope: float) -> bool:
    """A few isolated points far above a flat baseline, which the series returns to."""
    n = y.size
    above = (y - median(y)) > max(5.0 * noise, min_slope * n)
    k = int(np.count_nonzero(above))
    if k == 0 or k > 0.25 * n:
        return False
    first = int(np.argmax(above))
    if np.all(above[first:]):  # never comes back down: a level shift, not a spike
        return False
    return not growing(y[~above], x[~above], min_slope)


def is_plateau(y: np.ndarray, x: np.ndarray, min_slope: float) -> tuple[bool, float]:
    """First part grows significantly, last half is flat; also returns the head's slope."""
    return plateau_with(_SELF, y, x, min_slope)


def is_exponential(y: np.ndarray, x: np.ndarray, r2_linear: float, scale: float) -> bool:
    """Deltas grow significantly (last third >1.5x first third), or a log fit is clearly better."""
    return exponential_with(_SELF, y, x, r2_linear, scale)


def mean(a: np.ndarray) -> float:
    return float(a.mean())


def log_r2(x: np.ndarray, y: np.ndarray, offset: float) -> float | None:
    """R^2 of ``log(y - min(y) + offset)`` against x; None when a logarithm is not finite."""
    z = np.log(y - y.min() + offset)
    if not np.all(np.isfinite(z)):
        return None
    return r2(x, z)


def is_step(d: np.ndarray) -> bool:
    """Growth in similar positive jumps spread over the whole series, flat in between."""
    m = d.size
    pos = np.flatnonzero(d > 0)
    if pos.size < 3 or pos.size / m >= 0.6:
        return False
    jumps = d[pos]
    med = median(jumps)
    similar = np.count_nonzero((jumps >= 0.5 * med) & (jumps <= 2.0 * med)) >= 0.8 * jumps.size
    spread = np.unique(pos * 3 // m).size == 3
    rest = np.abs(d[d <= 0])
    quiet = rest.size == 0 or median(rest) <= 0.25 * med
    return bool(similar and spread and quiet)


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """No floating-point warnings (an overflow reads as inf, then clamped by the caller)."""
    with np.errstate(all="ignore"):
        yield


def arange(n: int) -> np.ndarray:
    return np.arange(n, dtype=float)


def scaled(a: np.ndarray, scale: float) -> np.ndarray:
    return a / scale


def spread(y: np.ndarray, x: np.ndarray, slope: float, intercept: float) -> float:
    """Median absolute deviation of the residuals around the line (not yet scaled to sigma)."""
    resid = y - (slope * x + intercept)
    return median(np.abs(resid - median(resid)))


def diff(y: np.ndarray) -> np.ndarray:
    return np.diff(y)


def rising_fraction(d: np.ndarray) -> float:
    return float(np.count_nonzero(d > 0)) / d.size if d.size else 0.0


def ptp(a: np.ndarray) -> float:
    return float(np.ptp(a))


_SELF = sys.modules[__name__]
