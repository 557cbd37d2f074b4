"""Tests of the trend detector: Theil-Sen, Mann-Kendall, severity and pattern classification."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_memleak.model import to_json
from pytest_memleak.stats import (
    PATTERNS,
    SEVERITIES,
    Growth,
    analyse,
    mann_kendall,
    severity_for,
    theil_sen,
)

KIB = 1024
MIB = 1024**2


#: Growth's numeric fields.
_FIELDS = (
    "slope_per_iter",
    "slope_per_s",
    "total_growth",
    "r2",
    "mk_p",
    "tau",
    "increasing_fraction",
    "confidence",
    "noise",
)


def _analyse(values, times=None, **kw) -> Growth:
    return analyse(values, times, metric="rss", unit="bytes", **kw)


# ----------------------------------------------------------------------------- theil_sen


def test_theil_sen_exact_on_a_line():
    slope, intercept = theil_sen([3.0 + 2.5 * i for i in range(12)])
    assert slope == pytest.approx(2.5)
    assert intercept == pytest.approx(3.0)


def test_theil_sen_with_x():
    x = [0.0, 0.5, 1.5, 4.0]
    slope, intercept = theil_sen([10 - 2 * v for v in x], x)
    assert (slope, intercept) == (pytest.approx(-2.0), pytest.approx(10.0))


def test_theil_sen_robust_to_one_huge_outlier():
    y = [float(i) for i in range(15)]
    y[7] = 1e12
    slope, intercept = theil_sen(y)
    assert slope == pytest.approx(1.0)
    assert intercept == pytest.approx(0.0)


def test_theil_sen_small_and_degenerate():
    assert theil_sen([]) == (0.0, 0.0)
    assert theil_sen([4.0]) == (0.0, 4.0)
    assert theil_sen([1.0, 2.0, 3.0], [5.0, 5.0, 5.0]) == (0.0, 2.0)
    with pytest.raises(ValueError, match="x has 2 values"):
        theil_sen([1.0, 2.0, 3.0], [1.0, 2.0])


# ----------------------------------------------------------------------------- mann_kendall


def test_mann_kendall_increasing():
    mk = mann_kendall(range(1, 11))
    assert mk.s == 45
    assert mk.tau == 1.0
    assert mk.z == pytest.approx(44 / math.sqrt(125))
    assert mk.p < 0.001


def test_mann_kendall_decreasing_is_symmetric():
    up, down = mann_kendall(range(10)), mann_kendall(range(10, 0, -1))
    assert (down.s, down.tau) == (-up.s, -up.tau)
    assert down.z == pytest.approx(-up.z)
    assert down.p == pytest.approx(up.p)


def test_mann_kendall_ties_correct_the_variance():
    mk = mann_kendall([1, 1, 2, 2, 3, 3, 3, 4])
    # 28 pairs, 5 tied, the rest increasing; var = (8*7*21 - 2*1*9 - 2*1*9 - 3*2*11) / 18
    assert mk.s == 23
    assert mk.z == pytest.approx(22 / math.sqrt(1074 / 18))
    assert mk.p == pytest.approx(math.erfc(mk.z / math.sqrt(2)))
    assert mk.tau == pytest.approx(23 / 28)


def test_mann_kendall_constant_and_short():
    assert mann_kendall([7, 7, 7, 7, 7]).p == 1.0
    for short in ([], [1.0], [1.0, 2.0]):
        mk = mann_kendall(short)
        assert (mk.s, mk.z, mk.p, mk.tau) == (0, 0.0, 1.0, 0.0)


# ----------------------------------------------------------------------------- severity


@pytest.mark.parametrize(
    ("total", "rate", "expected"),
    [
        (0, 0, "low"),
        (20 * MIB, 100 * KIB, "low"),
        (20 * MIB + 1, 0, "medium"),
        (0, 100 * KIB + 1, "medium"),
        (50 * MIB + 1, 0, "high"),
        (0, 500 * KIB + 1, "high"),
        (100 * MIB + 1, 0, "critical"),
        (0, MIB + 1, "critical"),
    ],
)
def test_severity_for(total, rate, expected):
    assert severity_for(total, rate) == expected
    assert expected in SEVERITIES


# ----------------------------------------------------------------------------- analyse


def test_constant_is_stable():
    g = _analyse([50 * MIB] * 12)
    assert g.pattern == "stable"
    assert (g.confidence, g.slope_per_iter, g.total_growth, g.r2, g.noise) == (0, 0, 0, 0, 0)
    assert g.mk_p == 1.0


def test_linear_leak():
    times = [0.25 * i for i in range(10)]
    g = _analyse([10 * MIB + i for i in range(10)], times, min_slope=0.5)
    assert g.pattern == "linear"
    assert g.confidence >= 0.9
    assert g.slope_per_iter == pytest.approx(1.0)
    assert g.slope_per_s == pytest.approx(4.0)
    assert g.total_growth == 9.0
    assert g.r2 == pytest.approx(1.0)
    assert g.increasing_fraction == 1.0
    assert g.recommendation.startswith("Memory grows by a constant amount")


def test_linear_with_one_outlier_still_grows():
    values = [float(i) for i in range(20)]
    values[10] += 65
    g = _analyse(values)
    assert g.pattern in ("linear", "leak")
    assert g.slope_per_iter == pytest.approx(1.0)
    assert g.confidence > 0.5


def test_step_growth():
    g = _analyse([6144 * (i // 3) for i in range(30)])
    assert g.pattern == "step"
    assert g.increasing_fraction < 0.6
    assert g.confidence > 0.5


def test_exponential_growth():
    g = _analyse(np.cumsum(256 * 1.08 ** np.arange(30)).tolist())
    assert g.pattern == "exponential"
    assert g.confidence > 0.5


def test_plateau():
    g = _analyse([1000 * i for i in range(5)] + [4000] * 10, min_slope=100)
    assert g.pattern == "plateau"
    assert g.recommendation.startswith("Growth stopped")


def test_slow_leak_after_a_cache_fills_is_not_a_plateau():
    values = [1000.0 * min(i, 5) + 50 * i for i in range(30)]
    assert _analyse(values, min_slope=10).pattern != "plateau"


def test_periodic_spikes():
    g = _analyse([100 * MIB + (20 * MIB if i % 5 == 4 else 0) for i in range(20)], min_slope=KIB)
    assert g.pattern == "spike"
    assert g.confidence == 0.0


def test_gaussian_noise_is_stable():
    rng = np.random.default_rng(20240611)
    g = _analyse((50 * MIB + rng.normal(0, 64 * KIB, 40)).tolist())
    assert g.pattern == "stable"
    assert g.confidence == 0.0
    assert g.noise == pytest.approx(64 * KIB, rel=0.5)


def test_decreasing_is_stable_with_negative_slope():
    g = _analyse([1000.0 - 3 * i for i in range(15)])
    assert g.pattern == "stable"
    assert g.slope_per_iter == pytest.approx(-3.0)
    assert g.confidence == 0.0


def test_slope_below_min_slope_is_stable():
    assert _analyse(list(range(20)), min_slope=2.0).pattern == "stable"


def test_integer_counts_with_ties():
    fds = [10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15]
    g = analyse(fds, metric="fds", unit="count", min_slope=0.1)
    assert g.pattern in ("linear", "step", "leak")
    assert g.confidence > 0.5


def test_short_series():
    assert _analyse([]).pattern == "stable"
    assert _analyse([5.0]).pattern == "stable"
    assert _analyse([1.0, 2.0]).pattern == "stable"


def test_times_degenerate_give_zero_rate():
    assert _analyse(list(range(10)), [3.0] * 10).slope_per_s == 0.0
    assert _analyse(list(range(10))).slope_per_s == 0.0


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="sample 2 is None"):
        _analyse([1.0, 2.0, None, 4.0])
    with pytest.raises(ValueError, match="timestamps"):
        _analyse([1.0, 2.0, 3.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="min_slope"):
        _analyse([1.0, 2.0, 3.0], min_slope=-1.0)


def test_to_dict_is_json_serialisable():
    g = _analyse(np.arange(10, dtype=np.int64) * 4096, np.linspace(0.0, 1.0, 10))
    d = to_json(g)
    assert set(d) == {"metric", "unit", "pattern", "recommendation", *_FIELDS}
    assert all(type(v) in (str, float) for v in d.values())
    assert json.loads(json.dumps(d))["pattern"] == g.pattern


def test_analyse_is_fast():
    import time

    values = (np.arange(30) * 1024.0).tolist()
    start = time.perf_counter()
    for _ in range(50):
        analyse(values, metric="rss", unit="bytes")
    assert (time.perf_counter() - start) / 50 < 0.01  # well under, typically ~0.3 ms


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.floats(allow_nan=False, allow_infinity=False), min_size=2, max_size=60),
    st.sampled_from([0.0, 1.0, 1024.0]),
)
def test_analyse_any_finite_series(values, min_slope):
    g = analyse(values, metric="heap", unit="bytes", min_slope=min_slope)
    assert g.pattern in PATTERNS
    assert 0.0 <= g.confidence <= 1.0
    assert 0.0 <= g.r2 <= 1.0
    assert 0.0 <= g.mk_p <= 1.0
    assert 0.0 <= g.increasing_fraction <= 1.0
    d = to_json(g)
    assert all(type(v) in (str, float) for v in d.values())
    json.dumps(d, allow_nan=False)


@settings(max_examples=300, deadline=None)
@given(
    value=st.one_of(st.integers(-(2**53), 2**53), st.floats(allow_nan=False, allow_infinity=False)),
    n=st.integers(1, 40),
    timed=st.booleans(),
    min_slope=st.sampled_from([0.0, 0.5, 160.0, 1e12]),
)
def test_a_constant_series_is_analysed_as_the_full_path_would(value, n, timed, min_slope):
    """analyse() skips the numpy work for a constant series (most metrics of a clean test);
    what it returns must be what the full analysis returns."""
    import pytest_memleak.stats as stats

    values = [value] * n
    times = [0.001 * i for i in range(n)] if timed else None
    fast = _analyse(values, times, min_slope=min_slope)
    full_path = stats._constant
    try:
        stats._constant = lambda *a: False
        full = _analyse(values, times, min_slope=min_slope)
    finally:
        stats._constant = full_path
    assert fast == full


def test_the_constant_fast_path_keeps_the_input_checks():
    with pytest.raises(ValueError, match="min_slope"):
        _analyse([1.0, 1.0, 1.0], min_slope=-1.0)
    with pytest.raises(ValueError, match="timestamps"):
        _analyse([1.0, 1.0, 1.0], [0.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        _analyse([1.0, 1.0], [0.0, math.inf])


# ------------------------------------------------- the two implementations (trend_py, trend_np)


def _both(values, times, min_slope):
    """analyse through trend_py (a list of floats) and through trend_np (a numpy array, which
    trend_py does not take)."""
    short = analyse(values, times, metric="rss", unit="bytes", min_slope=min_slope)
    arrays = analyse(
        np.array(values),
        None if times is None else np.array(times),
        metric="rss",
        unit="bytes",
        min_slope=min_slope,
    )
    return short, arrays


def _shape(kind: str, n: int, base: float, step: float) -> list[float]:
    return {
        "linear": [base + step * i for i in range(n)],
        "step": [base + step * (i // 3) for i in range(n)],
        "plateau": [base + step * min(i, n // 3) for i in range(n)],
        "exponential": [base + 1.5**i for i in range(n)],
        "spike": [base + (step * 1000 if i == n // 2 else 0.0) for i in range(n)],
    }[kind]


@settings(max_examples=300, deadline=None)
@given(
    kind=st.sampled_from(["linear", "step", "plateau", "exponential", "spike"]),
    n=st.integers(2, 64),
    base=st.sampled_from([0.0, 1e3, 1.2e8, 5e9]),
    step=st.sampled_from([1.0, 160.0, 4096.0]),
    noise=st.lists(st.integers(-5000, 5000), min_size=64, max_size=64),
    min_slope=st.sampled_from([0.0, 1.0, 160.0, 4096.0]),
    timed=st.booleans(),
)
def test_short_series_without_numpy_agree_with_numpy(kind, n, base, step, noise, min_slope, timed):
    values = [v + noise[i] for i, v in enumerate(_shape(kind, n, base, step))]
    times = [0.01 * i + 0.0001 * (noise[i] % 7) for i in range(n)] if timed else None
    short, arrays = _both(values, times, min_slope)
    assert short.pattern == arrays.pattern
    for name in _FIELDS:
        assert getattr(short, name) == pytest.approx(getattr(arrays, name), rel=1e-9, abs=1e-12)


@pytest.mark.parametrize("kind", ["linear", "step", "plateau", "exponential", "spike"])
def test_each_pattern_is_found_the_same_way_without_numpy(kind):
    values = _shape(kind, 30, 1e6, 4096.0)
    short, arrays = _both(values, None, 160.0)
    assert short.pattern == arrays.pattern == kind


def test_a_series_that_is_not_plain_numbers_goes_to_numpy_and_its_errors():
    with pytest.raises(ValueError, match=r"rss: sample 1 is None"):
        _analyse([1.0, None, 3.0])
    with pytest.raises(ValueError, match=r"rss: sample 2 is nan"):
        _analyse([1.0, 2.0, float("nan")])
    assert _analyse([np.float32(1.0), 2, 3.0, 4.0]).slope_per_iter == pytest.approx(1.0)
