"""The HTML report: self-contained, escaped, one memory chart per measured test, every part shown.

A module-scoped fixture runs pytest once in a subprocess on a small module of leaking, clean
and hostile-id tests to get a real report; the rest uses hand-made dictionaries.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import html as html_mod
import json
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_memleak.render import html

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
def real_doc(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return run_report(tmp_path_factory.mktemp("html_report"))


@pytest.fixture(scope="module")
def real_page(real_doc: dict[str, Any]) -> str:
    return html.render(real_doc)


def by_name(doc: dict[str, Any], name: str) -> dict[str, Any]:
    found = [t for t in doc["tests"] if t["nodeid"].endswith("::" + name)]
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


def test_comparison_section(real_doc: dict[str, Any], real_page: str) -> None:
    assert "Baseline comparison" not in real_page
    row = {"label": "", "old_verdict": "leak", "new_verdict": "leak", "failures": []}
    comparison = {
        "baseline": "old <report>.json",
        "old": {"name": "old <report>.json", "created": "2026-01-01T00:00:00+0000"},
        "new": {"name": "new.json", "created": "2026-01-02T00:00:00+0000"},
        "rule": "rate:10%",
        "failed": True,
        "rows": [
            {
                **row,
                "nodeid": "t.py::test_c",
                "status": "improved",
                "old_rate": 2048,
                "new_rate": 1024,
                "delta": -1024,
                "delta_pct": -50.0,
                "reason": "halved",
            },
            {
                **row,
                "nodeid": "t.py::test_a",
                "status": "regressed",
                "old_rate": 1024,
                "new_rate": 4096,
                "delta": 3072,
                "delta_pct": 300.0,
                "reason": "rate x4",
                "failures": ["rate:10% broke"],
            },
            {
                **row,
                "nodeid": f"t.py::test_b[{HOSTILE}]",
                "status": "new",
                "old_rate": None,
                "new_rate": 100,
                "delta": None,
                "delta_pct": None,
                "reason": f"new {HOSTILE}",
                "old_nodeid": "t.py::test_b_old",
                "old_verdict": None,
            },
            {
                **row,
                "nodeid": "t.py::test_d",
                "status": "removed",
                "old_rate": 5,
                "new_rate": None,
                "reason": "gone",
                "new_verdict": None,
            },
            {
                **row,
                "nodeid": "t.py::test_f",
                "status": "fixed",
                "old_rate": 512,
                "new_rate": 0,
                "delta": -512,
                "delta_pct": -100.0,
                "new_verdict": "ok",
            },
            {
                **row,
                "nodeid": "t.py::test_g",
                "status": "same",
                "old_rate": 0,
                "new_rate": 0,
                "delta": 0,
                "delta_pct": 0.0,
                "reason": "",
            },
        ],
    }
    page = html.render(real_doc, comparison)
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
    assert "Baseline comparison" in html.render({}, {"rows": []})


def test_comparison_from_the_baseline_module(real_doc: dict[str, Any]) -> None:
    """The section renders what ``pytest_memleak.baseline`` really produces."""
    baseline = pytest.importorskip("pytest_memleak.baseline")
    old = copy.deepcopy(real_doc)
    old["tests"] = [t for t in old["tests"] if not t["nodeid"].endswith("::test_leak")]
    comparison = baseline.compare_docs(old, real_doc, old_name="old.json", new_name="new.json")
    page = html.render(real_doc, comparison.to_dict())
    section = page[page.index('id="comparison"') :]
    assert ">new</span>" in section
    assert "old.json" in section
    assert section.count('<tr class="cmp-') == len(real_doc["tests"])
    assert HOSTILE not in page
    assert_safe(page)
    assert_well_formed(page)


# --------------------------------------------------------------------------------------------
# hand-made documents


@pytest.mark.parametrize(
    "doc",
    [
        {},
        {"tests": []},
        {"schema": "pytest-memleak/1", "tests": [], "summary": {"checked": 0}},
        {"tests": None, "environment": None, "config": "x"},
    ],
    ids=["no-keys", "no-tests", "summary-only", "wrong-types"],
)
def test_empty_documents_render(doc: dict[str, Any]) -> None:
    page = html.render(doc)
    assert "No tests were checked" in page
    assert "dataset.status" in page
    assert "dataset.charts" in page
    assert '<svg class="chart' not in page
    assert_safe(page)
    assert_well_formed(page)


def series(n: int, start: float, step: float) -> list[float]:
    return [start + k * step for k in range(n)]


def make_test(nodeid: str, **over: Any) -> dict[str, Any]:
    n = 11
    rss = series(n, 50e6, 8192)
    heap = series(n, 30e6, 4096)
    t: dict[str, Any] = {
        "nodeid": nodeid,
        "label": "",
        "verdict": "leak",
        "severity": "high",
        "iterations": 10,
        "warmup": 2,
        "partial": False,
        "rounds": [10],
        "snapshots": {
            "t": series(n, 0, 0.01),
            "rss": rss,
            "heap": heap,
            "external": [r - h for r, h in zip(rss, heap)],
            "malloc": heap,
            "py_blocks": series(n, 1000, 1),
            "fds": [5] * n,
            "threads": series(n, 1, 1),
            "children": [0] * n,
        },
        "trend": {
            "health": "warning",
            "external_ratio": 1.7,
            "divergence_start": 20e6,
            "divergence_end": 20.04e6,
            "divergence_slope_per_iter": 4096.0,
        },
        "growth": {
            "rss": {
                "metric": "rss",
                "unit": "bytes",
                "pattern": "linear",
                "slope_per_iter": 8192.0,
                "total_growth": 81920.0,
                "confidence": 0.99,
            },
            "fds": {
                "metric": "fds",
                "unit": "count",
                "pattern": "stable",
                "slope_per_iter": 0.0,
                "total_growth": 0.0,
                "confidence": 0.0,
            },
        },
        "findings": [
            {
                "metric": "rss",
                "rate_per_iter": 8192.0,
                "bytes_per_iter": 8192.0,
                "total": 81920.0,
                "pattern": "linear",
                "confidence": 0.99,
                "severity": "high",
                "failing": True,
                "reason": "rss grew",
            }
        ],
        "leaks": [],
        "diagnosis": None,
    }
    t.update(over)
    return t


def test_buffer_native_and_resources_are_listed() -> None:
    leaks = [
        {
            "id": "L1",
            "type": "buffer_leak",
            "source": "mod.py:3",
            "severity": "medium",
            "growth_rate": 1600000.0,
            "unit": "bytes",
            "estimated_size": 16e6,
            "evidence": ["numpy buffers"],
            "recommendation": "drop the array",
            "stack_trace": ["mod.py:3: BUF.append(np.ones(200_000))"],
        },
        {
            "id": "L2",
            "type": "native_module",
            "source": "mod.py:9",
            "severity": "low",
            "growth_rate": 262144.0,
            "unit": "bytes",
            "module": "zlib",
            "details": {
                "native": [
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
                ]
            },
            "suppressed": True,
            "suppressed_by": "zlib:*",
        },
    ]
    diagnosis = {
        "resources": {
            "files": ["/tmp/a <b>.txt"],
            "file_count": 1,
            "sockets": [],
            "socket_count": 0,
            "threads": ["Thread-1 (worker)"],
            "thread_count": 1,
            "children": [],
            "child_count": 0,
        }
    }
    page = html.render({"tests": [make_test("m.py::test_x", leaks=leaks, diagnosis=diagnosis)]})
    assert "<h4>Buffer leaks</h4>" in page
    buffers = page[page.index('<ul class="buffers">') :]
    assert "mod.py:3" in buffers[:400]
    assert "+1.5 MiB/iter" in buffers[:400]
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


def test_hostile_strings_everywhere_are_escaped() -> None:
    evil = f"{HOSTILE}<img src=x onerror=alert(2)>\"'\n\r\t\x00\x1b[31m\u202e\udcff\ufffd"
    long_id = "t.py::test_long[" + "x" * 5000 + evil + "]"
    leak = {
        "id": evil,
        "type": evil,
        "source": evil,
        "severity": evil,
        "growth_rate": 1.0,
        "unit": evil,
        "estimated_size": 10.0,
        "evidence": [evil, None],
        "recommendation": evil,
        "stack_trace": [evil, evil],
        "retainer_path": evil,
        "module": evil,
        "fingerprint": evil,
        "objects": {evil: 1.0},
        "details": {
            "native": [
                {
                    "module": evil,
                    "category": evil,
                    "per_iter": 5.0,
                    "allocations": evil,
                    "frees": None,
                }
            ]
        },
        "suppressed": True,
        "suppressed_by": evil,
    }
    tests = [
        make_test(
            "t.py::test_evil[" + evil + "]",
            label=evil,
            leaks=[leak],
            message=evil,
            error=evil,
            error_iteration=evil,
            stop_reason=evil,
            origin=evil,
            probe_notes={evil: evil},
            screens={"rss": [evil]},
            diagnosis={
                "resources": {"files": [evil], "file_count": 1},
                "notes": [evil],
                "modules": [{"module": evil, "per_iter": 9.0}],
            },
        ),
        make_test(long_id),
    ]
    doc = {
        "schema": evil,
        "created": evil,
        "partial": True,
        "environment": {evil: evil, "argv": [evil, "-k", evil]},
        "config": {evil: evil, "suppress": [evil], "sources": {evil: evil}},
        "tests": tests,
    }
    page = html.render(
        doc,
        {
            "baseline": evil,
            "old": {"name": evil, "created": evil},
            "new": {"name": None, "created": evil},
            "rule": evil,
            "failed": True,
            "rows": [
                {
                    "nodeid": evil,
                    "label": evil,
                    "old_nodeid": evil,
                    "status": evil,
                    "old_rate": evil,
                    "new_rate": 5.0,
                    "delta": 5.0,
                    "delta_pct": evil,
                    "old_verdict": evil,
                    "new_verdict": "leak",
                    "failures": [evil],
                    "reason": evil,
                    "unit": evil,
                }
            ],
        },
    )
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
    # The long id is cut for display; the title attribute holds all of it, escaped.
    shown = html.esc(long_id, html.NAME_LIMIT, oneline=True)
    assert shown.endswith("…")
    assert len(html_mod.unescape(shown)) == html.NAME_LIMIT
    assert f'title="{html.esc(long_id, oneline=True)}"' in page
    assert f">{shown}</span>" in page


def test_garbage_values_do_not_break_rendering() -> None:
    weird = make_test(
        "t.py::test_weird",
        verdict="mystery",
        severity=None,
        iterations="ten",
        rounds=["a", None, 5, True],
        snapshots={
            "rss": ["x", None, True, float("nan"), float("inf"), 3.0, 7.0],
            "heap": None,
            "external": [None] * 7,
            "fds": "nope",
            "threads": [1, "2"],
        },
        trend="warm",
        growth={"rss": None, 5: {"pattern": 7}},
        findings=[None, 3, {}],
        leaks=[None, "L1", {"growth_rate": "fast"}],
        diagnosis={"resources": "none"},
        partial=True,
    )
    page = html.render(
        {"tests": [weird, None, "x", make_test("t.py::ok", verdict="ok")], "summary": "bad"}
    )
    assert_safe(page)
    assert_well_formed(page)
    assert page.count('<svg class="chart memory"') == 2


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
    page = html.render({"tests": [skip, err]})
    assert "ValueError: boom &lt;b&gt;" in page
    assert "iteration 3" in page
    assert "No measurements were recorded." in page
    assert '<svg class="chart' not in page
    assert page.index('id="t1"') < page.index('id="t0"')  # error before skipped
    assert "could not be measured" in page


def test_memory_chart_edge_cases() -> None:
    gaps = make_test(
        "t.py::g", snapshots={"rss": [1e6, None, 1.2e6, 1.3e6], "heap": [5e5, 5e5, None, 6e5]}
    )
    svg = html.memory_chart(gaps)
    rss_path = re.search(r'class="line rss" d="([^"]+)"', svg)
    assert rss_path is not None
    assert rss_path.group(1).count("M") == 2
    one = html.memory_chart(make_test("t.py::one", snapshots={"rss": [1e6], "heap": [5e5]}))
    assert '<svg class="chart memory"' in one
    flat = html.memory_chart(
        make_test("t.py::flat", snapshots={"rss": [1e6] * 5, "heap": [5e5] * 5})
    )
    assert "no change in memory" in flat
    assert html.memory_chart(make_test("t.py::none", snapshots={"rss": [None, None]})) == ""
    big = html.memory_chart(
        make_test(
            "t.py::big",
            snapshots={"rss": series(5000, 1e8, 1024.0), "heap": series(5000, 5e7, 512.0)},
        )
    )
    assert big.count("<rect x=") <= html.MAX_POINTS + 2  # thinned


def test_byte_axis_labels() -> None:
    svg = html.memory_chart(
        make_test(
            "t.py::k", snapshots={"rss": series(21, 58e6, 4144.0), "heap": series(21, 31e6, 4144.0)}
        )
    )
    labels = re.findall(r'<text class="ylab"[^>]*>([^<]+)</text>', svg)
    assert "0" in labels, labels
    assert "+80 KiB" in labels, labels
    assert html._ticks(0, 82.9)[-1] >= 82.9


def test_inline_scripts_are_allowed_by_the_csp(real_page: str) -> None:
    csp = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', real_page)
    assert csp is not None
    policy = csp.group(1)
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy.split("script-src")[1]
    for script in re.findall(r"<script>(.*?)</script>", real_page, re.S):
        digest = base64.b64encode(hashlib.sha256(script.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in policy


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(raw=st.text(min_size=1, max_size=150), other=st.text(max_size=50))
def test_any_text_is_escaped(raw: str, other: str) -> None:
    text = f"QSTARTQ{raw}QENDQ"
    leak = {
        "id": "L1",
        "type": "python_object",
        "source": text,
        "severity": "low",
        "growth_rate": 1.0,
        "evidence": [text],
        "recommendation": other,
        "stack_trace": [text],
        "retainer_path": text,
    }
    doc = {
        "tests": [
            make_test(
                "t.py::test[" + text + "]", label=other, leaks=[leak], message=text, error=text
            )
        ],
        "environment": {"argv": [text]},
    }
    page = html.render(doc, {"rows": [{"nodeid": text, "status": other, "reason": text}]})
    assert_safe(page)
    assert_well_formed(page)
    shown = re.findall(r"QSTARTQ(.*?)QENDQ", page, re.S)
    assert len(shown) >= 8
    for segment in shown:
        assert not set(segment) & set("<>\"'"), segment


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

    monkeypatch.setattr(html.os, "replace", broken)
    with pytest.raises(OSError, match="disk full"):
        html.write(target, "<p>three</p>")
    assert target.read_text(encoding="utf-8") == "<p>two</p>"
    assert sorted(p.name for p in target.parent.iterdir()) == ["report.html"]
