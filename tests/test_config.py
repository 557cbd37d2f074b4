"""Configuration: every ini key is read, precedence (marker > CLI > ini > profile > default),
malformed values are usage errors, and the report path is checked up front.

Each test runs pytest in a subprocess on generated test files (see ``run_memleak`` in
conftest.py) and reads the effective settings back from the JSON report: ``config`` holds the
session's settings, ``tests[].settings`` a test's own (marker included), and both record in
``sources`` where each value came from.
"""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import pytest
from known import QUICK_CHECK_SELDOM_DECIDES_ON_39

from pytest_memleak.render import json_report
from pytest_memleak.settings import OPTIONS

#: A marked clean test.
CLEAN = """
import pytest

@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]
"""

#: A marked clean test whose Python blocks go up and down: not "flat", so the loop cannot decide
#: it early (after 5 iterations) and measures a whole round.
JITTER = """
import pytest

TOGGLE = []

@pytest.mark.memcheck
def test_jitter():
    if TOGGLE:
        TOGGLE.clear()
    else:
        TOGGLE.append(object())
"""

#: Unmarked tests only: a leak and a clean body.
UNMARKED = """
SINK = []

def test_unmarked_leak():
    SINK.append(bytes(4096))

def test_unmarked_clean():
    x = [1, 2, 3]
"""


def ini_text(**keys: Any) -> str:
    """A pytest.ini body with ``memleak_<key> = value`` lines (multi-line values indented)."""
    lines = ["[pytest]"]
    for name, value in keys.items():
        text = str(value)
        if "\n" in text:
            text = "\n" + textwrap.indent(text.strip("\n"), "    ")
        lines.append(f"memleak_{name} = {text}")
    return "\n".join(lines) + "\n"


def make_ini(pytester: pytest.Pytester, **keys: Any) -> None:
    pytester.makefile(".ini", pytest=ini_text(**keys))


def assert_source(doc_settings: dict[str, Any], name: str, value: Any, source: str) -> None:
    """``settings[name] == value`` and ``settings["sources"][name] == source``."""
    assert doc_settings[name] == value, (name, doc_settings[name])
    assert doc_settings["sources"][name] == source, (name, doc_settings["sources"])


def assert_ini(run: Any, name: str, value: Any, test: str | None = None) -> None:
    """The session config (and ``test``'s settings, when given) took ``name`` from the ini."""
    assert run.report is not None, run.output
    assert_source(run.report["config"], name, value, "ini")
    if test is not None:
        assert_source(run.test(test)["settings"], name, value, "ini")


# --------------------------------------------------------------------------- control


def test_leak_caught_and_clean_passes_with_fast_settings(run_memleak, leak_and_clean, fast_args):
    """The baseline other tests rely on: the 4 KiB/iter leak is caught, the clean body is not."""
    run = run_memleak(*fast_args)
    run.result.assert_outcomes(passed=1, failed=1)
    assert run.test("test_leak")["verdict"] == "leak"
    assert run.test("test_clean")["verdict"] == "ok"
    assert run.report["summary"]["checked"] == 2


# --------------------------------------------------------------------------- every ini key

#: ini keys whose value is checked only as read (the behaviour has no cheap observable effect
#: yet): ini text -> the value in the JSON.
VALUE_ONLY = {
    "max_external": ("64 MiB", 64 * 1024**2),
    "serve": ("127.0.0.1:0", "127.0.0.1:0"),  # its behaviour: tests/test_monitor_live_run.py
}

#: ini keys with a behaviour test below.
BEHAVIOUR = {
    "mode",
    "interval",
    "retention",
    "window",
    "all",
    "disable",
    "report",
    "profile",
    "iterations",
    "warmup",
    "thorough",
    "max_iterations",
    "max_rate",
    "max_growth",
    "max_rss",
    "max_external_ratio",
    "fail_on",
    "timeout",
    "diagnose",
    "trace_frames",
    "suppress",
    "save",
    "autosave",
    "storage",
    "compare",
    "compare_fail",
    "html",
    "fixtures",
    "table",
}


def test_every_option_has_an_ini_test():
    """A new entry in settings.OPTIONS needs a test here."""
    assert set(VALUE_ONLY) | BEHAVIOUR == {o.name for o in OPTIONS}
    assert not set(VALUE_ONLY) & BEHAVIOUR


@pytest.mark.parametrize("name", sorted(VALUE_ONLY))
def test_ini_value_is_read(pytester, run_memleak, name):
    text, expected = VALUE_ONLY[name]
    make_ini(pytester, iterations=5, warmup=1, **{name: text})
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    run.result.assert_outcomes(passed=1)
    assert_ini(run, name, expected, test="test_clean")


def test_ini_all_checks_unmarked_tests(pytester, run_memleak):
    make_ini(pytester, all="true", iterations=6, warmup=1)
    pytester.makepyfile(UNMARKED)
    run = run_memleak()
    run.result.assert_outcomes(passed=1, failed=1)
    assert_ini(run, "all", True)
    leak, clean = run.test("test_unmarked_leak"), run.test("test_unmarked_clean")
    assert (leak["verdict"], leak["origin"]) == ("leak", "all")
    assert (clean["verdict"], clean["origin"]) == ("ok", "all")


def test_ini_all_false_checks_only_marked_tests(pytester, run_memleak):
    make_ini(pytester, all="false", iterations=5, warmup=1)
    pytester.makepyfile(test_unmarked=UNMARKED, test_marked=CLEAN)
    run = run_memleak()
    run.result.assert_outcomes(passed=3)
    assert [t["nodeid"] for t in run.report["tests"]] == ["test_marked.py::test_clean"]
    assert_ini(run, "all", False)


def test_ini_disable_runs_marked_tests_once_as_plain_tests(pytester, run_memleak, leak_and_clean):
    make_ini(pytester, disable="true", iterations=6, warmup=1)
    pytester.makepyfile(
        test_count="""
        import pytest

        CALLS = []

        @pytest.mark.memcheck
        def test_counted():
            CALLS.append(1)

        def test_called_once():
            assert len(CALLS) == 1
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=4)  # test_leak leaks, but is not checked
    assert run.report is None
    assert "memleak summary" not in run.output


def test_ini_report_path_is_used(pytester, run_memleak):
    make_ini(pytester, report="sub/x.json", iterations=5, warmup=1)
    pytester.makepyfile(CLEAN)
    run = run_memleak(report=None, read="sub/x.json")
    run.result.assert_outcomes(passed=1)
    assert_ini(run, "report", "sub/x.json", test="test_clean")
    assert not (pytester.path / ".memleak" / "report.json").exists()


def test_ini_html_report_path_is_used(pytester, run_memleak):
    make_ini(pytester, iterations=5, warmup=1, html="out/memleak.html")
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    run.result.assert_outcomes(passed=1)
    assert_ini(run, "html", "out/memleak.html")
    page = pytester.path / "out" / "memleak.html"
    assert page.is_file()
    assert "test_clean" in page.read_text(encoding="utf-8")
    assert "HTML report written to out/memleak.html" in run.output


def test_ini_profile_strict(pytester, run_memleak):
    make_ini(pytester, profile="strict")
    pytester.makepyfile(JITTER)
    run = run_memleak()
    run.result.assert_outcomes(passed=1)
    assert_ini(run, "profile", "strict", test="test_jitter")
    settings = run.test("test_jitter")["settings"]
    assert_source(settings, "iterations", 20, "profile:strict")
    assert_source(settings, "max_iterations", 60, "profile:strict")
    assert run.test("test_jitter")["iterations"] == 20


@QUICK_CHECK_SELDOM_DECIDES_ON_39
def test_ini_iterations_sets_the_round_length(pytester, run_memleak, leak_and_clean):
    make_ini(pytester, iterations=7, warmup=1)
    pytester.makepyfile(test_jitter=JITTER)
    run = run_memleak()
    assert_ini(run, "iterations", 7, test="test_jitter")
    assert run.test("test_jitter")["rounds"] == [7]
    # One confirmation round, of 5 calls: the leak grew at each call of the first.
    assert run.test("test_leak")["rounds"] == [7, 12]
    # A body whose counters do not move at all is decided before the round is over.
    clean = run.test("test_clean")
    assert clean["stop_reason"] == "flat"
    assert clean["iterations"] < 7


def test_ini_warmup(pytester, run_memleak):
    make_ini(pytester, iterations=5, warmup=2)
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    assert_ini(run, "warmup", 2, test="test_clean")
    # The loop runs one more call, through the measuring path, before the baseline; the
    # report counts it as warm-up.
    assert run.test("test_clean")["warmup"] == 3


@QUICK_CHECK_SELDOM_DECIDES_ON_39
def test_ini_thorough_measures_a_flat_body_through_the_full_rounds(pytester, run_memleak):
    """By default a body that leaves every counter flat over its first calls is judged
    clean after 1 warm-up and 3 measured calls; thorough runs the full warm-up (5 and the
    transition call) and at least 5 measured calls."""
    pytester.makepyfile(CLEAN)
    quick = run_memleak()
    test = quick.test("test_clean")
    assert (test["warmup"], test["iterations"], test["stop_reason"]) == (1, 3, "flat")
    make_ini(pytester, thorough="true")
    run = run_memleak()
    assert_ini(run, "thorough", True, test="test_clean")
    test = run.test("test_clean")
    assert test["verdict"] == "ok"
    assert test["warmup"] == 6, test
    assert test["iterations"] >= 5, test


def test_a_confirmation_round_is_sized_to_the_evidence(pytester, run_memleak):
    """A first round in which the leak grew at each call is confirmed by a round of 5 calls;
    growth every third call gets a full round, and so does any leak when a full round would
    no longer fit in max_iterations after the short one (a short round that does not
    confirm must leave room for one that does)."""
    pytester.makepyfile(
        test_rounds="""
        SINK = []
        EVERY_THIRD = []
        CALLS = []

        def test_steady():
            SINK.append([0] * 20)

        def test_every_third():
            CALLS.append(1)
            if len(CALLS) % 3 == 0:
                EVERY_THIRD.append([0] * 60)
        """
    )
    run = run_memleak("--memleak-all")
    steady, third = run.test("test_steady"), run.test("test_every_third")
    assert (steady["verdict"], steady["rounds"]) == ("leak", [10, 15]), steady["rounds"]
    assert steady["stop_reason"] == "confirmed growth"
    assert third["verdict"] == "leak"
    assert third["rounds"][:2] == [10, 20], third["rounds"]
    run = run_memleak("--memleak-all", "--memleak-iterations=15")  # 15 + 5 + 15 > 30
    assert run.test("test_steady")["rounds"] == [15, 30]


def test_ini_max_iterations_caps_confirmation_rounds(pytester, run_memleak):
    """Ambiguous growth buys more rounds, up to the cap; the cap must allow two rounds."""
    make_ini(pytester, iterations=6, warmup=1, max_iterations=12)
    pytester.makepyfile(
        """
        import pytest

        SINK = []
        CALLS = []

        @pytest.mark.memcheck
        def test_first_round_only():
            CALLS.append(1)
            if len(CALLS) <= 8:  # grows in the first measured round only
                SINK.append(bytes(4096))
        """
    )
    run = run_memleak()
    assert_ini(run, "max_iterations", 12, test="test_first_round_only")
    entry = run.test("test_first_round_only")
    assert entry["verdict"] == "ok"  # suspect once, clean in the confirming round
    assert entry["rounds"] == [6, 12]


def test_ini_max_iterations_below_two_rounds_is_rejected(pytester, run_memleak, leak_and_clean):
    make_ini(pytester, iterations=6, warmup=1, max_iterations=6)
    run = run_memleak()
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "memleak_max_iterations" in run.output
    assert ">= 2 x iterations" in run.output


def test_ini_max_rate_tolerates_a_slower_leak(pytester, run_memleak):
    make_ini(pytester, iterations=6, warmup=1, max_rate="1 MiB/iter")
    pytester.makepyfile(
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_leak():
            SINK.append(bytes(4096))

        @pytest.mark.memcheck(max_rate="1 KiB/iter")
        def test_leak_over_marker_limit():
            SINK.append(bytes(4096))
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=1, failed=1)
    assert_ini(run, "max_rate", "1.0 MiB/iter", test="test_leak")
    leak = run.test("test_leak")
    assert leak["verdict"] == "ok"
    assert leak["findings"], "the growth is still found, only tolerated"
    assert not any(f["failing"] for f in leak["findings"])
    assert run.test("test_leak_over_marker_limit")["verdict"] == "leak"


def test_ini_max_growth_tolerates_a_small_total(pytester, run_memleak):
    make_ini(pytester, iterations=6, warmup=1, max_growth="10 MiB")
    pytester.makepyfile(
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_leak():
            SINK.append(bytes(4096))

        @pytest.mark.memcheck(max_growth="1 KiB")
        def test_leak_over_marker_limit():
            SINK.append(bytes(4096))
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=1, failed=1)
    assert_ini(run, "max_growth", 10 * 1024**2, test="test_leak")
    assert run.test("test_leak")["verdict"] == "ok"
    assert run.test("test_leak_over_marker_limit")["verdict"] == "leak"


def test_ini_max_rss_fails_a_clean_test_above_it(pytester, run_memleak):
    make_ini(pytester, iterations=5, warmup=1, max_rss="1 MiB")
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    run.result.assert_outcomes(failed=1)
    assert_ini(run, "max_rss", 1024**2, test="test_clean")
    assert run.test("test_clean")["verdict"] == "leak"
    assert "max_rss=1.0 MiB" in run.test("test_clean")["message"]


def test_max_rss_fails_even_when_every_leak_found_is_suppressed(pytester, run_memleak):
    # A suppression accepts known growth; it does not lift an absolute limit.
    make_ini(pytester, iterations=5, warmup=1, max_rss="1 MiB", suppress="*")
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    run.result.assert_outcomes(failed=1)
    clean = run.test("test_clean")
    assert clean["verdict"] == "leak"
    assert all(lk["suppressed"] for lk in clean["leaks"]), clean["leaks"]
    assert "max_rss=1.0 MiB" in clean["message"]


def test_ini_max_external_ratio_fails_above_it(pytester, run_memleak):
    make_ini(pytester, iterations=5, warmup=1, max_external_ratio="0.001")
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    assert_ini(run, "max_external_ratio", 0.001, test="test_clean")
    clean = run.test("test_clean")
    if clean["trend"]["external_ratio"] is None:
        pytest.skip("no heap probe here: the external ratio is unknown")
    run.result.assert_outcomes(failed=1)
    assert "max_external_ratio=0.001" in clean["message"]


def test_ini_fail_on_critical_lets_a_small_leak_pass(pytester, run_memleak):
    make_ini(pytester, iterations=6, warmup=1, fail_on="critical")
    pytester.makepyfile(
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_small_leak():
            SINK.append({})

        @pytest.mark.memcheck(fail_on="low")
        def test_small_leak_fail_on_low():
            SINK.append({})
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=1, failed=1)
    assert_ini(run, "fail_on", "critical", test="test_small_leak")
    small = run.test("test_small_leak")
    assert small["verdict"] == "ok"
    assert small["findings"]
    assert all(not f["failing"] and f["severity"] != "critical" for f in small["findings"])
    assert run.test("test_small_leak_fail_on_low")["verdict"] == "leak"


def test_ini_timeout_stops_the_loop(pytester, run_memleak):
    make_ini(pytester, iterations=10, warmup=5, timeout="20ms")
    pytester.makepyfile(
        """
        import time
        import pytest

        @pytest.mark.memcheck
        def test_slow():
            time.sleep(0.01)
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=1)
    assert_ini(run, "timeout", 0.02)
    # 20 ms cannot hold the calls a verdict needs: named as not decided, not passed as "ok".
    (note,) = run.report["not_checked"]
    assert note["kind"] == "not decided"
    assert note["reason"].startswith("not decided: the time budget of 0.02 s"), note


def test_ini_diagnose_never_skips_the_diagnosis(pytester, run_memleak):
    make_ini(pytester, iterations=6, warmup=1, diagnose="never")
    pytester.makepyfile(
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_leak():
            SINK.append(bytes(4096))

        @pytest.mark.memcheck(diagnose="auto")
        def test_leak_diagnosed():
            SINK.append(bytes(4096))
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(failed=2)
    assert_ini(run, "diagnose", "never", test="test_leak")
    leak = run.test("test_leak")
    assert leak["verdict"] == "leak"
    assert leak["diagnosis"] is None
    assert leak["leaks"] == []
    diagnosed = run.test("test_leak_diagnosed")
    assert diagnosed["diagnosis"] is not None
    assert diagnosed["leaks"]


def test_ini_trace_frames_bounds_the_stacks(pytester, run_memleak):
    make_ini(pytester, iterations=6, warmup=1, trace_frames=2)
    pytester.makepyfile(
        """
        import pytest

        SINK = []

        def store():
            SINK.append(bytes(4096))

        def remember():
            store()

        def handle():
            remember()

        @pytest.mark.memcheck
        def test_leak():
            handle()

        @pytest.mark.memcheck(trace_frames=10)
        def test_leak_deep():
            handle()
        """
    )
    run = run_memleak()
    assert_ini(run, "trace_frames", 2, test="test_leak")
    stacks = [lk["stack_trace"] for lk in run.test("test_leak")["leaks"] if lk["stack_trace"]]
    assert stacks, run.test("test_leak")["leaks"]
    assert all(1 <= len(stack) <= 2 for stack in stacks), stacks
    deep = [lk["stack_trace"] for lk in run.test("test_leak_deep")["leaks"] if lk["stack_trace"]]
    assert deep
    assert max(len(stack) for stack in deep) > 2, deep


def test_ini_suppress_accepts_known_growth(pytester, run_memleak):
    make_ini(pytester, iterations=6, warmup=1, suppress="vendor.*\ntest_cache.py:*")
    pytester.makepyfile(
        test_cache="""
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_leak():
            SINK.append(bytes(4096))

        @pytest.mark.memcheck(suppress="vendor.*")
        def test_leak_not_suppressed():
            SINK.append(bytes(4096))
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=1, failed=1)
    assert_ini(run, "suppress", ["vendor.*", "test_cache.py:*"], test="test_leak")
    leak = run.test("test_leak")
    assert (leak["verdict"], leak["stop_reason"]) == ("ok", "suppressed")
    assert leak["leaks"]
    assert all(lk["suppressed"] for lk in leak["leaks"])
    assert {lk["suppressed_by"] for lk in leak["leaks"]} == {"test_cache.py:*"}
    assert run.test("test_leak_not_suppressed")["verdict"] == "leak"


def saved_runs(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.json")) if folder.is_dir() else []


@pytest.mark.parametrize("name", ["save", "autosave"])
def test_ini_save_writes_the_run_to_the_history_folder(pytester, run_memleak, name):
    make_ini(pytester, iterations=5, warmup=1, **{name: "true"})
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    assert_ini(run, name, True)
    runs = saved_runs(pytester.path / ".memleak" / "history")
    assert len(runs) == 1, runs
    assert "memleak: run saved to" in run.output
    saved = json_report.read_report(str(runs[0]))
    assert [t.nodeid for t in saved.tests] == [t["nodeid"] for t in run.report["tests"]]


def test_ini_storage_is_the_history_folder(pytester, run_memleak):
    make_ini(pytester, iterations=5, warmup=1, storage="hist/runs")
    pytester.makepyfile(CLEAN)
    run = run_memleak("--memleak-save")
    assert_ini(run, "storage", "hist/runs")
    assert len(saved_runs(pytester.path / "hist" / "runs")) == 1
    assert not (pytester.path / ".memleak" / "history").exists()


#: A marked test whose leak per call is read from size.txt, tolerated by its max_rate.
GROWING = """
import pathlib
import pytest

SIZE = int(pathlib.Path("size.txt").read_text())
SINK = []

@pytest.mark.memcheck(max_rate="1 MiB/iter")
def test_grow():
    SINK.append(bytes(SIZE))
"""


def _save_baseline(pytester: pytest.Pytester, run_memleak: Any, size: int) -> None:
    pytester.path.joinpath("size.txt").write_text(str(size))
    pytester.makepyfile(test_grow=GROWING)
    first = run_memleak("--memleak-iterations=6", "--memleak-warmup=1", "--memleak-save")
    first.result.assert_outcomes(passed=1)
    assert len(saved_runs(pytester.path / ".memleak" / "history")) == 1


def test_ini_compare_adds_a_comparison(pytester, run_memleak):
    _save_baseline(pytester, run_memleak, 0)
    make_ini(pytester, iterations=6, warmup=1, compare="latest")
    run = run_memleak()
    run.result.assert_outcomes(passed=1)
    assert_ini(run, "compare", "latest")
    assert run.report["comparison"]["rows"][0]["nodeid"] == "test_grow.py::test_grow"
    assert run.test("test_grow")["baseline"]["status"] in ("same", "improved", "worse")
    assert json_report.validate(run.report) == []


def test_ini_compare_fail_fails_a_regression_within_the_thresholds(pytester, run_memleak):
    _save_baseline(pytester, run_memleak, 0)
    pytester.path.joinpath("size.txt").write_text("4096")
    make_ini(pytester, iterations=6, warmup=1, compare="latest", compare_fail="growth:1KiB")
    run = run_memleak()
    run.result.assert_outcomes(failed=1)
    assert_ini(run, "compare_fail", "growth:1KiB")
    grow = run.test("test_grow")
    assert grow["verdict"] == "ok"  # within max_rate: only the comparison fails it
    assert grow["baseline"]["status"] == "regressed"
    assert grow["baseline"]["failures"]
    assert "regressed against baseline" in run.output
    assert run.report["comparison"]["failed"] is True


def test_compare_takes_a_value(pytester, run_memleak):
    """--memleak-compare always takes a value, so it never swallows a test path silently."""
    _save_baseline(pytester, run_memleak, 0)
    run = run_memleak(
        "--memleak-iterations=6",
        "--memleak-warmup=1",
        "--memleak-compare",
        "latest",
        "test_grow.py",
    )
    assert run.result.ret == 0, run.output
    assert "comparison" in run.report
    wrong = run_memleak(
        "--memleak-iterations=6", "--memleak-warmup=1", "--memleak-compare", "test_grow.py"
    )
    assert wrong.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "test_grow.py" in wrong.output
    assert "Traceback" not in wrong.output


#: A soaked test (run once under a background sampler) and a test that counts its calls.
SOAKED = """
import time
import pytest

CALLS = []

@pytest.mark.memcheck
def test_soaked():
    CALLS.append(1)
    time.sleep({seconds})

def test_called_once():
    assert len(CALLS) == 1
"""


def test_ini_mode_soak_runs_the_body_once_under_a_sampler(pytester, run_memleak):
    make_ini(pytester, mode="soak", interval="10ms")
    pytester.makepyfile(SOAKED.format(seconds=0.1))
    run = run_memleak()
    run.result.assert_outcomes(passed=2)
    assert_ini(run, "mode", "soak", test="test_soaked")
    soaked = run.test("test_soaked")
    assert soaked["trend"]["mode"] == "soak"
    assert soaked["warmup"] == 0
    assert soaked["iterations"] == soaked["trend"]["samples"] >= 2


def test_ini_interval_sets_the_sampling_step(pytester, run_memleak):
    make_ini(pytester, mode="soak", interval="20ms")
    pytester.makepyfile(SOAKED.format(seconds=0.2))
    run = run_memleak()
    run.result.assert_outcomes(passed=2)
    assert_ini(run, "interval", 0.02, test="test_soaked")
    soaked = run.test("test_soaked")
    assert soaked["trend"]["interval_s"] == pytest.approx(0.02)
    # 0.2 s at one sample per 20 ms, plus the first and the last: at most 12.
    assert 2 <= soaked["trend"]["samples"] <= 12, soaked["trend"]


def test_ini_retention_bounds_the_samples_kept(pytester, run_memleak):
    make_ini(pytester, mode="soak", interval="2ms", retention=10)
    pytester.makepyfile(SOAKED.format(seconds=0.5))
    run = run_memleak()
    run.result.assert_outcomes(passed=2)
    assert_ini(run, "retention", 10, test="test_soaked")
    soaked = run.test("test_soaked")
    assert soaked["trend"]["samples"] <= 10
    assert len(soaked["snapshots"]["rss"]) == soaked["trend"]["samples"]
    assert soaked["trend"]["interval_s"] > 0.002  # downsampled: every other sample dropped


def test_ini_window_judges_only_the_last_samples(pytester, run_memleak):
    """The growth-detection window: only the samples of the last DURATION are judged."""
    make_ini(pytester, mode="soak", interval="10ms", window="0.2s")
    pytester.makepyfile(SOAKED.format(seconds=0.6))
    run = run_memleak()
    assert_ini(run, "window", 0.2, test="test_soaked")
    trend = run.test("test_soaked")["trend"]
    assert trend["samples"] >= 30
    assert 10 <= trend["judged_samples"] <= 25  # ~0.2 s at one sample per 10 ms


# --------------------------------------------------------------------------- pyproject.toml


def test_pyproject_ini_options_are_read(pytester, run_memleak):
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        memleak_iterations = "5"
        memleak_warmup = 1
        memleak_max_rate = "2 KiB/iter"
        memleak_suppress = ["vendor.*", "*:cache"]
        memleak_all = true
        """
    )
    pytester.makepyfile(UNMARKED)
    run = run_memleak()
    assert_ini(run, "iterations", 5, test="test_unmarked_clean")
    assert_ini(run, "warmup", 1, test="test_unmarked_clean")
    assert_ini(run, "max_rate", "2.0 KiB/iter", test="test_unmarked_clean")
    assert_ini(run, "suppress", ["vendor.*", "*:cache"], test="test_unmarked_clean")
    assert_ini(run, "all", True)
    assert run.report["summary"]["checked"] == 2


def test_pyproject_report_and_profile(pytester, run_memleak):
    pytester.makepyprojecttoml(
        """
        [tool.pytest.ini_options]
        memleak_report = "out/memleak.json"
        memleak_profile = "lenient"
        memleak_warmup = "1"
        memleak_iterations = "5"
        """
    )
    pytester.makepyfile(CLEAN)
    run = run_memleak(report=None, read="out/memleak.json")
    run.result.assert_outcomes(passed=1)
    assert_ini(run, "report", "out/memleak.json")
    assert_ini(run, "profile", "lenient", test="test_clean")
    assert_source(run.test("test_clean")["settings"], "max_growth", 1024**2, "profile:lenient")


@pytest.mark.skipif(
    int(pytest.__version__.split(".")[0]) < 9, reason="[tool.pytest] is pytest 9's native table"
)
@pytest.mark.parametrize(
    ("line", "name", "expected"),
    [("memleak_all = true", "all", True), ("memleak_iterations = 7", "iterations", 7)],
)
def test_native_toml_table_takes_toml_types(pytester, run_memleak, line, name, expected):
    pytester.makepyprojecttoml(f"[tool.pytest]\nmemleak_warmup = '1'\n{line}\n")
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    assert run.result.ret == 0, run.output
    assert_ini(run, name, expected)


# --------------------------------------------------------------------------- precedence

PRECEDENCE_VALUES = {
    # name: (ini text, cli text, marker literal, {layer: value in the JSON}, default)
    "iterations": ("5", "6", "7", {"ini": 5, "cli": 6, "marker": 7}, 10),
    "max_rate": (
        "1 KiB/iter",
        "2 KiB/iter",
        "'3 KiB/iter'",
        {"ini": "1.0 KiB/iter", "cli": "2.0 KiB/iter", "marker": "3.0 KiB/iter"},
        None,
    ),
}
LAYER_SETS = [
    (),
    ("ini",),
    ("cli",),
    ("ini", "cli"),
    ("marker",),
    ("ini", "marker"),
    ("cli", "marker"),
    ("ini", "cli", "marker"),
]


@pytest.mark.parametrize("layers", LAYER_SETS, ids=lambda ls: "+".join(ls) or "default")
@pytest.mark.parametrize("name", sorted(PRECEDENCE_VALUES))
def test_precedence(pytester, run_memleak, name, layers):
    ini_value, cli_value, marker_value, effective, default = PRECEDENCE_VALUES[name]
    flag = "--memleak-" + name.replace("_", "-")
    if "ini" in layers:
        make_ini(pytester, **{name: ini_value})
    args = ["--memleak-warmup=1"]
    if "cli" in layers:
        args.append(f"{flag}={cli_value}")
    marker = f"memcheck({name}={marker_value})" if "marker" in layers else "memcheck"
    pytester.makepyfile(JITTER.replace("memcheck\n", marker + "\n"))
    run = run_memleak(*args)
    run.result.assert_outcomes(passed=1)
    winner = next((layer for layer in ("marker", "cli", "ini") if layer in layers), "default")
    expected = effective.get(winner, default)
    assert_source(run.test("test_jitter")["settings"], name, expected, winner)
    # The session config has no marker layer.
    session = next((layer for layer in ("cli", "ini") if layer in layers), "default")
    assert_source(run.report["config"], name, effective.get(session, default), session)
    if name == "iterations":
        assert run.test("test_jitter")["iterations"] == expected


def test_profile_lenient_loses_to_an_explicit_key(pytester, run_memleak):
    make_ini(pytester, profile="lenient", max_growth="2 KiB", iterations=5)
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    settings = run.test("test_clean")["settings"]
    assert_source(settings, "profile", "lenient", "ini")
    assert_source(settings, "max_growth", 2048, "ini")
    assert_source(settings, "max_rate", "16.0 KiB/iter", "profile:lenient")
    assert_source(settings, "warmup", 10, "profile:lenient")


def test_explicit_ini_key_beats_a_profile_given_on_the_command_line(pytester, run_memleak):
    make_ini(pytester, iterations=5)
    pytester.makepyfile(CLEAN)
    run = run_memleak("--memleak-profile=strict")
    settings = run.test("test_clean")["settings"]
    assert_source(settings, "profile", "strict", "cli")
    assert_source(settings, "iterations", 5, "ini")
    assert_source(settings, "max_iterations", 60, "profile:strict")


def test_marker_profile_applies_to_that_test_only(pytester, run_memleak):
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memcheck(profile="strict")
        def test_strict():
            x = [1, 2, 3]

        @pytest.mark.memcheck
        def test_plain():
            x = [1, 2, 3]
        """
    )
    run = run_memleak("--memleak-warmup=1", "--memleak-iterations=5")
    strict, plain = run.test("test_strict")["settings"], run.test("test_plain")["settings"]
    assert_source(strict, "profile", "strict", "marker")
    assert_source(strict, "iterations", 5, "cli")  # explicit beats the marker's profile
    assert_source(strict, "max_iterations", 60, "profile:strict")
    assert_source(plain, "profile", "default", "default")
    assert_source(plain, "max_iterations", 30, "default")


def test_closest_marker_wins(pytester, run_memleak):
    pytester.makepyfile(
        """
        import pytest

        pytestmark = pytest.mark.memcheck(iterations=6, fail_on="high")

        @pytest.mark.memcheck(iterations=5)
        def test_clean():
            x = [1, 2, 3]
        """
    )
    run = run_memleak("--memleak-warmup=1")
    settings = run.test("test_clean")["settings"]
    assert_source(settings, "iterations", 5, "marker")
    assert_source(settings, "fail_on", "high", "marker")


# --------------------------------------------------------------------------- malformed values

#: A first test that leaves a trace when it runs: a usage error must come before it.
SENTINEL = """
import pathlib
import pytest

def test_first():
    pathlib.Path("ran").write_text("yes")

{marker}
def test_target():
    x = [1, 2, 3]
"""

MALFORMED = [
    # (id, where, setting, value text, words the error must contain)
    (
        "ini-max-growth",
        "ini",
        "max_growth",
        "10 XB",
        ["memleak_max_growth", "'10 XB'", "a size such as"],
    ),
    (
        "cli-iterations-negative",
        "cli",
        "iterations",
        "-5",
        ["--memleak-iterations", "'-5'", "an integer from 5 to"],
    ),
    (
        "cli-max-rate",
        "cli",
        "max_rate",
        "abc/iter",
        ["--memleak-max-rate", "'abc/iter'", "a rate such as"],
    ),
    (
        "ini-fail-on",
        "ini",
        "fail_on",
        "huge",
        ["memleak_fail_on", "'huge'", "one of low, medium, high, critical"],
    ),
    (
        "cli-iterations-too-few",
        "cli",
        "iterations",
        "4",
        ["--memleak-iterations", "'4'", "an integer from 5 to"],
    ),
    (
        "ini-max-iterations-too-few",
        "ini",
        "max_iterations",
        "3",
        ["memleak_max_iterations", "'3'", "an integer from 5 to"],
    ),
    (
        "ini-compare-fail",
        "ini",
        "compare_fail",
        "rate:lots",
        ["memleak_compare_fail", "'rate:lots'", "comma-separated terms"],
    ),
    (
        "cli-iterations-float",
        "cli",
        "iterations",
        "1.5",
        ["--memleak-iterations", "'1.5'", "an integer from 5 to"],
    ),
    ("ini-all", "ini", "all", "maybe", ["memleak_all", "'maybe'", "a boolean"]),
    ("ini-timeout", "ini", "timeout", "soon", ["memleak_timeout", "'soon'", "a duration such as"]),
    (
        "cli-profile",
        "cli",
        "profile",
        "paranoid",
        ["--memleak-profile", "'paranoid'", "one of strict, default, lenient"],
    ),
    (
        "ini-ratio-negative",
        "ini",
        "max_external_ratio",
        "-1",
        ["memleak_max_external_ratio", "'-1'", "a number >= 0"],
    ),
    (
        "marker-fail-on",
        "marker",
        None,
        'fail_on="huge"',
        ["fail_on", "'huge'", "one of low, medium, high, critical"],
    ),
    (
        "marker-unknown-key",
        "marker",
        None,
        "iterationz=3",
        ["iterationz", "3", "one of the keyword arguments", "iterations"],
    ),
    ("marker-positional", "marker", None, "5", ["memcheck", "(5,)", "keyword arguments only"]),
    (
        "marker-iterations-bool",
        "marker",
        None,
        "iterations=True",
        ["iterations", "True", "an integer from 5 to"],
    ),
]


@pytest.mark.parametrize(
    ("where", "name", "value", "words"), [m[1:] for m in MALFORMED], ids=[m[0] for m in MALFORMED]
)
def test_malformed_value_is_a_usage_error(pytester, run_memleak, where, name, value, words):
    args = []
    if where == "ini":
        make_ini(pytester, **{name: value})
    elif where == "cli":
        args.append("--memleak-" + name.replace("_", "-") + "=" + value)
    marker = f"@pytest.mark.memcheck({value})" if where == "marker" else "@pytest.mark.memcheck"
    pytester.makepyfile(SENTINEL.format(marker=marker))
    run = run_memleak(*args)
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, run.output
    assert not (pytester.path / "ran").exists(), "a test ran before the usage error"
    error_lines = [line for line in run.result.errlines if line.startswith("ERROR: memleak:")]
    assert len(error_lines) == 1, run.output
    for word in words:
        assert word in error_lines[0], (word, error_lines[0])
    assert "Traceback" not in run.output
    assert "INTERNALERROR" not in run.output
    assert run.report is None


# Each count and duration has a range checked at start-up: the largest accepted value starts a
# run, one past it is a usage error (before, some passed and broke every test later: an
# OverflowError in the loop, a MemoryError, tracemalloc's ValueError, a sampler that raised).
BOUNDS = [
    # (setting, largest accepted, first rejected, words of the error)
    ("iterations", "100000", "100001", "an integer from 5 to 100000"),
    ("iterations", "100000", "99999999999999999999999", "an integer from 5 to 100000"),
    ("max_iterations", "200000", "200001", "an integer from 5 to 200000"),
    ("warmup", "100000", "100001", "an integer from 0 to 100000"),
    ("trace_frames", "1000", "1001", "an integer from 1 to 1000"),
    ("retention", "1000000", "1000001", "an integer from 10 to 1000000"),
    ("interval", "1h", "3601s", "a duration from 1ms to 1h"),
    ("interval", "1ms", "0.5ms", "a duration from 1ms to 1h"),
    ("interval", "1h", "99999999999999999999999", "a duration from 1ms to 1h"),
    ("timeout", "7d", "604801s", "a duration of at most 7 days"),
    ("window", "168h", "169h", "a duration of at most 7 days"),
]


@pytest.mark.parametrize(
    ("name", "largest", "rejected", "words"),
    BOUNDS,
    ids=[f"{b[0]}-{b[2]}" for b in BOUNDS],
)
def test_each_setting_has_a_range_checked_at_start_up(
    pytester, run_memleak, name, largest, rejected, words
):
    pytester.makepyfile(SENTINEL.format(marker="@pytest.mark.memcheck"))
    option = "--memleak-" + name.replace("_", "-")
    extra = ["--memleak-max-iterations=200000"] if name == "iterations" else []
    ok = run_memleak(f"{option}={largest}", *extra, "--collect-only", "-q", report=None)
    assert ok.result.ret == pytest.ExitCode.OK, ok.output
    bad = run_memleak(f"{option}={rejected}")
    assert bad.result.ret == pytest.ExitCode.USAGE_ERROR, bad.output
    assert not (pytester.path / "ran").exists(), "a test ran before the usage error"
    error = [line for line in bad.result.errlines if line.startswith("ERROR: memleak:")]
    assert len(error) == 1, bad.output
    for part in (option, repr(rejected), words):
        assert part in error[0], (part, error[0])
    assert "Traceback" not in bad.output


def test_malformed_marker_value_names_the_test(pytester, run_memleak):
    pytester.makepyfile(SENTINEL.format(marker='@pytest.mark.memcheck(fail_on="huge")'))
    run = run_memleak()
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "test_malformed_marker_value_names_the_test.py::test_target" in run.output


def test_smallest_accepted_iterations_detect_a_leak(run_memleak, leak_and_clean):
    """5 is the minimum because a round of fewer points cannot reach p < 0.01."""
    run = run_memleak("--memleak-iterations=5", "--memleak-warmup=1")
    assert run.test("test_leak")["verdict"] == "leak"
    assert run.test("test_clean")["verdict"] == "ok"


# --------------------------------------------------------------------------- report path


@pytest.mark.parametrize("where", ["cli", "ini"])
def test_report_off_writes_no_file(pytester, run_memleak, leak_and_clean, where):
    if where == "ini":
        make_ini(pytester, report="off", iterations=5, warmup=1)
        run = run_memleak(report=None)
    else:
        run = run_memleak("--memleak-iterations=5", "--memleak-warmup=1", report="off")
    assert "memleak summary" in run.output  # the tests were checked
    assert not (pytester.path / "off").exists()
    assert not (pytester.path / ".memleak" / "report.json").exists()
    assert "JSON report written" not in run.output


def test_report_parent_is_a_file(pytester, run_memleak):
    pytester.makepyfile(SENTINEL.format(marker="@pytest.mark.memcheck"))
    pytester.path.joinpath("afile").write_text("not a directory")
    run = run_memleak(report="afile/report.json")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, run.output
    assert not (pytester.path / "ran").exists()
    assert "afile/report.json" in run.result.stderr.str()
    assert "--memleak-report" in run.result.stderr.str()
    assert "Traceback" not in run.output


def test_report_path_is_a_directory(pytester, run_memleak):
    pytester.makepyfile(SENTINEL.format(marker="@pytest.mark.memcheck"))
    pytester.mkdir("reports")
    run = run_memleak(report="reports")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, run.output
    assert not (pytester.path / "ran").exists()
    stderr = run.result.stderr.str()
    assert "reports: is a directory" in stderr
    assert "Traceback" not in run.output


def test_report_path_with_a_trailing_slash_is_a_usage_error(pytester, run_memleak):
    # It used to write a file named "newdir".
    pytester.makepyfile(SENTINEL.format(marker="@pytest.mark.memcheck"))
    run = run_memleak(report="newdir/")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, run.output
    assert "newdir/: is a directory; give a file path" in run.result.stderr.str()
    assert not (pytester.path / "newdir").exists()
    assert not (pytester.path / "ran").exists()


def test_same_path_for_json_and_html_is_a_usage_error(pytester, run_memleak):
    # The HTML overwrote the JSON while both said "written".
    pytester.makepyfile(SENTINEL.format(marker="@pytest.mark.memcheck"))
    run = run_memleak("--memleak-html=./out.json", report="out.json")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR, run.output
    stderr = run.result.stderr.str()
    assert "--memleak-report and --memleak-html name the same file" in stderr
    assert not (pytester.path / "out.json").exists()
    assert not (pytester.path / "ran").exists()


def test_reports_honour_the_umask(pytester, run_memleak):
    # Both files hold the full command line: under umask 077 nobody else may read them.
    import os
    import stat

    pytester.makepyfile(CLEAN)
    old = os.umask(0o077)  # inherited by the pytest subprocess
    try:
        run = run_memleak("--memleak-iterations=5", "--memleak-warmup=1", "--memleak-html=out.html")
    finally:
        os.umask(old)
    assert run.report is not None, run.output
    for name in ("report.json", "out.html"):
        mode = stat.S_IMODE((pytester.path / name).stat().st_mode)
        assert mode == 0o600, (name, oct(mode))
    os.umask(0o022)
    try:
        run_memleak("--memleak-iterations=5", "--memleak-warmup=1")
    finally:
        os.umask(old)
    assert stat.S_IMODE((pytester.path / "report.json").stat().st_mode) == 0o644


def test_default_report_path_written_when_a_test_was_checked(pytester, run_memleak):
    pytester.makepyfile(CLEAN)
    # autoload=True: the plugin as installed (entry point), with every other plugin loaded.
    run = run_memleak(
        "--memleak-iterations=5",
        "--memleak-warmup=1",
        report=None,
        read=".memleak/report.json",
        autoload=True,
    )
    run.result.assert_outcomes(passed=1)
    assert run.report is not None
    assert_source(run.report["config"], "report", ".memleak/report.json", "default")
    assert "JSON report written to .memleak/report.json" in run.output


def test_default_report_not_written_when_no_test_was_checked(pytester, run_memleak):
    pytester.makepyfile(UNMARKED)
    run = run_memleak(report=None, read=".memleak/report.json")
    run.result.assert_outcomes(passed=2)
    assert run.report is None
    assert "memleak summary" not in run.output


@pytest.mark.parametrize("args", [(), ("--memleak-disable",)], ids=["unchecked", "disabled"])
def test_no_report_directory_when_nothing_was_checked(pytester, run_memleak, args):
    """Installing the plugin must not leave an empty .memleak/ in every project."""
    pytester.makepyfile(UNMARKED)
    run_memleak(*args, report=None)
    assert not (pytester.path / ".memleak").exists()


RUNAWAY = """
import pytest

KEEP = []

@pytest.mark.memcheck{marker}
def test_runaway():
    KEEP.append(bytearray(50 * 1024 * 1024))
"""


@pytest.mark.parametrize(
    ("marker", "conftest", "guard"),
    [
        ('(max_rss="300 MiB")', "", "max_rss=300.0 MiB"),
        # The default guard (1 GiB of growth), made smaller here so the test stays light.
        (
            "",
            "import pytest_memleak.runner as runner\nrunner.RUNAWAY_GROWTH = 200 * 1024**2\n",
            "the runaway guard (200.0 MiB of growth)",
        ),
    ],
    ids=["max_rss", "default-guard"],
)
def test_a_runaway_leak_is_stopped_in_time(pytester, run_memleak, marker, conftest, guard):
    # 50 MiB kept per call used to run 44 calls and peak at 2.3 GB, max_rss or not.
    pytester.makepyfile(RUNAWAY.format(marker=marker))
    if conftest:
        pytester.makeconftest(conftest)
    run = run_memleak()
    run.result.assert_outcomes(failed=1)
    entry = run.test("test_runaway")
    assert entry["verdict"] == "leak"
    assert entry["severity"] == "critical"
    assert entry["stop_reason"] == "runaway"
    assert entry["warmup"] + entry["iterations"] <= 8, entry["iterations"]
    assert f"past {guard}: the loop was stopped" in entry["message"]
    assert entry["diagnosis"] is None  # no traced pass on top of a runaway


def test_a_time_budget_that_runs_out_is_never_a_silent_pass(pytester, run_memleak):
    # timeout="1s" on a body of 0.3 s that keeps 1 MiB a call: it was passed as "ok (partial)";
    # now it is named as not decided. A fast leak confirmed within its budget still fails.
    pytester.makepyfile(
        test_budget="""
        import time
        import pytest

        KEEP = []

        @pytest.mark.memcheck(timeout="1s")
        def test_slow_leak():
            KEEP.append(bytearray(1024 * 1024))
            time.sleep(0.3)

        @pytest.mark.memcheck(timeout="5s", iterations=5, warmup=1)
        def test_fast_leak():
            KEEP.append(bytearray(64 * 1024))
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=1, failed=1)
    nodeids = [t["nodeid"] for t in run.report["tests"]]
    assert "test_budget.py::test_slow_leak" not in nodeids
    (note,) = [n for n in run.report["not_checked"] if n["nodeid"].endswith("test_slow_leak")]
    assert note["kind"] == "not decided"
    assert note["reason"].startswith("not decided: the time budget of 1 s"), note
    assert run.test("test_fast_leak")["verdict"] == "leak"
    run.result.stdout.fnmatch_lines(["*not decided: the time budget of 1 s*"])


def test_a_diagnosis_call_that_fails_keeps_the_leak_verdict(pytester, run_memleak):
    # Under a memory limit the diagnosis pass's MemoryError turned a confirmed leak into an
    # error (a whole test: "not repeatable", passed). The measured verdict stands.
    pytester.makepyfile(
        test_oom="""
        import pytest

        HOLD = []

        @pytest.mark.memcheck
        def test_leak_then_oom():
            if len(HOLD) >= 13:  # the measured calls are over: the diagnosis's first call
                raise MemoryError("limit reached")
            HOLD.append(bytearray(64 * 1024))
        """
    )
    run = run_memleak("--memleak-iterations=6", "--memleak-warmup=1")
    run.result.assert_outcomes(failed=1)
    entry = run.test("test_leak_then_oom")
    assert entry["verdict"] == "leak"
    assert entry["iterations"] == 11  # 6, then a confirmation round of 5
    assert (
        "diagnosis stopped: a call raised MemoryError: limit reached"
        in (entry["probe_notes"]["diagnosis"])
    )


def test_ini_table_wide_shows_every_column(pytester, run_memleak):
    make_ini(pytester, iterations=5, warmup=1, table="wide")
    pytester.makepyfile(CLEAN)
    run = run_memleak()
    assert_ini(run, "table", "wide")
    run.result.stdout.fnmatch_lines(["verdict*test*grew*rate*severity*measured*RSS Δ*health"])


def test_pytest_help_lists_every_option(pytester):
    """``pytest --help`` %-formats each option's help: a literal ``%`` (the compare rule's
    example) crashed it with a ValueError."""
    result = pytester.runpytest_subprocess("--help")
    assert result.ret == 0, result.stderr.str()
    out = result.stdout.str()
    assert "'rate:10%,growth:1MiB," in out
    for option in OPTIONS:
        assert option.cli_flag in out
        assert option.ini_key in out


def test_tests_without_marker_values_share_one_settings_object_and_record(pytester):
    """A long run keeps every test's result: tests whose marker gives no value share the run's
    settings object and its report record (2.4 KB a test otherwise); a marker value makes its
    own."""
    pytester.makeconftest(
        """
        import pytest
        from pytest_memleak import plugin

        SEEN = {}

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_call(item):  # (the item holds its results until its report)
            try:
                return (yield)
            finally:
                results = item.stash.get(plugin.results_key, [])
                SEEN[item.name] = (id(item.stash[plugin.settings_key]), id(results[0].settings))

        def pytest_sessionfinish(session):
            session.config.seen = SEEN
        """
    )
    pytester.makepyfile(
        """
        import pytest

        def test_a():
            pass

        @pytest.mark.memcheck
        def test_b():
            pass

        @pytest.mark.memcheck(iterations=6)
        def test_c():
            pass
        """
    )
    result = pytester.inline_run(
        "--memleak-all", "-p", "no:cacheprovider", "-p", "no:asyncio", "--memleak-report=off"
    )
    result.assertoutcome(passed=3)
    seen = result.getcalls("pytest_sessionfinish")[0].session.config.seen
    assert seen["test_a"] == seen["test_b"]
    assert seen["test_c"][0] != seen["test_a"][0]
    assert seen["test_c"][1] != seen["test_a"][1]
