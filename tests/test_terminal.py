"""The terminal summary people read: fits the terminal, each leak's detail once, units per
second for sampled series, and the Markdown summary for CI job pages (issue 13)."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from pytest_memleak.model import Leak, LeakDetails, TestResult
from pytest_memleak.render import terminal

FAST = ("--memleak-iterations=6", "--memleak-warmup=1")

#: A long, parametrized id, a leak in the test module and one in a helper, and a clean test.
MODULE = """
import pytest

KEPT = []

def keep(n):
    KEPT.append(bytearray(n))

@pytest.mark.memcheck
@pytest.mark.parametrize("case", [1], ids=["a-rather-long-parameter-value-" * 4])
def test_a_test_with_a_long_descriptive_name_that_keeps_references(case):
    keep(4096)

@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]
"""


def _section(lines: list[str]) -> list[str]:
    """The memleak summary section of a run's output."""
    start = next(i for i, ln in enumerate(lines) if "memleak summary" in ln)
    end = next(
        (i for i, ln in enumerate(lines[start + 1 :], start + 1) if ln.startswith("====")),
        len(lines),
    )
    return lines[start:end]


@pytest.mark.parametrize("columns", [80, 120])
def test_the_summary_fits_the_terminal(pytester, run_memleak, monkeypatch, columns):
    monkeypatch.setenv("COLUMNS", str(columns))
    pytester.makepyfile(test_fit=MODULE)
    run = run_memleak(*FAST)
    run.result.assert_outcomes(passed=1, failed=1)
    section = _section(run.result.outlines)
    assert [ln for ln in section if len(ln) > columns] == []
    # the id is shortened in the middle: its file and its end stay
    row = next(ln for ln in section if ln.startswith("LEAK"))
    assert "test_fit.py::" in row
    assert "…" in row
    assert row.split()[1].endswith("value-]")


@pytest.mark.parametrize(
    ("ci", "xdist"),
    [(False, False), (True, False), (True, True)],
    ids=["terminal", "CI", "CI-xdist"],
)
def test_each_leak_detail_is_printed_once(pytester, run_memleak, monkeypatch, ci, xdist):
    """Under CI pytest prints the short summary's message whole: it must be one line (it was the
    whole message, so every detail showed twice on CI job logs)."""
    if ci:
        monkeypatch.setenv("CI", "true")
    else:
        monkeypatch.delenv("CI", raising=False)
        monkeypatch.delenv("BUILD_NUMBER", raising=False)
    pytester.makepyfile(test_once=MODULE)
    run = run_memleak(*FAST, *(("-n", "2") if xdist else ()), plugins=("xdist",) if xdist else ())
    out = run.result.outlines
    leak = run.test(
        "test_a_test_with_a_long_descriptive_name_that_keeps_references["
        + "a-rather-long-parameter-value-" * 4
        + "]"
    )["leaks"][0]
    # the detail (held by, fix, evidence) once: in the failure section
    # (the retainer search has a time budget: under load it may find no holder)
    for text in (leak["recommendation"], leak["evidence"][0], leak["retainer_path"]):
        if text:
            assert sum(text[:60] in ln for ln in out) == 1, text
    # the summary points to it with one line, and so does pytest's short test summary
    section = _section(out)
    assert sum(leak["source"] in ln for ln in section) == 1
    [short] = [ln for ln in out if ln.startswith("FAILED ")]
    if ci:  # whole, and one line (elsewhere pytest cuts it to the terminal width)
        assert short.endswith(f" - memleak: python_object at {leak['source']}, 4.1 KiB/iter") or (
            f" - memleak: {leak['type']} at {leak['source']}, " in short
        ), short


def test_wide_table_with_v(pytester, run_memleak):
    pytester.makepyfile(test_wide=MODULE)
    run = run_memleak(*FAST, "-v")
    run.result.stdout.fnmatch_lines(["verdict*test*grew*rate*severity*measured*RSS Δ*health"])
    section = _section(run.result.outlines)
    header = next(ln for ln in section if ln.startswith("verdict"))
    start, end = header.index("external Δ"), header.index("pattern")
    rows = [ln for ln in section if ln.startswith(("LEAK", "ok"))]
    assert rows
    # no bare negative external growth (the heap's may dip: on 3.9 the first call after a
    # baseline frees one of the measuring path's blocks)
    external = [ln[start:end].strip() for ln in rows]
    assert not any(re.match(r"-\d", cell) for cell in external), external


def _result(rss: tuple[float, ...], ext: tuple[float, ...], iterations: int = 10) -> TestResult:
    return TestResult(
        nodeid="t.py::test_x",
        verdict="ok",
        iterations=iterations,
        snapshots={"rss": rss, "external": ext},
    )


def test_external_growth_only_where_it_means_something():
    # RSS did not move, the heap grew: RSS - heap went negative. Not shown as growth.
    assert terminal.row(_result((1e8, 1e8), (5e7, 5e7 - 86_000)), wide=True)[8] == "-"
    # RSS grew well beyond its floor and external memory with it
    assert terminal.row(_result((1e8, 1e8 + 8e6), (5e7, 5e7 + 6e6)), wide=True)[8] == "+5.7 MiB"


def test_a_watched_process_leak_names_what_grew():
    leak = Leak(
        id="L1",
        type="unknown",
        source="pid 42 (python server.py)",
        severity="high",
        estimated_size=None,
        growth_rate=2_097_152.0,
        unit="bytes/s",
        details=LeakDetails(metric="rss"),
    )
    result = TestResult(nodeid="t.py::test_w", verdict="leak", label="watch pid 42", leaks=(leak,))
    assert terminal.leak_line(result, leak) == (
        "  rss growth at pid 42 (python server.py), 2.0 MiB/s, in test_w [watch pid 42]"
    )


def test_shorten_keeps_both_ends():
    assert terminal.shorten("abcdefghij", 10) == "abcdefghij"
    assert terminal.shorten("abcdefghijkl", 7) == "abc…jkl"


def test_step_summary_and_show_markdown_agree(pytester, run_memleak, monkeypatch, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_md=MODULE)
    run = run_memleak(*FAST)
    text = summary.read_text()
    assert text.startswith("earlier step\n## pytest-memleak\n")  # appended, not replaced
    assert "2 tests checked: **1 leaking**, 1 ok" in text
    assert "| test | leak | where | rate | severity |" in text
    assert re.search(r"\| `test_md\.py::test_a_test.*` \| bytearray|\| `test_md.py::", text)
    assert "Full reports: `report.json`" in text
    run.result.stdout.fnmatch_lines([f"memleak: CI summary appended to {summary}"])
    shown = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_memleak",
            "show",
            str(run.report_path),
            "--format",
            "markdown",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert text == "earlier step\n" + shown


def test_a_cause_shared_by_several_tests_is_one_entry(pytester, run_memleak):
    pytester.makepyfile(
        shared_helper="""
        KEPT = []

        def invoke():
            KEPT.append(bytearray(4096))
        """,
        test_shared="""
        import pytest
        import shared_helper

        @pytest.mark.memcheck
        @pytest.mark.parametrize("n", range(4))
        def test_uses_the_helper(n):
            shared_helper.invoke()
        """,
    )
    run = run_memleak(*FAST)
    run.result.assert_outcomes(failed=4)
    [group] = run.report["groups"]
    assert group["count"] == 4
    assert group["source"].startswith("shared_helper.py:")
    section = _section(run.result.outlines)
    entry = [ln for ln in section if ln.startswith("  4 tests: ")]
    assert len(entry) == 1, section
    assert "shared_helper.py:" in entry[0]
    assert any(ln.startswith("      held by: shared_helper.KEPT") for ln in section), section
    # no separate line per test for the grouped leak
    assert not any(ln.startswith("  ") and ", in test_uses_the_helper[" in ln for ln in section)


def test_a_long_run_lists_only_the_tests_that_are_not_plainly_ok(pytester):
    """A run of thousands of checked tests printed a table row for each: beyond 50 results the
    table lists the leaks (and errors, skips) and counts the ok tests it leaves out; -v lists
    every test."""
    pytester.makepyfile(
        """
        import pytest

        KEPT = []

        @pytest.mark.parametrize("i", range(60))
        def test_tiny(i):
            x = [i]

        def test_leaks():
            KEPT.append(bytearray(4096))
        """
    )
    args = ("--memleak-all", "-p", "no:cacheprovider", "--memleak-report=off", "-p", "no:randomly")
    result = pytester.runpytest_subprocess(*args)
    result.assert_outcomes(passed=60, failed=1)
    out = result.stdout.str()
    assert "(60 ok tests not listed: -v lists every test)" in out
    assert "test_tiny[" not in out.split("memleak summary")[1]
    result.stdout.fnmatch_lines(["LEAK *test_leaks*", "memleak: 61 checked: 1 leak, 60 ok"])
    verbose = pytester.runpytest_subprocess(*args, "-v")
    assert "not listed" not in verbose.stdout.str()
    table = verbose.stdout.str().split("memleak summary")[1].splitlines()
    assert sum(line.startswith("ok ") for line in table) == 60, table
