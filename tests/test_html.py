"""The HTML report: self-contained, escaped, one memory chart per measured test, every part shown.

A module-scoped fixture runs pytest once in a subprocess on a small module of leaking, clean
and hostile-id tests to get a real report (read back through the one report reader); the rest
uses model objects built here.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import html as html_mod
import json
import os
import re
import subprocess
import sys
import typing
from html.parser import HTMLParser
from importlib import resources
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_memleak import model
from pytest_memleak.baseline import compare_runs, parse_rule
from pytest_memleak.model import (
    Comparison,
    ComparisonRow,
    DiagnosisRecord,
    Environment,
    Finding,
    Growth,
    Leak,
    LeakDetails,
    LeakGroup,
    ProcessInfo,
    RunRef,
    RunReport,
    Summary,
    TestResult,
    Trend,
)
from pytest_memleak.render import html
from pytest_memleak.render.html import charts
from pytest_memleak.render.html.sections import ROWS_PER_CHUNK
from pytest_memleak.render.html.text import NAME_LIMIT, TABLE_NAME_LIMIT
from pytest_memleak.render.json_report import read_report
from pytest_memleak.vocabulary import Pattern

HOSTILE = "<script>alert(1)</script>"
QUOTED = "a \"quoted\" 'x'"

#: Leaking (objects, file descriptors), clean and hostile-id tests.
SAMPLE = f"""
import os

import pytest

SINK = []
FDS = []


@pytest.mark.memcheck
def test_leak():
    SINK.append(bytes(4096))


@pytest.mark.memcheck
def test_fd_leak():
    FDS.append(os.open(os.devnull, os.O_RDONLY))


@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]


@pytest.mark.memcheck
@pytest.mark.parametrize("v", [{HOSTILE!r}, {QUOTED!r}])
def test_param(v):
    SINK.append(v * 500)
"""


def run_report(directory: Path, sample: str = SAMPLE) -> dict[str, Any]:
    """Run ``sample`` under the plugin in a subprocess and return the JSON report it wrote."""
    (directory / "test_sample.py").write_text(sample, encoding="utf-8")
    (directory / "pytest.ini").write_text("[pytest]\n", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:cacheprovider",
            "-q",
            "--memleak-iterations=6",
            "--memleak-warmup=1",
            "--memleak-report=report.json",
        ],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    path = directory / "report.json"
    assert path.is_file(), f"no report written\n{proc.stdout}\n{proc.stderr}"
    return json.loads(path.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def real_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("html_report")


@pytest.fixture(scope="module")
def real_doc(real_dir: Path) -> dict[str, Any]:
    return run_report(real_dir)


@pytest.fixture(scope="module")
def real_report(real_doc: dict[str, Any], real_dir: Path) -> RunReport:
    """The same report, read as the CLI reads it: validated, converted to the model once."""
    return read_report(str(real_dir / "report.json"))


@pytest.fixture(scope="module")
def real_page(real_report: RunReport) -> str:
    return html.render(real_report)


def by_name(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found: list[dict[str, Any]] = [t for t in doc["tests"] if t["nodeid"].endswith("::" + name)]
    assert len(found) == 1, [t["nodeid"] for t in doc["tests"]]
    return found[0]


class TagBalance(HTMLParser):
    """Collects unbalanced tags: a cheap well-formedness check."""

    VOID = frozenset({"meta", "input", "br", "img", "hr", "link", "wbr", "col", "source"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.problems: list[str] = []
        self.handlers: list[str] = []

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.handlers += [f"<{tag} {name}>" for name, _ in attrs if name.startswith("on")]
        if tag not in self.VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if not self.stack or self.stack[-1] != tag:
            self.problems.append(f"</{tag}> closes {self.stack[-1:] or 'nothing'}")
            if tag in self.stack:
                while self.stack and self.stack.pop() != tag:
                    pass
            return
        self.stack.pop()


def assert_well_formed(page: str) -> None:
    parser = TagBalance()
    parser.feed(page)
    parser.close()
    assert not parser.problems, parser.problems[:5]
    assert not parser.stack, parser.stack


def assert_safe(page: str) -> None:
    """Our two inline scripts and nothing else can run; the page is valid UTF-8."""
    page.encode("utf-8")  # strict: no lone surrogates left
    assert len(re.findall(r"<script", page, re.IGNORECASE)) == 2
    assert "innerHTML" not in page
    parser = TagBalance()
    parser.feed(page)
    parser.close()
    assert not parser.handlers, parser.handlers[:5]


# --------------------------------------------------------------------------------------------
# the real report


def test_real_report_is_self_contained(real_page: str) -> None:
    assert real_page.startswith("<!DOCTYPE html>")
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", real_page, re.I)
    assert not re.search(r"<script[^>]*\ssrc", real_page, re.I)
    assert "<link" not in real_page
    assert "@import" not in real_page
    assert "url(" not in real_page
    assert "Content-Security-Policy" in real_page
    assert_safe(real_page)
    assert_well_formed(real_page)


def test_hostile_ids_are_escaped(real_doc: dict[str, Any], real_page: str) -> None:
    ids = [t["nodeid"] for t in real_doc["tests"]]
    assert any(HOSTILE in i for i in ids), ids  # the run really produced the hostile id
    assert HOSTILE not in real_page
    assert html_mod.escape(HOSTILE, quote=True) in real_page
    assert html_mod.escape(QUOTED, quote=True) in real_page
    assert QUOTED not in real_page


def test_one_memory_chart_per_checked_test(real_doc: dict[str, Any], real_page: str) -> None:
    tests = real_doc["tests"]
    assert len(tests) == 5
    assert real_page.count('<svg class="chart memory"') == len(tests)
    # The fd leak's descriptor count changes: it gets a small chart of its own.
    assert real_page.count('<svg class="chart small"') >= 1
    assert "fds: " in real_page


def test_summary_counts_and_leaking_tests_first(real_doc: dict[str, Any], real_page: str) -> None:
    summary = real_doc["summary"]
    for key in ("checked", "ok", "leak", "leaks"):
        m = re.search(rf'<div class="card c-{key}[^"]*"><div class="num">(\d+)<', real_page)
        assert m is not None, key
        assert int(m.group(1)) == summary[key], key
    table = real_page[
        real_page.index('id="tests-table"') : real_page.index(
            "</table>", real_page.index('id="tests-table"')
        )
    ]
    assert table.index("test_fd_leak") < table.index("test_clean")
    assert table.index("::test_leak<") < table.index("test_clean")
    assert by_name(real_doc, "test_leak")["verdict"] == "leak"
    assert by_name(real_doc, "test_clean")["verdict"] == "ok"


def test_leak_fields_are_shown(real_doc: dict[str, Any], real_page: str) -> None:
    leaks = [lk for t in real_doc["tests"] for lk in t["leaks"]]
    assert leaks
    for lk in leaks:
        for key in ("source", "recommendation", "type"):
            assert html.esc(lk[key]) in real_page, (key, lk[key])
        assert html.esc(lk["evidence"][0]) in real_page
        if lk.get("retainer_path"):
            assert html.esc(lk["retainer_path"]) in real_page
    assert '<details class="stack">' in real_page
    assert any(lk["type"] == "file_handle" for lk in leaks)
    assert "Resources left open" in real_page
    assert "/dev/null" in real_page
    assert "Growth pattern by metric" in real_page


def test_comparison_section(real_report: RunReport, real_page: str) -> None:
    assert "Baseline comparison" not in real_page

    def row(nodeid: str, status: str, **over: Any) -> ComparisonRow:
        base = ComparisonRow(nodeid, nodeid, status, old_verdict="leak", new_verdict="leak")
        return dataclasses.replace(base, **over)

    comparison = Comparison(
        baseline="old <report>.json",
        old=RunRef(name="old <report>.json", created="2026-01-01T00:00:00+0000"),
        new=RunRef(name="new.json", created="2026-01-02T00:00:00+0000"),
        rule="rate:10%",
        failed=True,
        rows=(
            row(
                "t.py::test_c",
                "improved",
                old_rate=2048,
                new_rate=1024,
                delta=-1024,
                delta_pct=-50.0,
                reason="halved",
            ),
            row(
                "t.py::test_a",
                "regressed",
                old_rate=1024,
                new_rate=4096,
                delta=3072,
                delta_pct=300.0,
                reason="rate x4",
                failures=("rate:10% broke",),
            ),
            row(
                f"t.py::test_b[{HOSTILE}]",
                "new",
                new_rate=100,
                reason=f"new {HOSTILE}",
                old_nodeid="t.py::test_b_old",
                old_verdict=None,
            ),
            row("t.py::test_d", "removed", old_rate=5, reason="gone", new_verdict=None),
            row(
                "t.py::test_f",
                "fixed",
                old_rate=512,
                new_rate=0,
                delta=-512,
                delta_pct=-100.0,
                new_verdict="ok",
            ),
            row("t.py::test_g", "same", old_rate=0, new_rate=0, delta=0, delta_pct=0.0),
        ),
    )
    page = html.render(dataclasses.replace(real_report, comparison=comparison))
    assert "Baseline comparison" in page
    section = page[page.index('id="comparison"') :]
    for status in ("regressed", "new", "improved", "removed", "fixed", "same"):
        assert f">{status}</span>" in section
    assert section.index("test_a") < section.index("test_c")  # regressions first
    assert "+3.0 KiB/iter (+300%)" in section
    assert "4.0 KiB/iter" in section
    assert "LEAK → ok" in section
    assert "was <code>t.py::test_b_old</code>" in section
    assert "old &lt;report&gt;.json" in section
    assert "FAILED (1 test)" in section
    assert HOSTILE not in page
    assert_safe(page)
    assert_well_formed(page)
    assert "Baseline comparison" in html.render(report(comparison=Comparison()))


def test_comparison_from_the_baseline_module(real_report: RunReport) -> None:
    """The section renders what ``pytest_memleak.baseline`` really produces."""
    old = dataclasses.replace(
        real_report,
        tests=tuple(t for t in real_report.tests if not t.nodeid.endswith("::test_leak")),
    )
    comparison = compare_runs(
        old, real_report.tests, parse_rule("rate:10%"), old_name="old.json", new_name="new.json"
    )
    page = html.render(dataclasses.replace(real_report, comparison=comparison))
    section = page[page.index('id="comparison"') :]
    assert ">new</span>" in section
    assert "old.json" in section
    assert section.count('<tr class="cmp-') == len(real_report.tests)
    assert HOSTILE not in page
    assert_safe(page)
    assert_well_formed(page)


# --------------------------------------------------------------------------------------------
# hand-made reports


def environment(**over: Any) -> Environment:
    env = Environment("3.11.2", "Linux", "0.1.0", "8.3.0", implementation="CPython")
    return dataclasses.replace(env, **over)


def report(*tests: TestResult, **over: Any) -> RunReport:
    return dataclasses.replace(RunReport(environment(), model.summarise(tests), tests), **over)


@pytest.mark.parametrize(
    "empty",
    [
        report(),
        report(schema="", created="", environment=Environment("", "", "", "")),
        report(summary=Summary(checked=0), config={"iterations": 10}),
    ],
    ids=["no-tests", "nothing-set", "summary-only"],
)
def test_empty_reports_render(empty: RunReport) -> None:
    page = html.render(empty)
    assert "No tests were checked" in page
    assert "The report holds no tests." in page
    assert "dataset.status" in page
    assert "dataset.charts" in page
    assert '<svg class="chart' not in page
    assert_safe(page)
    assert_well_formed(page)


def test_a_summary_without_tests_is_trusted() -> None:
    """A trimmed report keeps its counts: the cards and the banner show them."""
    page = html.render(report(summary=Summary(checked=4, ok=1, leak=2, error=1, leaks=3)))
    assert "2 of 4 checked tests leak · 3 leaks found" in page
    assert "<title>2 leaking · pytest-memleak report</title>" in page


def series(n: int, start: float, step: float) -> tuple[float, ...]:
    return tuple(start + k * step for k in range(n))


def growth(metric: str, unit: str, pattern: Pattern, slope: float, total: float) -> Growth:
    return Growth(metric, unit, pattern, slope, 0.0, total, 0.9, 0.01, 0.8, 0.9, 0.99, 0.0, "")


def make_test(nodeid: str, **over: Any) -> TestResult:
    n = 11
    rss = series(n, 50e6, 8192)
    heap = series(n, 30e6, 4096)
    base = TestResult(
        nodeid=nodeid,
        verdict="leak",
        severity="high",
        iterations=10,
        warmup=2,
        rounds=(10,),
        snapshots={
            "t": series(n, 0, 0.01),
            "rss": rss,
            "heap": heap,
            "external": tuple(r - h for r, h in zip(rss, heap)),
            "malloc": heap,
            "py_blocks": series(n, 1000, 1),
            "fds": (5.0,) * n,
            "threads": series(n, 1, 1),
            "children": (0.0,) * n,
        },
        trend=Trend(
            health="warning",
            external_ratio=1.7,
            divergence_start=20e6,
            divergence_end=20.04e6,
            divergence_slope_per_iter=4096.0,
        ),
        growth={
            "rss": growth("rss", "bytes", "linear", 8192.0, 81920.0),
            "fds": growth("fds", "count", "stable", 0.0, 0.0),
        },
        findings=(
            Finding("rss", 8192.0, 8192.0, 1.0, 81920.0, "linear", 0.99, "high", True, "rss grew"),
        ),
    )
    return dataclasses.replace(base, **over)


def test_buffer_native_and_resources_are_listed() -> None:
    leaks = (
        Leak(
            id="L1",
            type="buffer_leak",
            source="mod.py:3",
            severity="medium",
            growth_rate=1600000.0,
            estimated_size=16e6,
            evidence=("numpy buffers",),
            recommendation="drop the array",
            stack_trace=("mod.py:3: BUF.append(np.ones(200_000))",),
        ),
        Leak(
            id="L2",
            type="native_module",
            source="mod.py:9",
            severity="low",
            growth_rate=262144.0,
            estimated_size=None,
            module="zlib",
            details=LeakDetails(
                native=(
                    {
                        "module": "zlib",
                        "category": "compression",
                        "per_iter": 262144.0,
                        "allocations": 6,
                        "frees": 0,
                    },
                    {
                        "module": "numpy",
                        "category": "numeric",
                        "per_iter": 1024.0,
                        "allocations": 6,
                        "frees": 1,
                    },
                )
            ),
            suppressed=True,
            suppressed_by="zlib:*",
        ),
    )
    diagnosis = DiagnosisRecord(
        resources={
            "files": ["/tmp/a <b>.txt"],
            "file_count": 1,
            "sockets": [],
            "socket_count": 0,
            "threads": ["Thread-1 (worker)"],
            "thread_count": 1,
            "children": [],
            "child_count": 0,
        }
    )
    page = html.render(report(make_test("m.py::test_x", leaks=leaks, diagnosis=diagnosis)))
    assert "<h4>Buffer leaks</h4>" in page
    buffers = page[page.index('<ul class="buffers">') :]
    assert "mod.py:3" in buffers[:400]
    assert "1.5 MiB/iter, 15.3 MiB kept over the run" in buffers[:400]
    assert '<svg class="bars"' in page
    assert "compression" in page
    assert "numeric" in page
    assert "suppressed by <code>zlib:*</code>" in page
    assert "/tmp/a &lt;b&gt;.txt" in page
    assert "1 new open files" in page
    assert "Thread-1 (worker)" in page
    assert "warning" in page
    assert "1.70" in page
    # threads change, fds do not: one small chart
    assert page.count('<svg class="chart small"') == 1
    assert "threads: 1 → 11" in page
    assert_safe(page)
    assert_well_formed(page)


def test_native_attribution_from_the_diagnosis() -> None:
    """Malloc growth with no leak located: the diagnosis' modules and lines are shown."""
    diagnosis = DiagnosisRecord(
        modules=(
            {"module": "zlib", "category": "compression", "per_iter": 2048.0},
            {"module": "idle", "per_iter": 0},
        ),
        lines={"malloc": ({"source": "x.py:7", "per_iter": 512.0, "allocations": 4},)},
    )
    finding = Finding("malloc", 2048.0, 2048.0, 1.0, 20480.0, "linear", 0.9, "medium", True, "")
    page = html.render(report(make_test("m.py::t", findings=(finding,), diagnosis=diagnosis)))
    section = page[page.index("<h4>Native attribution</h4>") :]
    assert '<svg class="bars"' in section
    assert ">zlib</text>" in section
    assert "idle" not in section  # no growth: not drawn
    assert "<code>x.py:7</code>" in section
    assert '<td class="num">512 B/iter</td>' in section


# Free text in the model: every ``str`` field, tuple of strings, dict key, and the free-form
# JSON objects. The other fields get a value that shows as much of the page as possible.
_PREFERRED = ("leak", "high", "linear", "native_module")


def hostile(tp: Any, text: str) -> Any:
    """A value of type ``tp`` with ``text`` in every string it holds."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin is typing.Union:
        if {bool, str} <= set(args):  # model.Json
            return text
        return hostile(next(a for a in args if a is not type(None)), text)
    if origin is typing.Literal:
        return next((a for a in _PREFERRED if a in args), args[0])
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        hints = typing.get_type_hints(tp)
        cls: Any = tp
        return cls(**{f.name: hostile(hints[f.name], text) for f in dataclasses.fields(tp)})
    if origin is tuple:
        return (hostile(args[0], text), hostile(args[0], text))
    if origin is dict:
        return {text: hostile(args[1], text)}
    return {str: text, float: 1.0, int: 1, bool: True}[tp]


def test_hostile_strings_everywhere_are_escaped() -> None:
    """Hostile text in every string of the model (see :func:`hostile`), in the free-form
    parts the page reads, and in the keys that pick sections: escaped wherever it shows."""
    evil = f"{HOSTILE}<img src=x onerror=alert(2)>\"'\n\r\t\x00\x1b[31m\u202e\udcff\ufffd"
    long_id = "t.py::test_long[" + "x" * 5000 + evil + "]"
    base = hostile(TestResult, evil)
    leak = hostile(Leak, evil)
    native_row: model.JsonObject = {
        "module": evil,
        "category": evil,
        "per_iter": 5.0,
        "allocations": evil,
    }
    resources = {key: [evil] for key in ("files", "sockets", "threads", "children")}
    diagnosis = dataclasses.replace(
        base.diagnosis,
        resources={**resources, "file_count": 1, evil: evil},
        modules=({**native_row, "per_iter": 9.0},),
        lines={"malloc": ({"source": evil, "per_iter": 8.0, "allocations": evil},)},
    )
    tests = (
        dataclasses.replace(  # a leak table with native bars, a buffer leak
            base,
            nodeid="t.py::test_evil[" + evil + "]",
            leaks=(
                dataclasses.replace(leak, details=LeakDetails(native=(native_row,))),
                dataclasses.replace(leak, type="buffer_leak"),
            ),
            snapshots={**make_test("x").snapshots, evil: (1.0,)},
            growth={
                **base.growth,
                "rss": hostile(Growth, evil),
                "stable " + evil: dataclasses.replace(hostile(Growth, evil), pattern="stable"),
            },
            # a count metric: its rate is shown with the metric's name as the unit
            findings=(dataclasses.replace(base.findings[0], bytes_per_iter=None),),
            screens={**base.screens, "rss": (evil,)},
            diagnosis=diagnosis,
        ),
        dataclasses.replace(  # the diagnosis' native attribution
            base,
            leaks=(dataclasses.replace(leak, suppressed=False, details=LeakDetails()),),
            diagnosis=diagnosis,
        ),
        make_test(long_id),
    )
    comparison = hostile(Comparison, evil)
    comparison = dataclasses.replace(
        comparison,
        rows=(*comparison.rows, dataclasses.replace(comparison.rows[0], old_verdict=None)),
    )
    run = dataclasses.replace(
        hostile(RunReport, evil),
        tests=tests,
        config={evil: evil, "suppress": [evil], "sources": {evil: evil}, "x": {evil: [evil]}},
        comparison=comparison,
    )
    # without the baseline run's name, the comparison names the baseline file instead
    unnamed = dataclasses.replace(comparison, old=RunRef())
    for page in (html.render(run), html.render(dataclasses.replace(run, comparison=unnamed))):
        assert_safe(page)
        assert_well_formed(page)
        assert HOSTILE not in page
        assert "<img" not in page
        assert "\x00" not in page
        assert "\x1b" not in page
        assert "\u202e" not in page
        assert "\\udcff" in page
        assert "\\u202e" in page
        assert html_mod.escape(HOSTILE, quote=True) in page
        parts = ("<h4>Buffer leaks</h4>", "<h4>Native attribution</h4>", 'class="bars"')
        for part in (*parts, "<h2>Leak groups (2)</h2>"):
            assert part in page  # the sections that show free-form text were drawn
        # The long id is cut for display; the title attribute holds all of it, escaped.
        shown = html.esc(long_id, NAME_LIMIT, oneline=True)
        assert shown.endswith("…")
        assert len(html_mod.unescape(shown)) == NAME_LIMIT
        assert f'title="{html.esc(long_id, oneline=True)}"' in page
        assert f">{shown}</span>" in page


def test_missing_and_non_finite_numbers_render() -> None:
    """NaN and infinities (a JSON null reads back as NaN), gaps, huge integers, and free-form
    JSON of any shape: shown as "n/a" or left out, never a crash."""
    nan, inf = float("nan"), float("inf")
    odd = make_test(
        "t.py::test_odd",
        iterations=10**400,
        rounds=(3, 10**400),
        snapshots={
            "rss": (None, nan, inf, 3.0, 7.0),
            "heap": (),
            "external": (None,) * 5,
            "threads": (1.0, nan, 2.0),
        },
        trend=Trend(external_ratio=nan, divergence_start=inf, rss_slope_per_iter=nan),
        findings=(Finding("rss", nan, nan, nan, nan, "linear", nan, "low", True, ""),),
        growth={"rss": growth("rss", "bytes", "linear", nan, inf)},
        leaks=(
            Leak(
                "L1",
                "native_module",
                "x.py:1",
                "low",
                estimated_size=inf,
                growth_rate=nan,
                confidence=nan,
                details=LeakDetails(native=({"per_iter": "fast"}, {"module": None, "per_iter": 1})),
            ),
        ),
        diagnosis=DiagnosisRecord(resources={"files": "none", "thread_count": [1]}),
    )
    page = html.render(report(odd, make_test("t.py::ok", verdict="ok")))
    assert_safe(page)
    assert_well_formed(page)
    assert page.count('<svg class="chart memory"') == 2
    assert "n/a" in page
    assert "nan" not in page.lower().replace("nanos", "")
    assert "inf B" not in page


def test_error_and_skipped_tests() -> None:
    err = make_test(
        "t.py::test_err",
        verdict="error",
        severity="none",
        snapshots={},
        error="ValueError: boom <b>",
        error_iteration=3,
        partial=True,
    )
    skip = make_test("t.py::test_skip", verdict="skipped", severity="none", snapshots={})
    page = html.render(report(skip, err))
    assert "ValueError: boom &lt;b&gt;" in page
    assert "iteration 3" in page
    assert "No measurements were recorded." in page
    assert '<svg class="chart' not in page
    assert page.index('id="t1"') < page.index('id="t0"')  # error before skipped
    assert "could not be measured" in page


def test_memory_chart_edge_cases() -> None:
    svg = charts.memory_chart([1e6, None, 1.2e6, 1.3e6], [5e5, 5e5, None, 6e5], [])
    rss_path = re.search(r'class="line rss" d="([^"]+)"', svg)
    assert rss_path is not None
    assert rss_path.group(1).count("M") == 2
    assert '<svg class="chart memory"' in charts.memory_chart([1e6], [5e5], [])
    flat = charts.memory_chart([1e6] * 5, [5e5] * 5, [])
    assert "no change in memory" in flat
    assert charts.memory_chart([None, None], [], []) == ""
    big = charts.memory_chart(series(5000, 1e8, 1024.0), series(5000, 5e7, 512.0), [])
    assert big.count("<rect x=") <= charts.MAX_POINTS + 2  # thinned


def test_byte_axis_labels() -> None:
    svg = charts.memory_chart(series(21, 58e6, 4144.0), series(21, 31e6, 4144.0), [])
    group = re.search(r'<g class="ylab">(.*?)</g>', svg)
    assert group is not None
    labels = re.findall(r"<text[^>]*>([^<]+)</text>", group.group(1))
    assert "0" in labels, labels
    assert "+80 KiB" in labels, labels
    assert charts.ticks(0, 82.9)[-1] >= 82.9


def test_inline_scripts_are_allowed_by_the_csp(real_page: str) -> None:
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', real_page)
    assert csp is not None
    policy = csp.group(1)
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1]
    for script in re.findall(r"<script>(.*?)</script>", real_page, re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy


def test_style_and_scripts_are_the_package_files(real_page: str) -> None:
    """The page inlines the shipped style.css, errors.js and main.js."""
    files = resources.files("pytest_memleak.render.html")
    style = (files / "style.css").read_text(encoding="utf-8")
    scripts = [(files / n).read_text(encoding="utf-8").rstrip() for n in ("errors.js", "main.js")]
    assert f"<style>\n{style}</style>" in real_page
    assert re.findall(r"<script>(.*?)</script>", real_page, re.S) == scripts


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.text(min_size=1, max_size=150), other=st.text(max_size=50))
def test_any_text_is_escaped(raw: str, other: str) -> None:
    text = f"QSTARTQ{raw}QENDQ"
    leak = Leak(
        id="L1",
        type="python_object",
        source=text,
        severity="low",
        estimated_size=None,
        growth_rate=1.0,
        evidence=(text,),
        recommendation=other,
        stack_trace=(text,),
        retainer_path=text,
    )
    test = make_test(
        "t.py::test[" + text + "]", label=other, leaks=(leak,), message=text, error=text
    )
    row = ComparisonRow(key=text, nodeid=text, status=other, reason=text)
    page = html.render(
        report(
            test,
            environment=environment(argv=(text,)),
            comparison=Comparison(rows=(row,)),
        )
    )
    assert_safe(page)
    assert_well_formed(page)
    # a name cut short at NAME_LIMIT loses its end marker: a segment never spans two starts
    shown = re.findall(r"QSTARTQ((?:(?!QSTARTQ).)*?)QENDQ", page, re.S)
    assert len(shown) >= 8
    for segment in shown:
        assert not set(segment) & set("<>\"'"), segment


# --------------------------------------------------------------------------------------------
# soak and watch: rates per second, points are samples


def section_of(page: str, index: int) -> str:
    """The HTML of the test section ``t{index}`` (its ``<details>`` element)."""
    start = page.index(f'id="t{index}"')
    return page[start : page.index("</details>", page.index("</summary>", start))]


def row_of(page: str, index: int) -> str:
    """The tests table's row that links to section ``t{index}``."""
    link = page.index(f'<a href="#t{index}">')
    return page[page.rindex("<tr", 0, link) : page.index("</tr>", link)]


def sampled_test(mode: str = "soak", n: int = 30) -> TestResult:
    """A soak (or a watch) as ``soak.build_result`` makes it: rss 2.5 MiB/s over 2.9 s, fds
    +10/s, py_blocks +3000/s (samples every 0.1 s)."""
    rss = tuple(50e6 + k * 262144.0 for k in range(n))
    fds = tuple(10.0 + k for k in range(n))
    process = (
        ProcessInfo(pid=4242, cmdline="python server.py --port 0") if mode == "watch" else None
    )
    where = "pid 4242" if process else "t.py::test_s"

    def finding(metric: str, per_s: float, total: float, severity: Any) -> Finding:
        reason = f"{metric} grew; pattern linear"
        return Finding(
            metric, per_s / 10, None, per_s, total, "linear", 1.0, severity, True, reason
        )

    return TestResult(
        nodeid="t.py::test_s",
        label="watch pid 4242" if process else "",
        origin="watch" if process else "marker",
        verdict="leak",
        severity="critical",
        iterations=n,
        duration_s=2.9,
        stop_reason="confirmed growth",
        snapshots={"t": tuple(k * 0.1 for k in range(n)), "rss": rss, "fds": fds},
        growth={
            "rss": Growth("rss", "bytes", "linear", 262144.0, 2621440.0, 7602176.0, *[0.9] * 6, ""),
            "fds": Growth("fds", "count", "linear", 1.0, 10.0, 29.0, *[0.9] * 6, ""),
            "py_blocks": Growth(
                "py_blocks", "count", "linear", 300.0, 3000.0, 8700.0, *[0.9] * 6, ""
            ),
        },
        findings=(
            finding("rss", 2621440.0, 7602176.0, "critical"),
            finding("py_blocks", 3000.0, 8700.0, "critical"),
            finding("fds", 10.0, 29.0, "high"),
        ),
        leaks=(
            Leak("L1", "unknown", where, "critical", 7602176.0, 2621440.0, unit="bytes/s"),
            Leak("L2", "file_handle", where, "high", None, 10.0, unit="fds/s"),
            Leak("L3", "file_handle", where, "high", 29.0, 10.0, unit="fds/s"),
        ),
        trend=Trend(
            mode=mode,
            samples=n,
            interval_s=0.1,
            judged_samples=n,
            interval_achieved_s=0.13,
            sampler_cpu_s=0.02,
            process=process,
        ),
    )


@pytest.mark.parametrize("mode", ["soak", "watch"])
def test_soak_and_watch_rates_are_per_second(mode: str) -> None:
    page = html.render(report(sampled_test(mode), make_test("t.py::test_loop")))
    row, section = row_of(page, 0), section_of(page, 0)
    for text in (row, section):
        assert "/iter" not in text
        assert "bytes/s" not in text  # bytes per second read as sizes per second
        assert "iteration" not in text
    assert "2.5 MiB/s" in row  # the rss finding: its per-second rate
    assert ">30 samples<" in row
    assert "rss by sample" in row
    assert ">-<" in row  # a soak has no health (no heap to compare RSS with)
    # the leaks: rates per second, the estimated size a size, counts per second
    leaks = section[section.index('<table class="grid leaks">') :]
    assert '<td class="num">2.5 MiB/s</td><td class="num">7.2 MiB</td>' in leaks
    assert '<td class="num">+10.00 fds/s</td><td class="num">n/a</td>' in leaks
    assert '<td class="num">+10.00 fds/s</td><td class="num">29 fds</td>' in leaks
    # growth by metric: slopes per second
    growth = section[section.index('<table class="grid growth">') :]
    assert '<td class="num">2.5 MiB/s</td><td class="num">+7.2 MiB</td>' in growth
    assert '<td class="num">+3000.00 blocks/s</td>' in growth
    assert '<td class="num">+10.00 fds/s</td>' in growth
    # the facts name the sampling, and the chart's points are samples
    assert "30 samples every 100 ms (achieved 130 ms)" in section
    assert "sampler CPU 20 ms" in section
    assert 'class="axtitle"' in section
    assert ">sample</text>" in section
    assert "<title>sample 29\n" in section  # the hover names the sample
    assert "round 2" not in section
    if mode == "watch":
        assert "watched process 4242: <code>python server.py --port 0</code>" in section
    # the repeat loop beside it keeps its units
    loop = row_of(page, 1)
    assert "8.0 KiB/iter" in loop
    assert ">10<" in loop
    assert_safe(page)
    assert_well_formed(page)


def test_loop_rates_and_sizes_use_the_one_formatter() -> None:
    """Per-iteration rates: bytes as sizes, counts with their unit, an fd leak's estimate a
    count of fds; nothing says "bytes/iter"."""
    fd_leak = Leak("L1", "file_handle", "t.py:3", "high", 20.0, 1.0, unit="fds")
    blocks = Finding("py_blocks", 2.0, None, 0.0, 20.0, "linear", 0.9, "low", True, "")
    page = html.render(report(make_test("t.py::t", leaks=(fd_leak,), findings=(blocks,))))
    assert '<td class="num">+1.00 fds/iter</td><td class="num">20 fds</td>' in page
    assert '<td class="num">+2.00 blocks/iter</td>' in row_of(page, 0)
    assert "bytes/iter" not in page
    assert "/s/" not in page


def test_a_watched_server_reads_per_second(pytester: pytest.Pytester, run_memleak: Any) -> None:
    """The example server watched under load (``examples/server``), through the plugin with
    --memleak-html: the page shows per-second rates, samples, and a size for the estimate."""
    example = Path(__file__).resolve().parent.parent / "examples" / "server"
    for name in ("leaky_server.py", "test_server_watch.py"):
        (pytester.path / name).write_text((example / name).read_text(encoding="utf-8"))
    run = run_memleak("--memleak-html=r.html")
    assert run.report is not None, run.output
    modes = {t["trend"].get("mode") for t in run.report["tests"]}
    assert modes == {"watch"}, modes
    leaking = next(
        t for t in run.report["tests"] if t["nodeid"].endswith("::test_leaking_endpoint")
    )
    assert leaking["verdict"] == "leak", leaking["message"]
    # the same per-second units in the terminal and the JSON
    assert {lk["unit"] for lk in leaking["leaks"]} <= {
        "bytes/s",
        "fds/s",
        "threads/s",
        "children/s",
    }
    [row] = [ln for ln in run.result.outlines if ln.startswith("LEAK ")]  # the table's row
    assert re.search(r"\d (B|KiB|MiB|GiB)/s\b", row), row
    assert "/iter" not in row
    page = (pytester.path / "r.html").read_text(encoding="utf-8")
    assert "/s/iter" not in page
    assert "bytes/s" not in page
    assert "/iter" not in page.split('<div id="details">')[0].split('id="tests-table"')[1]
    leaks = page[page.index('<table class="grid leaks">') :]
    rate, est = re.search(
        r'<td class="num">([^<]*)</td><td class="num">([^<]*)</td><td><span class="badge sev',
        leaks,
    ).groups()  # type: ignore[union-attr]
    assert re.fullmatch(r"[\d.]+ (B|KiB|MiB|GiB)/s", rate), rate
    assert re.fullmatch(r"[\d.]+ (B|KiB|MiB|GiB)", est), est
    assert re.search(r">\d+ samples<", page)
    assert re.search(r"\d+ samples every 20 ms", page)
    assert "watched process " in page
    assert ">sample</text>" in page
    assert_safe(page)
    assert_well_formed(page)


# --------------------------------------------------------------------------------------------
# a large run: lazy sections, a table in chunks


def test_clean_sections_are_lazy_and_every_test_is_reachable() -> None:
    clean = [make_test(f"t.py::test_ok_{k}", verdict="ok", severity="none") for k in range(3)]
    skipped = make_test("t.py::test_skip", verdict="skipped", severity="none", snapshots={})
    err = make_test("t.py::test_err", verdict="error", severity="none", error="boom")
    tests = (*clean, make_test("t.py::test_leak"), skipped, err)
    page = html.render(report(*tests))
    for i, t in enumerate(tests):
        section = section_of(page, i)
        assert f'<a href="#t{i}">' in page  # linked from the table
        if t.verdict in ("leak", "error"):
            assert f'id="t{i}" open>' in page
            assert "<template>" not in section
            assert '<svg class="chart memory"' in section
            assert charts.BAND_NOTE in section
        else:
            assert f'id="t{i}">' in page
            body = section[section.index("</summary>") :]
            assert body.startswith('</summary><template><div class="tbody">')
            assert body.endswith("</div></template>")
            if t.snapshots:
                assert '<svg class="chart memory"' in body  # drawn when opened
                assert charts.BAND_NOTE not in body  # said once, above the sections
    assert page.count(charts.BAND_NOTE) == 3  # above the sections, and the two open ones
    assert page.count("<template>") == 4
    assert "dataset.lazy" in page
    assert "importNode" in page
    assert_safe(page)
    assert_well_formed(page)


def test_a_thousand_tests() -> None:
    """1,000 tests: the table in chunks of ROWS_PER_CHUNK rows (column widths fixed), the
    header row once, every row linked to its section, one eager section. The page of these
    11-point tests takes 6.8 KB a test (8.7 KB before the lazy sections): kept under 7 KB."""
    tests = [
        make_test(f"t.py::test_{k}", verdict="ok", severity="none", findings=(), leaks=())
        for k in range(1000)
    ]
    tests[7] = make_test("t.py::test_7")
    page = html.render(report(*tests))
    assert page.count('<div class="chunk"><table class="tests">') == 1000 // ROWS_PER_CHUNK
    assert page.count("<colgroup>") == 1000 // ROWS_PER_CHUNK
    assert page.count("<thead><tr><th>verdict</th>") == 1
    assert page.count('<tr class="v-') == 1000
    assert len(set(re.findall(r'<a href="#(t\d+)">', page))) == 1000
    assert len(set(re.findall(r'<details class="test [^"]*" id="(t\d+)"', page))) == 1000
    assert page.count("<template>") == 999
    assert page.index('id="t7" open>') < page.index('id="t0">')  # the leak first
    assert len(page.encode()) / 1000 < 7000, len(page.encode())


def test_long_names_are_cut_in_the_middle_in_the_table() -> None:
    nodeid = "tests/test_x.py::test_long[" + "a" * 150 + "-" + "z" * 150 + "]"
    page = html.render(report(make_test(nodeid)))
    row = row_of(page, 0)
    shown = re.search(r'<span class="tname" title="([^"]+)">([^<]+)</span>', row)
    assert shown is not None
    assert shown.group(1) == nodeid
    text = shown.group(2)
    assert len(text) == TABLE_NAME_LIMIT
    assert text.startswith("tests/test_x.py::test_long[aaa")
    assert text.endswith("zzz]")
    assert "…" in text
    assert 'class="tname">t.py::short<' in html.render(report(make_test("t.py::short")))


# --------------------------------------------------------------------------------------------
# leak groups


def test_leak_groups_section() -> None:
    tests = (
        make_test("t.py::test_a"),
        make_test("t.py::test_b", label="block"),
        make_test(f"t.py::test_c[{HOSTILE}]"),
    )
    groups = (
        LeakGroup(
            fingerprint="abc123",
            type="python_object",
            source="app/cache.py:12",
            count=5,
            tests=(
                "t.py::test_a",
                "t.py::test_b::block",
                f"t.py::test_c[{HOSTILE}]",
                "t.py::test_d",
                "t.py::test_e",
            ),
            holder=f"app.cache.CACHE (dict) -> [{HOSTILE}]",
            allocated_in="site-packages/lib/x.py:4",
            rate_min=1024.0,
            rate_max=4096.0,
        ),
        LeakGroup(
            fingerprint="def456",
            type="file_handle",
            source="app/files.py:3",
            count=2,
            tests=("t.py::gone_1", "t.py::gone_2"),
            rate_min=1.0,
            rate_max=1.0,
            unit="fds",
        ),
    )
    page = html.render(report(*tests, groups=groups))
    section = page[page.index('<section id="groups">') : page.index('<section id="tests">')]
    assert "<h2>Leak groups (2)</h2>" in section
    rows = section.split("<tr>")[2:]
    assert len(rows) == 2
    first, second = rows
    assert '<td class="num">5</td>' in first
    assert "lt-python_object" in first
    assert "<code>app/cache.py:12</code>" in first
    assert "in <code>site-packages/lib/x.py:4</code>" in first
    assert html_mod.escape(HOSTILE) in first
    assert "1.0 KiB/iter to 4.0 KiB/iter" in first
    assert '<a href="#t0"><span class="tname">t.py::test_a</span></a>' in first
    assert '<a href="#t1"><span class="tname">t.py::test_b [block]</span></a>' in first
    assert '<a href="#t2">' in first
    assert "… 2 more" in first
    assert "test_d" not in first
    assert "+1.00 fds/iter" in second
    assert '<span class="tname">t.py::gone_1</span>' in second  # no section: not linked
    assert '<td class="held">-</td>' in second
    assert HOSTILE not in page
    assert_safe(page)
    assert_well_formed(page)
    for none in (None, ()):
        assert 'id="groups"' not in html.render(report(*tests, groups=none))


# --------------------------------------------------------------------------------------------
# write


def test_write_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "sub" / "report.html"
    html.write(target, "<p>one \udcff é</p>")
    assert target.read_text(encoding="utf-8") == "<p>one \\udcff é</p>"
    html.write(str(target), "<p>two</p>")
    assert target.read_text(encoding="utf-8") == "<p>two</p>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]

    def broken(src: str, dst: str) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        html.write(target, "<p>three</p>")
    assert target.read_text(encoding="utf-8") == "<p>two</p>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
