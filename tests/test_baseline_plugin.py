"""Baselines through the plugin: save a run, compare the next one, fail regressions."""

from __future__ import annotations

import json

import pytest

BODY = """
import pytest

SINK = []

@pytest.mark.memcheck(max_rate="1 MiB/iter")
def test_cache():
    SINK.append(bytes({size}))

@pytest.mark.memcheck
def test_{name}():
    x = [1, 2, 3]
"""

FAST = ("--memleak-iterations=6", "--memleak-warmup=1")


def _write(pytester, size: int, name: str = "clean") -> None:
    pytester.makepyfile(test_mod=BODY.format(size=size, name=name))


def test_save_then_compare_fails_the_regressed_test_itself(pytester, run_memleak):
    _write(pytester, 256)
    first = run_memleak(*FAST, "--memleak-save")
    first.result.assert_outcomes(passed=2)  # 256 B/iter is within max_rate
    first.result.stdout.fnmatch_lines(["memleak: run saved to *.memleak/history/*.json"])
    saved = list((pytester.path / ".memleak" / "history").glob("*.json"))
    assert len(saved) == 1

    _write(pytester, 16384, name="renamed_clean")
    second = run_memleak(*FAST, "--memleak-compare=latest", "--memleak-compare-fail=rate:50%")
    # Still within the absolute max_rate, but 64x worse than the baseline: a normal failure.
    second.result.assert_outcomes(passed=1, failed=1)
    assert second.result.ret == 1
    second.result.stdout.fnmatch_lines(
        [
            "*regressed against baseline*",
            "*rate:50% broke*",
            "*memleak comparison against *",
            "*test_cache*regressed*",
        ]
    )
    statuses = {
        row["nodeid"].split("::")[-1]: row["status"] for row in second.report["comparison"]["rows"]
    }
    assert statuses["test_cache"] == "regressed"
    assert statuses["test_renamed_clean"] == "new"
    assert statuses["test_clean"] == "removed"
    # both sides are dated: the new side is this run
    assert second.report["comparison"]["new"]["created"] == second.report["created"]
    assert second.report["comparison"]["old"]["created"]
    entry = second.test("test_cache")
    assert entry["verdict"] == "ok"  # the absolute verdict is unchanged
    assert entry["baseline"]["status"] == "regressed"


def test_compare_without_rule_reports_but_does_not_fail(pytester, run_memleak):
    _write(pytester, 256)
    run_memleak(*FAST, "--memleak-save").result.assert_outcomes(passed=2)
    _write(pytester, 8192)
    run = run_memleak(*FAST, "--memleak-compare=latest")
    run.result.assert_outcomes(passed=2)
    run.result.stdout.fnmatch_lines(["*memleak comparison against*", "*test_cache*"])


@pytest.mark.parametrize("content", ["{not json", json.dumps({"schema": "other-tool/3"}), ""])
def test_corrupt_baseline_is_a_clear_usage_error(pytester, run_memleak, content):
    _write(pytester, 256)
    bad = pytester.path / "base.json"
    bad.write_text(content, encoding="utf-8")
    run = run_memleak(*FAST, f"--memleak-compare={bad}")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "base.json" in run.output
    assert "Traceback" not in run.output
    assert bad.read_text(encoding="utf-8") == content  # nothing overwritten


def test_unknown_baseline_ref_lists_what_exists(pytester, run_memleak):
    _write(pytester, 256)
    run_memleak(*FAST, "--memleak-save")
    run = run_memleak(*FAST, "--memleak-compare=19990101")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "19990101" in run.output
    assert "Traceback" not in run.output


def test_bad_compare_rule_is_a_usage_error(pytester, run_memleak):
    _write(pytester, 256)
    run = run_memleak(*FAST, "--memleak-compare-fail=rate:lots")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "--memleak-compare-fail" in run.output
    assert "rate:lots" in run.output
