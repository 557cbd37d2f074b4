"""The one verdict step (detectors.verdict.judge_growth) over a series per iteration or in time."""

from __future__ import annotations

import pytest

from pytest_memleak.detectors.verdict import Breach, SeriesFacts, judge_growth
from pytest_memleak.model import Growth
from pytest_memleak.settings import Settings
from pytest_memleak.soak import SAMPLING
from pytest_memleak.units import Rate
from pytest_memleak.vocabulary import UNITS

MiB = 1024.0**2


def growth(metric, per_iter, per_s, total, pattern="linear", mk_p=0.0, confidence=1.0):
    return Growth(
        metric=metric,
        unit=UNITS[metric],
        pattern=pattern,
        slope_per_iter=per_iter,
        slope_per_s=per_s,
        total_growth=total,
        r2=1.0,
        mk_p=mk_p,
        tau=1.0,
        increasing_fraction=1.0,
        confidence=confidence,
        noise=0.0,
        recommendation="",
    )


ITER = SeriesFacts(length=20, seconds=2.0, block_size=64.0)
TIMED = SeriesFacts(length=30, seconds=2.9)


def test_the_same_growth_per_iteration_and_in_time():
    g = {"malloc": growth("malloc", 4096.0, 2 * MiB, 6 * MiB)}
    loop = judge_growth(g, "iter", Settings(), ITER)
    (f,) = loop.findings
    assert (f.bytes_per_iter, f.severity, f.failing) == (4096.0, "critical", True)
    assert f.reason == (
        "malloc grew +4.0 KiB/iter, +6.0 MiB over 20 iterations; pattern linear, confidence "
        "1.00, severity critical; breaks any confirmed growth (fail_on=low)"
    )
    assert (loop.reasons, loop.severity, loop.limits) == ((f.reason,), "critical", ())
    soak = judge_growth(g, "s", Settings(), TIMED, SAMPLING)
    (f,) = soak.findings
    assert (f.bytes_per_iter, f.severity, f.failing) == (None, "critical", True)
    assert f.reason == "malloc grew 2.0 MiB/s, 6.0 MiB over 2.9 s; pattern linear, confidence 1.00"
    assert soak.severity == "critical"


def test_per_second_cut_offs_need_a_long_enough_window_or_a_series_in_time():
    g = {"malloc": growth("malloc", 64.0, 2 * MiB, 1 * MiB)}
    short = SeriesFacts(length=20, seconds=0.5, block_size=64.0)
    assert judge_growth(g, "iter", Settings(), short).severity == "low"  # total alone
    assert judge_growth(g, "iter", Settings(), ITER).severity == "critical"
    sampled = SeriesFacts(length=30, seconds=0.5)
    assert judge_growth(g, "s", Settings(), sampled, SAMPLING).severity == "critical"


def test_py_blocks_are_memory_by_the_block_size_and_a_count_without_one():
    g = {"py_blocks": growth("py_blocks", 2.0, 30.0, 40.0)}
    (f,) = judge_growth(g, "iter", Settings(max_growth=4096), ITER).findings
    assert f.bytes_per_iter == 128.0
    assert "(~128 B/iter)" in f.reason
    assert not f.failing  # 40 blocks of 64 B are within max_growth
    g = {"py_blocks": growth("py_blocks", 300.0, 3000.0, 8700.0)}
    (f,) = judge_growth(g, "s", Settings(max_growth=4096), TIMED, SAMPLING).findings
    assert (f.bytes_per_iter, f.failing) == (None, True)  # blocks: max_growth does not apply


def test_tolerated_growth_is_reported_per_iteration_and_dropped_in_time():
    g = {"rss": growth("rss", 64 * 1024.0, 100 * 1024.0, 2 * MiB)}
    settings = Settings(max_rate=Rate(1 * MiB, "s"))
    loop = judge_growth(g, "iter", settings, ITER)
    assert not loop.failing
    assert loop.severity == "none"
    assert [f.failing for f in loop.findings] == [False]
    assert loop.findings[0].reason.endswith("; tolerated: rate within max_rate=1.0 MiB/s")
    assert judge_growth(g, "s", settings, TIMED, SAMPLING) == judge_growth({}, "s", settings, TIMED)


@pytest.mark.parametrize(
    ("g", "why"),
    [
        (growth("rss", 1.0, 1.0, 0.5 * MiB), "below the floor"),
        (growth("rss", 1.0, 1.0, 2 * MiB, mk_p=0.02), "p too large"),
        (growth("rss", 1.0, 1.0, 2 * MiB, pattern="plateau"), "not a growing pattern"),
    ],
)
def test_sampled_growth_must_be_sustained_and_reach_its_floor(g, why):
    assert judge_growth({"rss": g}, "s", Settings(), TIMED, SAMPLING).findings == (), why


def test_a_sampled_series_fails_on_any_counted_growth_whatever_fail_on():
    g = {"rss": growth("rss", 1.0, 1.0, 2 * MiB)}
    j = judge_growth(g, "s", Settings(fail_on="critical"), TIMED, SAMPLING)
    assert (j.failing, j.severity) == (True, "low")
    loop = judge_growth(g, "iter", Settings(fail_on="critical"), ITER)
    assert not loop.failing
    assert "severity low is below fail_on=critical" in loop.findings[0].reason


def test_sampled_memory_findings_share_the_severity_of_the_largest_growth():
    g = {
        "rss": growth("rss", 1.0, 5000.0, 25 * MiB),  # medium by its total
        "malloc": growth("malloc", 1.0, 600_000.0, 17 * MiB),  # high by its rate
        "fds": growth("fds", 1.0, 1.0, 29.0),
    }
    j = judge_growth(g, "s", Settings(), TIMED, SAMPLING)
    assert [(f.metric, f.severity) for f in j.findings] == [
        ("rss", "medium"),
        ("malloc", "medium"),
        ("fds", "high"),
    ]
    assert j.severity == "high"
    loop = judge_growth(g, "iter", Settings(), SeriesFacts(length=20, seconds=29.0))
    assert [f.severity for f in loop.findings] == ["medium", "high", "high"]


def test_breaches_follow_the_findings_and_raise_the_severity():
    facts = SeriesFacts(
        length=20,
        seconds=2.0,
        block_size=64.0,
        unconfirmed={"fds": "not confirmed: 0 new descriptors in 6 traced iterations"},
        breaches=(
            Breach("rss ended above max_rss", "medium"),
            Breach("external memory grew", "medium", absolute=False),
        ),
    )
    g = {"fds": growth("fds", 1.0, 1.0, 20.0)}
    j = judge_growth(g, "iter", Settings(), facts)
    assert [f.failing for f in j.findings] == [False]
    assert j.findings[0].reason.endswith(
        "tolerated: not confirmed: 0 new descriptors in 6 traced iterations"
    )
    assert j.reasons == ("rss ended above max_rss", "external memory grew")
    assert (j.severity, j.limits) == ("medium", ("rss ended above max_rss",))


def test_soak_imports_no_renderer():
    import ast
    import inspect

    import pytest_memleak.soak as soak

    tree = ast.parse(inspect.getsource(soak))
    imported = [
        node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
    ] + [a.name for node in ast.walk(tree) if isinstance(node, ast.Import) for a in node.names]
    assert not [m for m in imported if "render" in m]


def test_growth_in_steps_wider_than_the_untraced_window_is_not_refuted_by_it():
    """A buffer grown in place steps up every few calls: 6 untraced calls that saw no step do
    not refute 60 measured calls that saw 10 (the zoo's bytearray case); growth at every call
    that the 6 calls did not see is refuted as before."""
    from pytest_memleak.detectors.verdict import _steps_too_sparse

    steps = [float(1000 * (i // 6)) for i in range(61)]  # a step every 6 calls
    assert _steps_too_sparse(steps, 6)
    every_call = [float(100 * i) for i in range(61)]
    assert not _steps_too_sparse(every_call, 6)
    assert not _steps_too_sparse([5.0] * 61, 6)  # no step at all: nothing to protect
    assert not _steps_too_sparse([None, 1.0, 2.0, 3.0], 6)


def test_a_malloc_finding_stands_while_the_main_arena_grew_over_the_untraced_calls():
    """A thread churning buffers in its own arena moves the total malloc by kilobytes over the
    diagnosis's 6 untraced calls: a 1.2 KiB/call leak of the main thread's read -208 B/iter
    there and was refuted ("not confirmed"). The main arena's own growth over those calls
    now counts: the finding stands while it grew by a quarter of the rate."""
    from types import SimpleNamespace

    from pytest_memleak.detectors.verdict import _unconfirmed_native

    series = {"malloc": [float(1216 * i) for i in range(21)]}

    def measurement(total: float, main: float | None) -> SimpleNamespace:
        d = SimpleNamespace(
            allocator_settled=True,
            untraced_malloc_per_iter=total,
            untraced_main_per_iter=main,
            untraced_calls=6,
        )
        return SimpleNamespace(diagnosis=d, confirmed={"malloc"}, series=series)

    assert _unconfirmed_native(measurement(-208.0, 1216.0), "malloc", 1216.0) == ""
    # the main arena still unread (no malloc_info) or flat: refuted as before
    assert _unconfirmed_native(measurement(-208.0, None), "malloc", 1216.0).startswith(
        "not confirmed"
    )
    assert _unconfirmed_native(measurement(-208.0, 10.0), "malloc", 1216.0).startswith(
        "not confirmed"
    )


def test_a_confirmed_malloc_growth_is_judged_by_the_main_arena_when_the_total_reads_no_trend():
    """A thread churning 0-16 KiB of buffers in its own arena moves the total malloc by
    kilobytes between snapshots. The rounds confirmed a 1.2 KiB/call leak of the main thread's
    (through the main arena's screen), but the whole series of the total once read "stable,
    confidence 0.00" and the finding was tolerated as no trend: the test passed. The main
    arena's own series (the steps of a real run) now speaks for it."""
    from pytest_memleak.detectors.verdict import MAIN_ARENA_READING, judge
    from pytest_memleak.series import Measurement
    from pytest_memleak.stats import analyse

    steps = [1152, 1153, 2447, 0, 2592, 0, 2592, 0, 2592, 0, 2592, 0, 0, 3888, 0, 0, 3888]
    steps += [0, 0, 3888]
    churned = [1152, 113, 2447, 0, 2592, 0, 2592, 0, 2592, -2080, -3648, 0, -6240, 3888, 0]
    churned += [0, 3888, 0, 0, 19488]
    main, total = [9e6], [9e6]
    for a, b in zip(steps, churned):
        main.append(main[-1] + a)
        total.append(total[-1] + b)
    times = [i * 1.5e-4 for i in range(len(main))]

    def measured(with_main: bool) -> Measurement:
        m = Measurement(settings=Settings(), iterations=20, rounds=[10, 20], confirmed=["malloc"])
        m.series = {"malloc": list(total), "t": list(times)}
        m.growth["malloc"] = analyse(total, times, metric="malloc", unit="bytes", min_slope=160)
        if with_main:
            m.growth["malloc_main"] = analyse(
                main, times, metric="malloc_main", unit="bytes", min_slope=160
            )
        return m

    before = judge(measured(with_main=False))
    (f,) = before.findings
    assert (before.verdict, f.pattern, f.failing) == ("ok", "stable", False)
    assert "is no trend" in f.reason

    after = judge(measured(with_main=True))
    (f,) = after.findings
    assert (after.verdict, f.metric, f.failing) == ("leak", "malloc", True)
    assert f.pattern != "stable"
    assert f.bytes_per_iter == pytest.approx(1296.0)
    assert f.reason.startswith(f"malloc grew +1.3 KiB/iter {MAIN_ARENA_READING}, ")


def test_the_main_arena_does_not_speak_for_malloc_when_it_did_not_grow():
    """The fallback reads the main arena only for a confirmed malloc whose total reads no
    trend, and only when the main arena itself grew with a trend: a flat main arena leaves
    the finding tolerated."""
    from pytest_memleak.detectors.verdict import judge
    from pytest_memleak.series import Measurement

    m = Measurement(settings=Settings(), iterations=20, rounds=[10, 20], confirmed=["malloc"])
    m.growth["malloc"] = growth("malloc", 900.0, 0.0, 18000.0, pattern="stable", confidence=0.0)
    m.growth["malloc_main"] = growth("malloc_main", 0.0, 0.0, 0.0, pattern="stable")
    v = judge(m)
    assert v.verdict == "ok"
    assert "is no trend" in v.findings[0].reason
    m.growth["malloc_main"] = growth("malloc_main", 1200.0, 0.0, 24000.0, pattern="linear")
    assert judge(m).verdict == "leak"
