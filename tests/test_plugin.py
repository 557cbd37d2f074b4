"""End-to-end tests of the plugin's hooks: the marker, options, verdicts, terminal and JSON output.

Every scenario writes a small test module with deterministic bodies (a module-level list that
keeps ``bytes(4096)`` or ``{}`` per call, a file descriptor or a blocked thread per call, or a
clean body) and runs pytest on it in a subprocess: the plugin reads process-wide memory probes
and freezes the garbage collector, so an in-process run would measure this session instead.
"""

from __future__ import annotations

import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from known import QUICK_CHECK_SELDOM_DECIDES_ON_39

#: Quick loop: 1 warm-up iteration, then the transition iteration, then rounds of 5.
FAST = ("--memleak-iterations=5", "--memleak-warmup=1")
REPORT = "report.json"
SNAPSHOT_METRICS = ("rss", "py_blocks", "malloc", "heap", "external", "fds", "threads", "children")
GROWTH_METRICS = SNAPSHOT_METRICS

#: Counts the calls of a test body in a file next to the module (one line per call).
COUNTER = """
import pathlib

def bump(name):
    with open(pathlib.Path(__file__).with_name(name), "a") as f:
        f.write("x\\n")
"""


#: Auto-loaded plugins the inner runs do not need (hypothesis alone costs ~1 s of start-up).
OPTIONAL_PLUGINS = ("hypothesispytest", "xdist", "xdist.looponfail", "anyio", "asyncio")


def _run(
    pytester: pytest.Pytester,
    *args: str,
    fast: bool = True,
    report: str | None = REPORT,
    plugins: tuple[str, ...] = (),
) -> pytest.RunResult:
    """Run pytest on pytester.path in a subprocess with quick loop settings and a report path.

    ``plugins`` names the optional plugins (see OPTIONAL_PLUGINS) to keep loaded.
    """
    argv = ["-p", "no:cacheprovider", "-rA"]
    for name in OPTIONAL_PLUGINS:
        if name not in plugins:
            argv += ["-p", f"no:{name}"]
    if "asyncio" in plugins:  # silences pytest-asyncio's "loop scope unset" deprecation warning
        pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    if fast:
        argv += FAST
    if report is not None:
        argv.append(f"--memleak-report={report}")
    return pytester.runpytest_subprocess(*argv, *args, timeout=120)


def _report(pytester: pytest.Pytester, name: str = REPORT) -> dict[str, Any]:
    path = pytester.path / name
    assert path.is_file(), f"no report at {path}"
    return json.loads(path.read_text(encoding="utf-8"))


def _tests(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Whole-test entries (no fixture measurements) by node id."""
    out: dict[str, dict[str, Any]] = {}
    for t in doc["tests"]:
        if not t.get("label"):
            assert t["nodeid"] not in out, f"two entries for {t['nodeid']}"
            out[t["nodeid"]] = t
    return out


def _count(pytester: pytest.Pytester, name: str) -> int:
    path = pytester.path / name
    return len(path.read_text().splitlines()) if path.exists() else 0


def _module(pytester: pytest.Pytester, name: str, *parts: str) -> Path:
    """Write test module ``name`` from source parts (each dedented on its own)."""
    source = "\n".join(textwrap.dedent(part) for part in parts)
    return pytester.makepyfile(**{name: source})


def _output(result: pytest.RunResult) -> str:
    return "\n".join(result.outlines + result.errlines)


# --------------------------------------------------------------------------- the marker


def test_marker_without_arguments(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_basic",
        COUNTER,
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_leaky():
            SINK.append(bytes(4096))

        @pytest.mark.memcheck
        def test_clean_marked():
            bump("marked.count")

        def test_plain():
            bump("plain.count")
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    # The failure names the metric, its rate, the pattern and the threshold it breaks.
    result.stdout.fnmatch_lines(
        [
            "*memleak: test_basic.py::test_leaky leaks (* measured iterations after * warm-up*",
            "*malloc grew +4.* KiB/iter*pattern linear*breaks any confirmed growth (fail_on=low)*",
        ]
    )
    result.stdout.fnmatch_lines(["FAILED test_basic.py::test_leaky*"])
    result.stdout.fnmatch_lines(["PASSED test_basic.py::test_clean_marked"])
    result.stdout.fnmatch_lines(["PASSED test_basic.py::test_plain"])

    tests = _tests(_report(pytester))
    assert set(tests) == {"test_basic.py::test_leaky", "test_basic.py::test_clean_marked"}
    assert tests["test_basic.py::test_leaky"]["verdict"] == "leak"
    clean = tests["test_basic.py::test_clean_marked"]
    assert clean["verdict"] == "ok"
    # An unmarked test runs once; a marked one runs warm-up + transition + measured iterations.
    assert _count(pytester, "plain.count") == 1
    assert clean["iterations"] == 5
    assert clean["warmup"] == 1 + 1  # warm-up iterations plus the transition iteration
    assert _count(pytester, "marked.count") == clean["warmup"] + clean["iterations"] == 7


@QUICK_CHECK_SELDOM_DECIDES_ON_39
def test_marker_arguments(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_args",
        COUNTER,
        """
        import os
        import pytest

        SINK = []

        @pytest.mark.memcheck(iterations=7, warmup=3)
        def test_counts():
            bump("counts.count")

        @pytest.mark.memcheck(max_rate="1 MiB/iter")
        def test_within_max_rate():
            SINK.append(bytes(4096))

        @pytest.mark.memcheck(fail_on="critical")
        def test_fd_below_fail_on():
            SINK.append(os.open(os.devnull, os.O_RDONLY))

        @pytest.mark.memcheck(fail_on="high")
        def test_fd_at_fail_on():
            SINK.append(os.open(os.devnull, os.O_RDONLY))
        """,
    )
    result = _run(pytester)  # the command line says iterations=5, warmup=1: the marker wins
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_args.py::test_fd_at_fail_on*"])
    tests = _tests(_report(pytester))

    counts = tests["test_args.py::test_counts"]
    assert counts["verdict"] == "ok"
    # A clean body whose exact counters never move is decided after 5 iterations ("flat").
    assert counts["iterations"] == 5
    assert counts["stop_reason"] == "flat"
    assert counts["warmup"] == 3 + 1  # plus the transition iteration
    assert counts["settings"]["iterations"] == 7
    assert counts["settings"]["warmup"] == 3
    assert counts["settings"]["sources"]["iterations"] == "marker"
    assert counts["settings"]["sources"]["warmup"] == "marker"
    assert len(counts["snapshots"]["rss"]) == 5 + 1
    assert _count(pytester, "counts.count") == 3 + 1 + 5

    rate = tests["test_args.py::test_within_max_rate"]
    assert rate["verdict"] == "ok"
    assert rate["settings"]["max_rate"] == "1.0 MiB/iter"
    malloc = [f for f in rate["findings"] if f["metric"] == "malloc"]
    assert malloc, rate["findings"]  # the growth is seen, then tolerated
    assert not malloc[0]["failing"]
    assert "within max_rate" in malloc[0]["reason"]

    below = tests["test_args.py::test_fd_below_fail_on"]
    assert below["verdict"] == "ok"
    assert [f["metric"] for f in below["findings"]] == ["fds"]
    assert "below fail_on=critical" in below["findings"][0]["reason"]
    at = tests["test_args.py::test_fd_at_fail_on"]
    assert at["verdict"] == "leak"
    assert at["severity"] == "high"


def test_a_run_that_checks_nothing_drops_the_per_test_hooks(pytester: pytest.Pytester) -> None:
    """Unmarked tests run exactly as without the plugin: with nothing to check, its per-test
    hooks (a wrapper around every call and report) are unregistered after collection. A
    marked test keeps them; so does the memcheck fixture named in a test's arguments."""
    pytester.makeconftest(
        """
        def pytest_runtest_setup(item):
            hooks = item.config.pluginmanager.get_plugin("memleak-tests")
            with open("hooks.txt", "a") as f:
                f.write(f"{item.name} {hooks is not None}\\n")
        """
    )
    pytester.makepyfile(
        test_plain="""
        def test_one():
            assert True

        def test_two():
            assert True
        """
    )
    _run(pytester, "test_plain.py").assert_outcomes(passed=2)
    assert (pytester.path / "hooks.txt").read_text() == "test_one False\ntest_two False\n"
    (pytester.path / "hooks.txt").unlink()
    pytester.makepyfile(
        test_marked="""
        import pytest

        def test_plain():
            assert True

        @pytest.mark.memcheck
        def test_marked():
            assert True
        """,
        test_fixture="""
        def test_fixture(memcheck):
            memcheck.snapshot()
        """,
    )
    _run(pytester, "test_marked.py").assert_outcomes(passed=2)
    _run(pytester, "test_fixture.py").assert_outcomes(passed=1)
    assert (pytester.path / "hooks.txt").read_text() == (
        "test_plain True\ntest_marked True\ntest_fixture True\n"
    )


def test_memleak_all_checks_unmarked_tests(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_all",
        """
        SINK = []

        def test_leaky():
            SINK.append(bytes(4096))

        def test_clean():
            x = [1, 2, 3]
        """,
    )
    result = _run(pytester, "--memleak-all")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_all.py::test_leaky*"])
    tests = _tests(_report(pytester))
    assert {k: v["verdict"] for k, v in tests.items()} == {
        "test_all.py::test_leaky": "leak",
        "test_all.py::test_clean": "ok",
    }
    assert {v["origin"] for v in tests.values()} == {"all"}


def test_memleak_disable_runs_marked_tests_once(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_disabled",
        COUNTER,
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_leaky():
            bump("leaky.count")
            SINK.append(bytes(4096))

        @pytest.mark.memcheck
        def test_clean():
            bump("clean.count")
        """,
    )
    result = _run(pytester, "--memleak-disable", report=None)  # the default report path
    result.assert_outcomes(passed=2)
    assert _count(pytester, "leaky.count") == 1
    assert _count(pytester, "clean.count") == 1
    result.stdout.no_fnmatch_line("*memleak summary*")
    result.stdout.no_fnmatch_line("*JSON report written*")
    assert not (pytester.path / ".memleak" / "report.json").exists()
    assert not list(pytester.path.rglob("*.json"))


# --------------------------------------------------------------------------- outcomes


def test_error_on_a_repeat_is_not_repeatable_and_passes(pytester: pytest.Pytester) -> None:
    """A test that passes once must not fail because it is repeated: a later call that raises
    makes it "not repeatable" (listed, with the reason), not failed."""
    _module(
        pytester,
        "test_error",
        """
        import pytest

        CALLS = 0

        @pytest.mark.memcheck
        def test_boom():
            global CALLS
            CALLS += 1
            if CALLS == 3:
                raise ValueError(f"boom at {CALLS}")
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [
            "memleak: 1 not checked:",
            "  not repeatable: call 3 raised ValueError: boom at 3 (1):",
            "      test_error.py::test_boom",
            "memleak: 0 checked: none; 1 not checked",
        ]
    )
    doc = _report(pytester)
    assert doc["tests"] == []
    assert doc["not_checked"] == [
        {
            "nodeid": "test_error.py::test_boom",
            "kind": "not repeatable",
            "reason": "not repeatable: call 3 raised ValueError: boom at 3",
        }
    ]
    assert doc["summary"]["not_checked"] == 1


def test_error_in_the_first_call_fails_as_a_plain_run_would(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_error",
        """
        import pytest

        @pytest.mark.memcheck
        def test_boom():
            raise ValueError("boom at 1")
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["E * ValueError: boom at 1"])
    result.stdout.fnmatch_lines(["FAILED test_error.py::test_boom - ValueError: boom at 1"])
    doc = _report(pytester)
    t = _tests(doc)["test_error.py::test_boom"]
    assert t["verdict"] == "error"
    assert t["error_iteration"] == 1
    assert t["error"] == "ValueError: boom at 1"
    assert t["partial"] is True
    assert doc["summary"]["error"] == 1


@pytest.mark.parametrize(
    ("at", "outcome"), [(1, "skipped"), (2, "passed")], ids=["first-call", "repeat"]
)
def test_skip_in_an_iteration(pytester: pytest.Pytester, at: int, outcome: str) -> None:
    _module(
        pytester,
        "test_skipping",
        f"""
        import pytest

        CALLS = 0

        @pytest.mark.memcheck
        def test_skips():
            global CALLS
            CALLS += 1
            if CALLS == {at}:
                pytest.skip("skipped at {at}")
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(**{outcome: 1})
    doc = _report(pytester)
    if at == 1:
        result.stdout.fnmatch_lines(["SKIPPED [[]1[]] test_skipping.py:*: skipped at 1"])
        t = _tests(doc)["test_skipping.py::test_skips"]
        assert t["verdict"] == "skipped"
        assert t["error_iteration"] == 1
    else:
        assert [e["reason"] for e in doc["not_checked"]] == [
            "not repeatable: call 2 raised Skipped: skipped at 2"
        ]


def test_unittest_skiptest_in_a_plain_function_is_skipped_not_an_error(
    pytester: pytest.Pytester,
) -> None:
    """pytest reports a plain test function that raises ``unittest.SkipTest`` as skipped
    (freezegun's tests skip so when a locale or an optional library is missing); the report
    named it an error ("SkipTest: ...") and counted it among the errors."""
    _module(
        pytester,
        "test_unittest_skip",
        """
        import unittest

        import pytest

        @pytest.mark.memcheck
        def test_needs_a_locale():
            raise unittest.SkipTest("could not set locale")
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(skipped=1)
    doc = _report(pytester)
    t = _tests(doc)["test_unittest_skip.py::test_needs_a_locale"]
    assert t["verdict"] == "skipped", t
    assert t["error_iteration"] == 1
    assert doc["summary"]["error"] == 0
    assert doc["summary"]["skipped"] == 1


@pytest.mark.parametrize(
    ("at", "outcome"), [(1, "xfailed"), (3, "passed")], ids=["first-call", "repeat"]
)
def test_xfail_in_an_iteration(pytester: pytest.Pytester, at: int, outcome: str) -> None:
    _module(
        pytester,
        "test_xfailing",
        f"""
        import pytest

        CALLS = 0

        @pytest.mark.memcheck
        def test_xfails():
            global CALLS
            CALLS += 1
            if CALLS == {at}:
                pytest.xfail("known at {at}")
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(**{outcome: 1})
    doc = _report(pytester)
    if at == 1:
        assert _tests(doc)["test_xfailing.py::test_xfails"]["verdict"] == "skipped"
    else:
        assert doc["not_checked"][0]["kind"] == "not repeatable"


def test_parametrized_test_has_one_entry_per_param(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_params",
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        @pytest.mark.parametrize("kind", ["clean", "tiny_leak", "temporary"])
        def test_kinds(kind):
            if kind == "tiny_leak":
                SINK.append({})
            elif kind == "temporary":
                x = [bytes(4096) for _ in range(4)]
                del x
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_params.py::test_kinds[[]tiny_leak[]]*"])
    tests = _tests(_report(pytester))
    assert {k: v["verdict"] for k, v in tests.items()} == {
        "test_params.py::test_kinds[clean]": "ok",
        "test_params.py::test_kinds[tiny_leak]": "leak",
        "test_params.py::test_kinds[temporary]": "ok",
    }
    leak = tests["test_params.py::test_kinds[tiny_leak]"]
    assert [f["metric"] for f in leak["findings"] if f["failing"]] == ["py_blocks"]


def test_asyncio_tests(pytester: pytest.Pytester) -> None:
    pytest.importorskip("pytest_asyncio")
    _module(
        pytester,
        "test_aio",
        COUNTER,
        """
        import asyncio
        import pytest

        SINK = []

        @pytest.mark.asyncio
        @pytest.mark.memcheck
        async def test_async_leaky():
            await asyncio.sleep(0)
            SINK.append(bytes(4096))

        @pytest.mark.asyncio
        @pytest.mark.memcheck
        async def test_async_clean():
            bump("aio.count")
            await asyncio.sleep(0)
        """,
    )
    result = _run(pytester, plugins=("asyncio",))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_aio.py::test_async_leaky*"])
    tests = _tests(_report(pytester))
    assert tests["test_aio.py::test_async_leaky"]["verdict"] == "leak"
    clean = tests["test_aio.py::test_async_clean"]
    assert clean["verdict"] == "ok"
    assert _count(pytester, "aio.count") == clean["warmup"] + clean["iterations"] == 7


def test_anyio_tests(pytester: pytest.Pytester) -> None:
    pytest.importorskip("anyio")
    _module(
        pytester,
        "test_anyio_mod",
        """
        import anyio
        import pytest

        SINK = []

        @pytest.fixture
        def anyio_backend():
            return "asyncio"

        @pytest.mark.anyio
        @pytest.mark.memcheck
        async def test_anyio_leaky():
            await anyio.sleep(0)
            SINK.append(bytes(4096))

        @pytest.mark.anyio
        @pytest.mark.memcheck
        async def test_anyio_clean():
            await anyio.sleep(0)
        """,
    )
    result = _run(pytester, plugins=("anyio",))
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines(["FAILED test_anyio_mod.py::test_anyio_leaky*"])
    tests = _tests(_report(pytester))
    assert {k: v["verdict"] for k, v in tests.items()} == {
        "test_anyio_mod.py::test_anyio_leaky": "leak",
        "test_anyio_mod.py::test_anyio_clean": "ok",
    }
    assert tests["test_anyio_mod.py::test_anyio_clean"]["iterations"] == 5


# --------------------------------------------------------------------------- terminal and JSON

SUMMARY_MODULE = """
import pytest

SINK = []

@pytest.mark.memcheck
def test_leaky():
    SINK.append(bytes(4096))

@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]

def test_unchecked():
    pass
"""


def test_terminal_summary(pytester: pytest.Pytester) -> None:
    _module(pytester, "test_term", SUMMARY_MODULE)
    result = _run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    result.stdout.fnmatch_lines(
        [
            "*= memleak summary =*",
            "verdict*test*grew*rate*severity",
            "LEAK * test_term.py::test_leaky * *KiB/iter *",
            "ok * test_term.py::test_clean * - * - * none",
            "memleak: leaks *",
            "  * at test_term.py:*, *KiB/iter, in test_leaky",
            "memleak: 2 checked: 1 leak, 1 ok",
            "memleak: JSON report written to report.json",
        ]
    )
    assert sum("memleak summary" in line for line in result.outlines) == 1
    rows = [line for line in result.outlines if re.match(r"(LEAK|ok)\s+test_term\.py::", line)]
    assert len(rows) == 2, rows  # one row per checked test, none for the unchecked one
    result.stdout.no_fnmatch_line("test_term.py::test_unchecked *")


def test_no_summary_when_nothing_was_checked(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_plain_only",
        """
        SINK = []

        def test_one():
            SINK.append(bytes(4096))

        def test_two():
            pass
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=2)
    result.stdout.no_fnmatch_line("*memleak summary*")
    result.stdout.no_fnmatch_line("*JSON report*")
    assert not (pytester.path / REPORT).exists()


@QUICK_CHECK_SELDOM_DECIDES_ON_39
def test_json_report(pytester: pytest.Pytester) -> None:
    _module(pytester, "test_json", SUMMARY_MODULE)
    result = _run(pytester)
    result.assert_outcomes(passed=2, failed=1)
    doc = _report(pytester)
    assert doc["schema"] == "pytest-memleak/1"
    assert doc["partial"] is False
    assert doc["summary"]["checked"] == 2
    assert doc["summary"]["leak"] == 1
    assert doc["summary"]["ok"] == 1
    assert [t["nodeid"] for t in doc["tests"]] == [
        "test_json.py::test_leaky",
        "test_json.py::test_clean",
    ]
    tests = _tests(doc)
    leaky, clean = tests["test_json.py::test_leaky"], tests["test_json.py::test_clean"]
    assert leaky["verdict"] == "leak"
    assert clean["verdict"] == "ok"
    assert leaky["iterations"] == 10  # growth is confirmed in a second round
    assert clean["iterations"] == 5
    for t in (leaky, clean):
        assert t["warmup"] == 2
        assert t["origin"] == "marker"
        assert t["label"] == ""
        assert t["partial"] is False
        for metric in SNAPSHOT_METRICS:
            series = t["snapshots"][metric]
            assert len(series) == t["iterations"] + 1, (metric, series)
            assert all(isinstance(v, (int, float)) for v in series), (metric, series)
        for metric in GROWTH_METRICS:
            g = t["growth"][metric]
            assert {"slope_per_iter", "total_growth", "pattern", "confidence"} <= set(g)
        assert t["trend"]["health"] in ("healthy", "warning", "critical", "unknown")
    assert leaky["growth"]["malloc"]["pattern"] == "linear"
    assert 4096 <= leaky["growth"]["malloc"]["slope_per_iter"] < 2 * 4096
    assert leaky["message"].startswith("memleak: test_json.py::test_leaky leaks")
    assert clean["message"] == ""
    for metric in ("fds", "threads", "children"):
        assert clean["growth"][metric]["total_growth"] == 0


# --------------------------------------------------------------------------- resources


def test_fd_and_thread_leaks(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_resources",
        """
        import os
        import threading
        import pytest

        FDS = []
        EVENTS = []

        @pytest.mark.memcheck
        def test_fd_leak():
            FDS.append(os.open(os.devnull, os.O_RDONLY))

        @pytest.mark.memcheck
        def test_thread_leak():
            event = threading.Event()
            EVENTS.append(event)
            threading.Thread(target=event.wait, daemon=True).start()

        def teardown_module():
            for event in EVENTS:
                event.set()
            for fd in FDS:
                os.close(fd)
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(["*fds grew +1.00 fds/iter*breaks any confirmed growth*"])
    result.stdout.fnmatch_lines(["*threads grew +1.00 threads/iter*breaks any confirmed growth*"])
    tests = _tests(_report(pytester))
    fd, thread = (
        tests["test_resources.py::test_fd_leak"],
        tests["test_resources.py::test_thread_leak"],
    )
    assert fd["verdict"] == "leak"
    assert thread["verdict"] == "leak"
    assert "fds" in [f["metric"] for f in fd["findings"] if f["failing"]]
    assert "threads" in [f["metric"] for f in thread["findings"] if f["failing"]]
    assert fd["growth"]["fds"]["slope_per_iter"] == pytest.approx(1.0)
    assert thread["growth"]["threads"]["slope_per_iter"] == pytest.approx(1.0)


# ------------------------------------------------------------------ pytest's own bookkeeping


def test_repeated_deprecation_warning_is_no_false_alarm(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_warns",
        """
        import warnings
        import pytest

        @pytest.mark.memcheck
        def test_warns_each_call():
            warnings.warn("old api", DeprecationWarning)
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1, warnings=1)
    result.stdout.fnmatch_lines(
        [
            "*= warnings summary =*",
            "test_warns.py::test_warns_each_call",
            "*DeprecationWarning: old api",
        ]
    )
    assert sum("DeprecationWarning: old api" in line for line in result.outlines) == 1
    t = _tests(_report(pytester))["test_warns.py::test_warns_each_call"]
    assert t["verdict"] == "ok"
    assert t["iterations"] == 5


def test_varying_warning_message_is_no_false_alarm(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_warns_varied",
        """
        import warnings
        import pytest

        CALLS = 0

        @pytest.mark.memcheck
        def test_warns_each_call():
            global CALLS
            CALLS += 1
            warnings.warn(f"call {CALLS}", DeprecationWarning)
        """,
    )
    result = _run(pytester)
    t = _tests(_report(pytester))["test_warns_varied.py::test_warns_each_call"]
    assert t["verdict"] == "ok", t["message"]
    assert result.parseoutcomes().get("passed") == 1


def test_recwarn_and_a_recording_fixture_see_the_bodys_warnings(pytester: pytest.Pytester) -> None:
    """A fixture that records warnings (``recwarn``, or one around
    ``warnings.catch_warnings(record=True)``) is set up before the loop begins: the loop's own
    recorder, entered after it, took the body's warnings from it, and these plain-passing
    tests failed at their first call."""
    _module(
        pytester,
        "test_recorded",
        """
        import warnings
        import pytest

        @pytest.fixture
        def recorded():
            with warnings.catch_warnings(record=True) as log:
                warnings.simplefilter("always")
                yield log

        @pytest.mark.memcheck
        def test_recwarn(recwarn):
            warnings.warn("w", DeprecationWarning)
            assert len(recwarn) == 1

        @pytest.mark.memcheck
        def test_own_recorder(recorded):
            warnings.warn("mine", UserWarning)
            assert [str(w.message) for w in recorded] == ["mine"]

        @pytest.mark.memcheck
        def test_no_recorder():
            warnings.warn("summary", UserWarning)
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=3, warnings=1)
    assert sum("UserWarning: summary" in line for line in result.outlines) == 1
    tests = _tests(_report(pytester))
    for name in ("test_recwarn", "test_own_recorder", "test_no_recorder"):
        t = tests[f"test_recorded.py::{name}"]
        assert t["verdict"] == "ok", t["message"]


def test_logging_each_call_is_no_false_alarm(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_logs",
        """
        import logging
        import pytest

        @pytest.mark.memcheck
        def test_logs_each_call(caplog):
            logging.warning("x")
            assert len(caplog.records) == 1
            assert caplog.records[0].getMessage() == "x"
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(passed=1)
    t = _tests(_report(pytester))["test_logs.py::test_logs_each_call"]
    assert t["verdict"] == "ok"
    assert t["iterations"] == 5
    assert t["error"] is None


@pytest.mark.parametrize("capture", ["sys", "tee-sys", "fd"])
def test_printing_each_call_is_no_false_alarm(pytester: pytest.Pytester, capture: str) -> None:
    """pytest's in-memory capture (``--capture=sys``) grew by what each call printed: a
    200-character print read as a 224 B/call leak. It is rewound before each call, as the log
    capture is, so the captured output is the last call's, once; the same holds for output a
    ``capsys`` fixture leaves unread (its teardown hands it to the run's capture)."""
    _module(
        pytester,
        "test_prints",
        """
        import pytest

        @pytest.mark.memcheck
        def test_prints_each_call():
            print("call output " + "x" * 200)

        @pytest.mark.memcheck
        def test_capsys_left_unread(capsys):
            print("unread " + "z" * 300)
        """,
    )
    result = _run(pytester, f"--capture={capture}", "-rP", fast=False)
    result.assert_outcomes(passed=2)
    tests = _tests(_report(pytester))
    for name in ("test_prints_each_call", "test_capsys_left_unread"):
        t = tests[f"test_prints.py::{name}"]
        assert t["verdict"] == "ok", t["message"]
        assert t["stop_reason"] == "flat", t
    if capture == "sys":  # (fd: in a file, shown whole; tee-sys: also echoed at each call)
        printed = result.stdout.str().count("call output " + "x" * 200)
        assert printed == 1, result.stdout.str()


def test_record_property_and_add_marker_each_call_are_no_false_alarm(
    pytester: pytest.Pytester,
) -> None:
    """``record_property`` and ``request.node.add_marker`` append to the item's own lists:
    repeated, they grew until the item ended and read as leaks. Each call's additions are
    taken back before the next, so the item holds one call's, as without the plugin."""
    _module(
        pytester,
        "test_props",
        """
        import pytest

        @pytest.mark.memcheck
        def test_records_a_property(record_property):
            record_property("answer", "x" * 50)

        @pytest.mark.memcheck
        def test_adds_a_marker(request):
            request.node.add_marker(pytest.mark.skipif(False, reason="never"))
        """,
    )
    result = _run(pytester, "--junitxml=junit.xml", fast=False)
    result.assert_outcomes(passed=2)
    tests = _tests(_report(pytester))
    for name in ("test_records_a_property", "test_adds_a_marker"):
        t = tests[f"test_props.py::{name}"]
        assert t["verdict"] == "ok", t["message"]
    xml = (pytester.path / "junit.xml").read_text()
    assert xml.count('<property name="answer"') == 1, xml


def test_plugin_can_be_disabled_with_p_no(pytester: pytest.Pytester) -> None:
    _module(
        pytester,
        "test_noplugin",
        COUNTER,
        """
        import pytest

        SINK = []

        @pytest.mark.memcheck
        def test_leaky():
            bump("leaky.count")
            SINK.append(bytes(4096))
        """,
    )
    result = _run(pytester, "-p", "no:memleak", fast=False, report=None)
    # The marker is unknown without the plugin: pytest warns about it, which is fine.
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed") == 1
    assert outcomes.get("failed", 0) == 0
    assert _count(pytester, "leaky.count") == 1
    result.stdout.no_fnmatch_line("*memleak summary*")
    assert not list(pytester.path.rglob("*.json"))
    assert result.ret == pytest.ExitCode.OK, _output(result)


def test_marker_help_names_every_marker_key(pytester: pytest.Pytester) -> None:
    from pytest_memleak.settings import MARKER_KEYS

    result = pytester.runpytest("-p", "no:asyncio", "--markers")
    line = next(ln for ln in result.outlines if ln.startswith("@pytest.mark.memcheck"))
    assert [k for k in MARKER_KEYS if k not in line] == []


def test_fixture_ignores_a_bad_marker_when_the_plugin_is_disabled(
    pytester: pytest.Pytester,
) -> None:
    """--memleak-disable checks nothing, so it never fails a session over a marker argument."""
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.memcheck(no_such_key=1)
        def test_measures(memcheck):
            assert memcheck.measure(lambda: None).verdict == "skipped"
        """
    )
    pytester.runpytest("-p", "no:asyncio", "--memleak-disable").assert_outcomes(passed=1)
    result = pytester.runpytest("-p", "no:asyncio")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*memcheck(no_such_key=...)*"])


@QUICK_CHECK_SELDOM_DECIDES_ON_39
def test_quick_check_judges_a_flat_body_after_four_calls_and_lets_growth_through(pytester):
    """At the defaults, a body that leaves every counter where it was is clean after 1 warm-up
    and 3 measured calls (its fixtures set up again before the baseline). A body whose growth
    is small and native (256 B of malloc a call, which glibc's per-thread cache would hide for
    several calls) or which fills a cache on its third call is not judged by the quick check:
    the full warm-up and rounds decide."""
    _module(
        pytester,
        "test_quick",
        COUNTER,
        """
        import ctypes
        import pytest

        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        CACHE = {}

        @pytest.mark.memcheck
        def test_flat():
            bump("flat.count")
            sum(range(10))

        @pytest.mark.memcheck
        def test_small_native_leak():
            libc.malloc(256)

        @pytest.mark.memcheck
        def test_cache_fills_on_the_third_call():
            bump("fills.count")
            if _count_calls() == 3:
                CACHE.update((i, str(i)) for i in range(50))

        def _count_calls():
            with open(pathlib.Path(__file__).with_name("fills.count")) as f:
                return len(f.read().splitlines())
        """,
    )
    _run(pytester, fast=False)
    tests = _tests(_report(pytester))
    flat = tests["test_quick.py::test_flat"]
    assert (flat["verdict"], flat["stop_reason"]) == ("ok", "flat")
    assert (flat["warmup"], flat["iterations"]) == (1, 3)
    assert _count(pytester, "flat.count") == 4
    assert len(flat["snapshots"]["py_blocks"]) == 4

    leak = tests["test_quick.py::test_small_native_leak"]
    assert leak["stop_reason"] != "flat", leak  # the full warm-up and rounds ran
    assert leak["warmup"] > 5
    assert leak["iterations"] >= 10
    assert leak["growth"]["malloc"]["total_growth"] > 0, leak["growth"]["malloc"]

    cache = tests["test_quick.py::test_cache_fills_on_the_third_call"]
    assert cache["verdict"] == "ok", cache["message"]
    assert cache["stop_reason"] != "flat" or cache["warmup"] > 2, cache
    assert _count(pytester, "fills.count") > 5


def test_quick_check_goes_on_when_native_code_moves_malloc_once_and_stops_a_native_leak(pytester):
    """Native code that allocates one chunk once (a library's lazy buffer), or frees one and
    later allocates one again, moves the exact malloc reading by ~600 B and then nothing: the
    quick check goes on, and the body is clean after 5 measured calls instead of running the
    full warm-up and rounds (humanize's freezegun tests did that 165 times in 893). A native
    leak of the same size every call still leaves the quick check and is caught."""
    _module(
        pytester,
        "test_steps",
        """
        import ctypes
        import itertools
        import pytest

        libc = ctypes.CDLL(None)
        libc.malloc.restype = ctypes.c_void_p
        libc.malloc.argtypes = [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]
        ONCE = itertools.count(1)
        WIGGLE = itertools.count(1)
        PTR = (ctypes.c_void_p * 1)()
        PTR[0] = libc.malloc(600)

        @pytest.mark.memcheck
        def test_native_chunk_allocated_once():
            if next(ONCE) == 4:
                libc.malloc(600)  # kept by "the library" for good

        @pytest.mark.memcheck
        def test_native_chunk_freed_and_allocated_again():
            n = next(WIGGLE)
            if n == 4:
                libc.free(PTR[0])
            elif n == 6:
                PTR[0] = libc.malloc(600)

        @pytest.mark.memcheck
        def test_native_leak():
            libc.malloc(600)
        """,
    )
    _run(pytester, fast=False)
    tests = _tests(_report(pytester))
    for name in ("allocated_once", "freed_and_allocated_again"):
        t = tests[f"test_steps.py::test_native_chunk_{name}"]
        # (How many calls it took is checked on scripted probes in test_screen.py: here
        # another chunk freed in the process at the wrong moment can hide this one.)
        assert (t["verdict"], t["stop_reason"]) == ("ok", "flat"), t["message"]
    leak = tests["test_steps.py::test_native_leak"]
    assert leak["verdict"] == "leak", leak["message"]
    assert leak["warmup"] > 2, leak


def test_reports_do_not_keep_the_per_test_data_once_consumed(pytester, leak_and_clean):
    """pytest's terminal reporter keeps every test report to the end of the run. The report
    carries the test's results as JSON data (``report.memleak``, for pytest-xdist) until the
    plugin has read them: kept after that, ~30 KiB a leaking test for nothing."""
    pytester.makeconftest(
        """
        import pytest

        @pytest.hookimpl(trylast=True)
        def pytest_terminal_summary(terminalreporter):
            reports = [r for v in terminalreporter.stats.values() for r in v if hasattr(r, "when")]
            kept = sum(1 for r in reports if getattr(r, "memleak", None) is not None)
            terminalreporter.write_line(f"reports {len(reports)} carrying data {kept}")
        """
    )
    result = _run(pytester)
    result.assert_outcomes(failed=1, passed=1)
    result.stdout.fnmatch_lines(["reports 6 carrying data 0"])
    tests = _tests(_report(pytester))
    assert tests["test_leak_and_clean.py::test_leak"]["verdict"] == "leak"
    assert tests["test_leak_and_clean.py::test_clean"]["verdict"] == "ok"


def test_a_kept_failure_does_not_keep_the_loop_alive(pytester):
    """pytest-rerunfailures and flaky keep each failed call's exception on its item for the
    whole session; its traceback keeps the frames it passed through. The frame that fails a
    leaking test must not hold the loop (its measurements and diagnosis, and the fixture
    cycle): over a run of leaking tests that was ~150 KiB a test, for nothing."""
    pytester.makeconftest(
        """
        import gc
        import pytest

        @pytest.hookimpl(wrapper=True)
        def pytest_runtest_makereport(item, call):
            if call.excinfo is not None:
                item.kept_excinfo = call.excinfo  # as rerunfailures and flaky do
            return (yield)

        def pytest_sessionfinish(session):
            gc.collect()
            from pytest_memleak.runner import Loop
            alive = sum(1 for o in gc.get_objects() if isinstance(o, Loop))
            with open("loops.txt", "w") as f:
                f.write(str(alive))
        """
    )
    _module(
        pytester,
        "test_kept",
        """
        import pytest

        SINK = []

        @pytest.mark.parametrize("n", range(3))
        @pytest.mark.memcheck
        def test_leak(n):
            SINK.append(bytes(4096))
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(failed=3)
    assert (pytester.path / "loops.txt").read_text() == "0"


@QUICK_CHECK_SELDOM_DECIDES_ON_39
def test_the_quick_check_does_not_read_the_main_arena(pytester, run_memleak):
    """Cheap when clean: malloc_main (glibc's malloc_info walk, the dearest probe) is not read
    in the quick check's snapshots, which judge without it; the full rounds read it."""
    pytester.makepyfile(
        test_two="""
        import pytest

        SINK = []

        def test_clean():
            assert sum(range(10)) == 45

        @pytest.mark.memcheck(iterations=6, warmup=2)
        def test_leak():
            SINK.append(bytearray(64 * 1024))
        """
    )
    run = run_memleak("--memleak-all")
    run.result.assert_outcomes(passed=1, failed=1)
    clean, leak = run.test("test_clean"), run.test("test_leak")
    assert clean["stop_reason"] == "flat"
    assert clean["warmup"] + clean["iterations"] == 4
    assert clean["snapshots"]["malloc_main"] == [None] * 4
    assert all(v is not None for v in clean["snapshots"]["malloc"])
    if "malloc_main" not in leak["probe_notes"]:  # glibc's malloc_info is there
        assert all(isinstance(v, float) for v in leak["snapshots"]["malloc_main"]), leak


def test_the_main_arena_is_not_judged_once_threads_share_it(pytester, run_memleak, monkeypatch):
    """Once the process has as many arenas as glibc makes (here 2, by MALLOC_ARENA_MAX), new
    threads share them, the main arena too: its reading no longer shows the main thread's
    own memory. The probe switches off with a note for the rest of the run, and malloc is
    judged alone: a threaded clean test passes, a later leak is still caught."""
    monkeypatch.setenv("MALLOC_ARENA_MAX", "2")
    pytester.makepyfile(
        test_shared="""
        import threading
        import pytest

        SINK = []

        def work(n):
            held = [bytes(200) for _ in range(n)]
            return len(held)

        @pytest.mark.memcheck
        def test_threads_allocate():
            threads = [threading.Thread(target=work, args=(500,)) for _ in range(4)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()

        @pytest.mark.memcheck
        def test_leak_after():
            SINK.append(bytearray(64 * 1024))
        """
    )
    run = run_memleak("-p", "no:randomly")
    run.result.assert_outcomes(passed=1, failed=1)
    threads, leak = run.test("test_threads_allocate"), run.test("test_leak_after")
    assert threads["verdict"] == "ok", threads["findings"]
    assert leak["verdict"] == "leak"
    note = leak["probe_notes"].get("malloc_main", "")
    assert note.startswith("malloc_main: not read from here on"), leak["probe_notes"]
    assert "limit of 2 arenas" in note
    assert leak["snapshots"]["malloc_main"] == [None] * len(leak["snapshots"]["malloc"])


def test_a_run_of_short_series_does_not_import_numpy(pytester, run_memleak):
    """Cheap when clean: a test's series are short, and trend_py analyses them without numpy
    (~0.1 s to import; its ~140 modules slow code that walks sys.modules at every call)."""
    pytester.makeconftest(
        """
        import sys

        def pytest_sessionfinish(session):
            with open("numpy.txt", "w") as f:
                f.write(str("numpy" in sys.modules))
        """
    )
    pytester.makepyfile(
        test_clean="""
        import pytest

        SINK = []

        def test_clean():
            assert sum(range(10)) == 45

        def test_allocates_and_frees():
            data = [bytearray(100_000) for _ in range(20)]
            assert len(data) == 20

        @pytest.mark.memcheck(iterations=8, warmup=2)
        def test_leak():
            SINK.append([0] * 200)
        """
    )
    run = run_memleak("--memleak-all")
    run.result.assert_outcomes(passed=2, failed=1)
    assert run.test("test_clean")["verdict"] == "ok"
    assert run.test("test_leak")["verdict"] == "leak"
    assert run.test("test_leak")["growth"]["py_blocks"]["pattern"] == "linear"
    assert (pytester.path / "numpy.txt").read_text() == "False"


def _record_imports(pytester: pytest.Pytester, prefix: str) -> None:
    """A clean test, and a conftest that writes the modules named ``prefix...`` imported by the
    session's end to loaded.txt."""
    pytester.makeconftest(
        f"""
        import sys

        def pytest_sessionfinish(session):
            loaded = sorted(m for m in sys.modules if m.startswith({prefix!r}))
            with open("loaded.txt", "w") as f:
                f.write(",".join(loaded))
        """
    )
    pytester.makepyfile(
        test_clean="""
        def test_clean():
            assert sum(range(10)) == 45
        """
    )


def test_an_unchecked_run_imports_only_the_plugin_and_its_settings(pytester):
    """Unmarked tests run at no measurable cost: a run that checks nothing imports the hooks,
    the settings and what validates them, not the loop or its helpers. pytest rewrites the
    asserts of every module of a plugin's distribution at import, and where bytecode is not
    written (PYTHONDONTWRITEBYTECODE, common in containers) it does so at every run:
    iteration.py and hygiene.py cost 10 ms of the 38 an unmarked run spent there."""
    _record_imports(pytester, "pytest_memleak.")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    loaded = set((pytester.path / "loaded.txt").read_text().split(","))
    assert not loaded & {
        "pytest_memleak.iteration",
        "pytest_memleak.hygiene",
        "pytest_memleak.runner",
        "pytest_memleak.model",
        "pytest_memleak.probes",
    }, sorted(loaded)
    assert "pytest_memleak.plugin" in loaded


def test_a_clean_run_does_not_import_the_diagnosis(pytester, run_memleak):
    """Cheap when clean: the diagnosis (tracemalloc passes, the C-call profile, the holder
    search) is imported by the first test that leaks, not by a run whose tests are clean."""
    _record_imports(pytester, "pytest_memleak.diagnose")
    run = run_memleak("--memleak-all")
    run.result.assert_outcomes(passed=1)
    assert run.test("test_clean")["verdict"] == "ok"
    assert (pytester.path / "loaded.txt").read_text() == ""
    pytester.makepyfile(
        test_leak="""
        SINK = []

        def test_leak():
            SINK.append([0] * 20)
        """
    )
    run = run_memleak("--memleak-all", "test_leak.py")
    run.result.assert_outcomes(failed=1)
    assert "pytest_memleak.diagnose.passes" in (pytester.path / "loaded.txt").read_text()


@pytest.mark.parametrize(
    "option",
    ["--collect-only", "--setup-plan", "--setup-only", "--fixtures", "--fixtures-per-test"],
)
def test_a_run_of_no_test_body_leaves_the_last_report_and_prints_no_summary(
    pytester: pytest.Pytester, option: str
) -> None:
    """``--co``, ``--fixtures`` and ``--setup-plan`` run no body: the last run's report used to
    be replaced by one with nothing checked and not partial, as if every test were clean."""
    pytester.makepyfile(test_co=SUMMARY_MODULE)
    _run(pytester).assert_outcomes(failed=1, passed=2)
    before = (pytester.path / REPORT).read_bytes()
    assert _tests(json.loads(before))["test_co.py::test_leaky"]["verdict"] == "leak"
    result = _run(pytester, option, "--memleak-all")
    assert result.ret == 0, _output(result)
    assert (pytester.path / REPORT).read_bytes() == before
    assert not any(line.startswith("memleak:") for line in result.outlines), _output(result)
    assert "not checked" not in _output(result)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallinfo2")
def test_leaks_are_caught_through_malloc_under_pythonmalloc_malloc(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With Python's object allocator off, ``py_blocks`` reads 0 and malloc carries the
    leaks. The diagnosis's re-reading began before the state its calls are read in: the
    verdict's garbage and the caches its census filled were freed at its first call, read as
    memory the body freed, and a 640 B/call and a 10 KiB/call leak were judged "not
    confirmed" (the tests passed)."""
    _module(
        pytester,
        "test_pm",
        """
        import itertools
        import pytest

        KEPT = {}
        HELD = []
        _ids = itertools.count()

        @pytest.mark.memcheck
        def test_memo_grows():
            n = next(_ids)
            KEPT[f"req-{n}"] = f"<page of user {n % 100}>" * 8

        @pytest.mark.memcheck
        def test_buffer_kept():
            HELD.append(bytearray(10240))

        @pytest.mark.memcheck
        def test_clean():
            sum(range(100))
        """,
    )
    monkeypatch.setenv("PYTHONMALLOC", "malloc")
    result = _run(pytester, fast=False)
    result.assert_outcomes(failed=2, passed=1)
    tests = _tests(_report(pytester))
    assert "py_blocks" in tests["test_pm.py::test_clean"]["probe_notes"]
    for name in ("test_memo_grows", "test_buffer_kept"):
        t = tests[f"test_pm.py::{name}"]
        assert t["verdict"] == "leak", t["findings"]
        assert [f["metric"] for f in t["findings"] if f["failing"]] == ["malloc"], t["findings"]


def test_an_expected_failure_is_skipped_in_the_report_not_an_error(
    pytester: pytest.Pytester,
) -> None:
    """pytest reports a test marked xfail whose body raises as xfailed; the report called it an
    error of the body and counted it among the errors."""
    _module(
        pytester,
        "test_xf",
        """
        import pytest

        @pytest.mark.memcheck
        @pytest.mark.xfail(reason="known bug")
        def test_marked():
            assert 0

        @pytest.mark.memcheck
        def test_plain_failure():
            assert 0
        """,
    )
    result = _run(pytester)
    result.assert_outcomes(xfailed=1, failed=1)
    doc = _report(pytester)
    tests = _tests(doc)
    assert tests["test_xf.py::test_marked"]["verdict"] == "skipped"
    assert tests["test_xf.py::test_marked"]["error"].startswith("AssertionError")
    assert tests["test_xf.py::test_plain_failure"]["verdict"] == "error"
    assert doc["summary"]["error"] == 1
    assert doc["summary"]["skipped"] == 1
    result.stdout.fnmatch_lines(["memleak: 2 checked: 1 error, 1 skipped"])


def test_capsys_still_captures_the_calls_under_setup_show(pytester: pytest.Pytester) -> None:
    """``--setup-show`` suspends and resumes the run's capture to print each fixture's set-up,
    which put sys.stdout back to the run's stream after a capsys set up again for the next
    call: the test read nothing at its second call and was left "not repeatable"."""
    _module(
        pytester,
        "test_shown",
        """
        import pytest

        @pytest.mark.memcheck
        def test_prints(capsys, tmp_path):
            print("hello out")
            assert capsys.readouterr().out == "hello out\\n"
        """,
    )
    result = _run(pytester, "--setup-show")
    result.assert_outcomes(passed=1)
    assert "not repeatable" not in _output(result)
    assert _tests(_report(pytester))["test_shown.py::test_prints"]["verdict"] == "ok"


def test_the_session_keeps_no_whole_result_once_written(pytester: pytest.Pytester) -> None:
    """Over a long run the session held every test's whole result (its series, the growth of
    every metric, the diagnosis) and its ~12 KB of JSON text to the end: ~60 KB a leaking test
    on 3.13. The text goes to a spool file and the session keeps what its summary reads; the
    report and the HTML page still have everything."""
    pytester.makeconftest(
        """
        import gc
        import json

        import pytest
        from pytest_memleak.model import TestResult
        from pytest_memleak.plugin import plugin_key

        @pytest.hookimpl(tryfirst=True)
        def pytest_sessionfinish(session):
            plugin = session.config.stash[plugin_key]
            gc.collect()
            whole = [
                o for o in gc.get_objects()
                if isinstance(o, TestResult) and (o.diagnosis is not None or o.growth)
            ]

            def strings(value):  # the long strings the plugin's store of JSON texts holds
                if isinstance(value, str):
                    return [value] if len(value) > 1000 else []
                if isinstance(value, dict):
                    value = list(value.values())
                if isinstance(value, (list, tuple)):
                    return [s for v in value for s in strings(v)]
                return []

            texts = strings(list(vars(plugin.encoded).values()))
            with open("held.json", "w") as f:
                json.dump({
                    "results": len(plugin.results),
                    "whole": len(whole),
                    "texts": len(texts),
                    "series": max(len(v) for r in plugin.results for v in r.snapshots.values()),
                }, f)
        """
    )
    _module(
        pytester,
        "test_keep",
        """
        import pytest

        KEPT = []

        @pytest.mark.memcheck
        @pytest.mark.parametrize("i", range(3))
        def test_leaks(i):
            KEPT.append(bytearray(4096))
        """,
    )
    result = _run(pytester, "--memleak-html=page.html")
    result.assert_outcomes(failed=3)
    held = json.loads((pytester.path / "held.json").read_text())
    assert held == {"results": 3, "whole": 0, "texts": 0, "series": 2}, held
    report = json.loads((pytester.path / REPORT).read_text())
    for test in report["tests"]:
        assert test["verdict"] == "leak"
        assert test["diagnosis"] is not None
        assert test["growth"]
        assert test["settings"]
        assert len(test["snapshots"]["rss"]) == test["iterations"] + 1
    page = (pytester.path / "page.html").read_text()
    assert "test_keep.py::test_leaks[2]" in page
    assert "test_keep.KEPT" in page  # the retainer, from the diagnosis read back


def test_garbage_left_between_checked_tests_is_collected(pytester: pytest.Pytester) -> None:
    """Each loop freezes what exists at its start, the garbage earlier tests left included;
    unfrozen, those objects rejoined the oldest generation without counting towards its next
    full collection, so none came: reference cycles left after each test piled up for the
    whole run (58,000 objects after 300 leaking tests on 3.13). The loop now runs the full
    collection the collector owes once the heap grew by a quarter since the last one."""
    pytester.makeconftest(
        """
        import gc
        import json

        import pytest

        class Junk:
            def __init__(self):
                self.me = self  # a reference cycle: only a full collection frees it
                self.payload = [[i] for i in range(300)]

        @pytest.fixture
        def junk():
            yield
            Junk()

        def pytest_sessionfinish(session):
            alive = sum(1 for o in gc.get_objects() if type(o).__name__ == "Junk")
            with open("junk.json", "w") as f:
                json.dump(alive, f)
        """
    )
    _module(
        pytester,
        "test_junk",
        """
        import pytest

        @pytest.mark.parametrize("i", range(120))
        def test_leaves_garbage(junk, i):
            x = [i]
        """,
    )
    _run(pytester, "--memleak-all").assert_outcomes(passed=120)
    alive = json.loads((pytester.path / "junk.json").read_text())
    # Before: one cycle a test, all still there (120); now what a quarter of the heap holds.
    assert alive < 60, alive


def test_a_slow_report_rewrite_is_done_less_often(pytester: pytest.Pytester) -> None:
    """The report is rewritten (marked partial) every few seconds during a run, so that a run
    that dies leaves one; on a long run the report grows (5 KB a clean test) and each rewrite
    takes longer: the next waits at least ten times as long as the last took."""
    pytester.makeconftest(
        """
        import time
        from pytest_memleak import plugin
        from pytest_memleak.render import json_report

        plugin.CHECKPOINT_S = 0.0  # without the share: a rewrite after every test
        WRITES = []
        _write = json_report.write_atomic

        def slow_write(path, report, *args, **kwargs):
            if report.partial:  # the rewrites during the run, not the final report
                WRITES.append(time.monotonic())
                time.sleep(0.1)
            return _write(path, report, *args, **kwargs)

        json_report.write_atomic = slow_write

        def pytest_unconfigure(config):
            with open("writes.txt", "w") as f:
                f.write(str(len(WRITES)))
        """
    )
    _module(
        pytester,
        "test_many",
        """
        import pytest

        @pytest.mark.memcheck
        @pytest.mark.parametrize("i", range(12))
        def test_tiny(i):
            x = [i]
        """,
    )
    _run(pytester).assert_outcomes(passed=12)
    writes = int((pytester.path / "writes.txt").read_text())
    # The first result is written at once; the next rewrite waits ~1 s (10 x 0.1 s), longer
    # than the 12 tests take.
    assert 1 <= writes <= 3, writes
