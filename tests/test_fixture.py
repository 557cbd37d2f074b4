"""The ``memcheck`` fixture (snapshot, measure, assert_no_leak) and ``pytest_memleak.check``.

Run in a subprocess like the plugin tests: the fixture reads process-wide memory probes.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from known import QUICK_CHECK_SELDOM_DECIDES_ON_39

from pytest_memleak.render.json_report import SCHEMA_FILE

FAST = ("--memleak-iterations=5", "--memleak-warmup=1")
REPORT = "report.json"
#: Auto-loaded plugins the inner runs do not need (hypothesis alone costs ~1 s of start-up).
NO_OPTIONAL_PLUGINS = tuple(
    arg
    for name in ("hypothesispytest", "xdist", "xdist.looponfail", "anyio", "asyncio")
    for arg in ("-p", f"no:{name}")
)

#: Helpers for the generated modules: leaking and clean callables, and a "reached" mark that
#: proves a test body got past its own assertions.
HELPERS = """
import pathlib

SINK = []

def leaky():
    SINK.append(bytes(4096))

def clean():
    x = [1, 2, 3]
    del x

def reached(name):
    pathlib.Path(__file__).with_name(name + ".reached").touch()
"""


def _run(pytester: pytest.Pytester, *args: str, fast: bool = True) -> pytest.RunResult:
    argv = ["-p", "no:cacheprovider", "-rA", *NO_OPTIONAL_PLUGINS, f"--memleak-report={REPORT}"]
    if fast:
        argv += FAST
    return pytester.runpytest_subprocess(*argv, *args, timeout=120)


def _module(pytester: pytest.Pytester, name: str, body: str) -> Path:
    source = textwrap.dedent(HELPERS) + "\n" + textwrap.dedent(body)
    return pytester.makepyfile(**{name: source})


def _report(pytester: pytest.Pytester) -> dict[str, Any]:
    path = pytester.path / REPORT
    assert path.is_file(), f"no report at {path}"
    return json.loads(path.read_text(encoding="utf-8"))


def _measurements(doc: dict[str, Any]) -> dict[tuple[str, str], dict[str, Any]]:
    """Report entries by (nodeid, label)."""
    return {(t["nodeid"], t["label"]): t for t in doc["tests"]}


def _reached(pytester: pytest.Pytester, name: str) -> bool:
    return (pytester.path / f"{name}.reached").exists()


def test_snapshot(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_snap",
        """
        def test_snapshot(memcheck):
            snap = memcheck.snapshot()
            assert isinstance(snap, dict)
            keys = {"rss", "heap", "external", "py_blocks", "fds", "threads", "children"}
            assert keys <= set(snap), set(snap)
            for key in keys:
                assert isinstance(snap[key], (int, float)), (key, snap[key])
            assert snap["rss"] > 0
            assert snap["threads"] >= 1
            assert snap["fds"] >= 3  # stdin, stdout, stderr at least
            assert snap["py_blocks"] > 0
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    # snapshot() alone measures nothing: no result, no report.
    result.stdout.no_fnmatch_line("*memleak summary*")
    assert not (pytester.path / REPORT).exists()


def test_measure(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_meas",
        """
        def test_measure_leaky(memcheck):
            result = memcheck.measure(leaky)
            assert result.verdict == "leak"
            assert result.origin == "fixture"
            assert result.label == "leaky"  # the callable's name by default
            prefix = "memleak: test_meas.py::test_measure_leaky [leaky] leaks"
            assert result.message.startswith(prefix)
            assert result.growth["malloc"].slope_per_iter >= 4096
            assert result.growth["malloc"].pattern == "linear"
            reached("leaky")

        def test_measure_clean(memcheck):
            result = memcheck.measure(clean, label="tidy")
            assert result.verdict == "ok"
            assert result.label == "tidy"
            assert result.message == ""
            assert result.iterations == 5
            assert {"rss", "py_blocks", "malloc", "heap", "fds", "threads"} <= set(result.growth)
            reached("clean")

        def test_measure_overrides(memcheck):
            result = memcheck.measure(clean, label="seven", iterations=7, warmup=2)
            assert result.settings["iterations"] == 7
            assert result.iterations == 5  # a clean body is decided early ("flat")
            assert result.warmup == 2 + 1  # plus the transition iteration
            reached("overrides")
        """,
    )
    result = _run(pytester)
    result.stdout.fnmatch_lines(["PASSED test_meas.py::test_measure_clean"])
    result.stdout.fnmatch_lines(["PASSED test_meas.py::test_measure_overrides"])
    for name in ("leaky", "clean", "overrides"):
        assert _reached(pytester, name), name
    found = _measurements(_report(pytester))
    assert set(found) == {
        ("test_meas.py::test_measure_leaky", "leaky"),
        ("test_meas.py::test_measure_clean", "tidy"),
        ("test_meas.py::test_measure_overrides", "seven"),
    }
    assert {t["origin"] for t in found.values()} == {"fixture"}
    assert found["test_meas.py::test_measure_leaky", "leaky"]["verdict"] == "leak"
    assert found["test_meas.py::test_measure_clean", "tidy"]["verdict"] == "ok"
    seven = found["test_meas.py::test_measure_overrides", "seven"]
    assert seven["verdict"] == "ok"
    assert seven["settings"]["iterations"] == 7
    assert seven["settings"]["sources"]["iterations"] == "marker"
    assert len(seven["snapshots"]["rss"]) == seven["iterations"] + 1
    # The summary table names fixture measurements by test and label.
    result.stdout.fnmatch_lines(["LEAK * test_meas.py::*leaky [[]leaky[]] *"])


def test_assert_no_leak(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_assert",
        """
        import pytest

        def test_uncaught(memcheck):
            memcheck.assert_no_leak(leaky)

        def test_clean(memcheck):
            result = memcheck.assert_no_leak(clean)
            assert result.verdict == "ok"
            reached("clean")

        def test_error_type(memcheck):
            from pytest_memleak.fixture import LeakError

            with pytest.raises(AssertionError) as info:
                memcheck.assert_no_leak(leaky, label="caught")
            assert type(info.value) is LeakError
            assert issubclass(LeakError, AssertionError)
            text = str(info.value)
            assert text.startswith("memleak: test_assert.py::test_error_type [caught] leaks")
            assert "malloc grew" in text
            assert "breaks any confirmed growth" in text
            reached("caught")
        """,
    )
    result = _run(pytester)
    result.stdout.fnmatch_lines(["PASSED test_assert.py::test_clean"])
    result.stdout.fnmatch_lines(
        ["E *LeakError: memleak: test_assert.py::test_uncaught [[]leaky[]] leaks*"]
    )
    result.stdout.fnmatch_lines(["FAILED test_assert.py::test_uncaught - *LeakError: *"])
    assert _reached(pytester, "clean")
    assert _reached(pytester, "caught")
    found = _measurements(_report(pytester))
    assert found["test_assert.py::test_uncaught", "leaky"]["verdict"] == "leak"
    assert found["test_assert.py::test_clean", "clean"]["verdict"] == "ok"
    assert found["test_assert.py::test_error_type", "caught"]["verdict"] == "leak"
    assert {t["origin"] for t in found.values()} == {"fixture"}


def test_measure_with_setup(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_setup",
        """
        def test_setup_value_per_call(memcheck):
            # Only counters are kept, so the measured callable itself does not grow.
            state = {"made": 0, "calls": 0, "mismatches": 0}

            def setup():
                state["made"] += 1
                return state["made"] * 1000  # a fresh value per call

            def body(value):
                state["calls"] += 1
                if value != state["made"] * 1000:
                    state["mismatches"] += 1

            result = memcheck.measure(body, setup=setup, label="with_setup")
            assert result.verdict == "ok"
            assert state["calls"] == state["made"] == result.warmup + result.iterations == 7
            assert state["mismatches"] == 0
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    found = _measurements(_report(pytester))
    assert found["test_setup.py::test_setup_value_per_call", "with_setup"]["verdict"] == "ok"


@QUICK_CHECK_SELDOM_DECIDES_ON_39
def test_check_outside_pytest(pytester: pytest.Pytester) -> None:
    script = pytester.makepyfile(
        check_script="""
        import pytest_memleak

        SINK = []

        def leaky():
            SINK.append(bytes(4096))

        def clean():
            x = [1, 2, 3]

        for fn in (leaky, clean):
            result = pytest_memleak.check(fn, iterations=5, warmup=1)
            print(f"RESULT {fn.__name__} {result.verdict} {result.origin} {result.iterations}")
        """
    )
    result = pytester.runpython(script)
    assert result.ret == 0, "\n".join(result.errlines)
    result.stdout.fnmatch_lines(["RESULT leaky leak library 10", "RESULT clean ok library 5"])


# ------------------------------------------------- fixed bugs (were strict xfails)


def test_measure_leak_does_not_fail_the_test(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_inspect",
        """
        def test_expects_a_leak(memcheck):
            assert memcheck.measure(leaky).verdict == "leak"
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)


def test_caught_leak_error_does_not_fail_the_test(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_caught",
        """
        import pytest
        from pytest_memleak.fixture import LeakError

        def test_expects_leak_error(memcheck):
            with pytest.raises(LeakError):
                memcheck.assert_no_leak(leaky)
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)


def test_measure_profile_applies_its_presets(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_profile",
        """
        def test_strict_profile(memcheck):
            result = memcheck.measure(clean, profile="strict")
            assert result.settings["sources"]["iterations"] == "profile:strict"
            assert result.settings["iterations"] == 20
            assert result.iterations == 5  # clean and flat: decided early
        """,
    )
    result = _run(pytester, fast=False)  # nothing on the command line: the profile decides
    result.assert_outcomes(passed=1)


def test_disable_makes_the_fixture_call_once(pytester, run_memleak):
    pytester.makepyfile(
        """
        SINK = []

        def test_fx(memcheck):
            result = memcheck.measure(lambda: SINK.append(1))
            assert result.verdict == "skipped"
            assert len(SINK) == 1
            with memcheck.watch(12345):
                pass
        """
    )
    run = run_memleak("--memleak-disable")
    run.result.assert_outcomes(passed=1)
    assert run.report is None


def test_a_label_that_is_not_a_string_is_refused(pytester, run_memleak):
    # label=5 used to reach the report, which then failed the schema.
    pytester.makepyfile(
        test_label="""
        import pytest

        @pytest.mark.parametrize("label", [5, ("t",)])
        def test_bad_label(memcheck, label):
            with pytest.raises(TypeError, match="takes a string"):
                memcheck.measure(lambda: None, label=label)

        def test_good_label(memcheck):
            memcheck.measure(lambda: None, label="noop", iterations=5, warmup=1)
        """
    )
    run = run_memleak()
    run.result.assert_outcomes(passed=3)
    assert [t["label"] for t in run.report["tests"]] == ["noop"]
    jsonschema.validate(run.report, json.loads(SCHEMA_FILE.read_text()))


def test_the_fixture_asked_for_by_name_still_reports(pytester: pytest.Pytester) -> None:
    """In a run that checks nothing, the plugin's per-test hooks are dropped after collection
    (unmarked suites run without them). A test that asks for the memcheck fixture by name
    (``request.getfixturevalue``) brings them back: its measurement fails it and is reported."""
    _module(
        pytester,
        "test_by_name",
        """
        def test_plain():
            assert True

        def test_asks_by_name(request):
            memcheck = request.getfixturevalue("memcheck")
            memcheck.assert_no_leak(leaky)
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1, failed=1)
    doc = _report(pytester)
    (entry,) = doc["tests"]
    assert entry["nodeid"].endswith("test_asks_by_name")
    assert entry["verdict"] == "leak"
