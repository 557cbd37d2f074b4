"""--memleak-html through the plugin: written beside the JSON, with the baseline comparison."""

from __future__ import annotations

import pytest

FAST = ("--memleak-iterations=6", "--memleak-warmup=1")


def test_html_report_is_written_and_names_the_leak(pytester, run_memleak, leak_and_clean):
    run = run_memleak(*FAST, "--memleak-html=out/report.html")
    run.result.assert_outcomes(passed=1, failed=1)
    run.result.stdout.fnmatch_lines(["memleak: HTML report written to out/report.html"])
    page = (pytester.path / "out" / "report.html").read_text(encoding="utf-8")
    assert page.startswith("<!DOCTYPE html>") or page.lstrip().lower().startswith("<!doctype")
    assert "test_leak_and_clean.py::test_leak" in page
    assert "python_object" in page
    assert "<svg" in page


def test_html_includes_the_baseline_comparison(pytester, run_memleak, leak_and_clean):
    run_memleak(*FAST, "--memleak-save").result.assert_outcomes(passed=1, failed=1)
    run = run_memleak(*FAST, "--memleak-compare=latest", "--memleak-html=r.html")
    page = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "Baseline comparison" in page
    assert run.report["comparison"]["rows"]


def test_unwritable_html_path_is_a_usage_error(pytester, run_memleak, leak_and_clean):
    (pytester.path / "afile").write_text("x", encoding="utf-8")
    run = run_memleak(*FAST, "--memleak-html=afile/r.html")
    assert run.result.ret == pytest.ExitCode.USAGE_ERROR
    assert "afile" in run.output
    assert "--memleak-html" in run.output
    assert "Traceback" not in run.output
