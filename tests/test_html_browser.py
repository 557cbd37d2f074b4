"""The HTML report in a real browser: headless Chromium loads it, runs its scripts, draws it.

Skipped when no Chromium is installed, except on CI (``CI`` set), where it fails: CI must
install it (Debian: ``apt-get install -y chromium``).
"""

from __future__ import annotations

import dataclasses
import re
import struct
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from cdp import HEADLESS_FLAGS, require_chromium
from test_html import run_report, sampled_test

from pytest_memleak.baseline import compare_runs, parse_rule
from pytest_memleak.model import LeakGroup, RunReport, from_json
from pytest_memleak.render import html

TIMEOUT_S = 60
HOSTILE = "<script>alert(1)</script>"
LONG = "w" * 300  # a parameter id with no place to break
#: The widths the page is checked at: a laptop, and a phone.
WIDTHS = (1280, 390)

SAMPLE = f"""
import pytest

SINK = []


@pytest.mark.memcheck
def test_leak():
    SINK.append(bytes(4096))


@pytest.mark.memcheck
def test_clean():
    x = [1, 2, 3]


@pytest.mark.memcheck
@pytest.mark.parametrize("v", [{HOSTILE!r}, 'say "hi" \\'there\\''])
def test_param(v):
    SINK.append(v * 500)


@pytest.mark.memcheck
@pytest.mark.parametrize("w", [{LONG!r}], ids=[{LONG!r}])
def test_long_id(w):
    x = [w]
"""


@pytest.fixture(scope="module")
def chromium() -> str:
    return require_chromium("the HTML report")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A report from a real run: a leaking test, a clean one and hostile parameter ids."""
    directory = tmp_path_factory.mktemp("browser_report")
    doc = run_report(directory, SAMPLE)
    assert any(HOSTILE in t["nodeid"] for t in doc["tests"])
    assert {t["verdict"] for t in doc["tests"]} >= {"leak", "ok"}
    return doc  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def page(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("browser_page") / "report.html"
    html.write(path, html.render(from_json(RunReport, report)))
    return path


def run_chromium(chromium: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        chromium,
        *HEADLESS_FLAGS,
        f"--user-data-dir={profile}",
        *args,
    ]
    try:
        proc = subprocess.run(
            cmd,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
            stdin=subprocess.DEVNULL,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"Chromium did not finish within {TIMEOUT_S} s: {' '.join(cmd)}")
    assert proc.returncode == 0, f"Chromium failed ({proc.returncode}):\n{proc.stderr[-3000:]}"
    return proc


class DomScan(HTMLParser):
    """Attributes of <body>, the scripts, the chart SVGs drawn (not those still in a
    <template>) and the <details> of the dumped DOM."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.body: dict[str, str | None] = {}
        self.scripts = 0
        self.charts = 0
        self.templates = 0  # how deep in <template> elements the parser is
        self.details: dict[str, dict[str, str | None]] = {}
        self.filter_hidden: bool | None = None
        self.text: list[str] = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "template":
            self.templates -= 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "template":
            self.templates += 1
        if self.templates:
            return
        if tag == "body":
            self.body = a
        elif tag == "script":
            self.scripts += 1
        elif tag == "svg" and "chart" in (a.get("class") or "").split():
            self.charts += 1
        elif tag == "details" and a.get("id"):
            self.details[a["id"] or ""] = a
        elif tag == "div" and a.get("class") == "filter":
            self.filter_hidden = "hidden" in a

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def dump_dom(chromium: str, tmp_path: Path, url: str, *args: str) -> DomScan:
    proc = run_chromium(chromium, tmp_path / "profile", *args, "--dump-dom", url)
    scan = DomScan()
    scan.feed(proc.stdout)
    scan.close()
    assert scan.body, f"no <body> in the dumped DOM:\n{proc.stdout[:2000]}\n{proc.stderr[-2000:]}"
    return scan


def lazy(report: dict[str, Any]) -> int:
    """How many sections of the report wait to be opened: those of tests that neither leak
    nor err."""
    return sum(1 for t in report["tests"] if t["verdict"] not in ("leak", "error"))


def test_page_loads_and_scripts_run(
    chromium: str, page: Path, report: dict[str, Any], tmp_path: Path
) -> None:
    scan = dump_dom(chromium, tmp_path, page.as_uri())
    assert scan.body.get("data-status") == "ok", scan.body
    assert "data-errors" not in scan.body, scan.body.get("data-errors")
    n_open = len(report["tests"]) - lazy(report)
    assert n_open >= 1
    # One memory chart per open section is drawn; the others wait in their <template>.
    assert int(scan.body.get("data-charts") or 0) == scan.charts >= n_open
    assert int(scan.body.get("data-lazy") or 0) == lazy(report) >= 2
    # Only the page's own two scripts exist: the hostile id stayed text.
    assert scan.scripts == 2
    assert any(HOSTILE in chunk for chunk in scan.text)
    assert scan.filter_hidden is False  # the script showed the filter bar


def test_anchor_opens_a_collapsed_test(
    chromium: str, page: Path, report: dict[str, Any], tmp_path: Path
) -> None:
    text = page.read_text(encoding="utf-8")
    m = re.search(r'<details class="test v-ok" id="(t\d+)"><summary>.*?</summary><template>', text)
    assert m is not None, "the clean test's section should start collapsed, its body lazy"
    before = dump_dom(chromium, tmp_path, page.as_uri())
    scan = dump_dom(chromium, tmp_path, page.as_uri() + "#" + m.group(1))
    assert "open" in scan.details[m.group(1)]
    assert "data-errors" not in scan.body
    # its body was put in place: one section fewer waits, its chart is drawn
    assert int(scan.body["data-lazy"] or 0) == lazy(report) - 1
    assert int(scan.body["data-charts"] or 0) > int(before.body["data-charts"] or 0)


@pytest.fixture(scope="module")
def wide_page(report: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The real report with every wide part: a 300-character id, a leak group, the baseline
    comparison, and a soak and a watch beside the loop's tests."""
    run = from_json(RunReport, report)
    leaking = [t for t in run.tests if t.active_leaks]
    groups = (
        LeakGroup(
            fingerprint="f" * 16,
            type="python_object",
            source=leaking[0].active_leaks[0].source,
            count=len(leaking),
            tests=tuple(t.key for t in leaking),
            holder="test_sample.SINK (list) -> [" + "9" * 120 + "] (bytes)",
            rate_min=1024.0,
            rate_max=8192.0,
        ),
    )
    old = dataclasses.replace(run, tests=run.tests[1:])
    comparison = compare_runs(old, run.tests, parse_rule("rate:10%"), old_name="old.json")
    wide = dataclasses.replace(
        run,
        tests=(*run.tests, sampled_test("soak"), sampled_test("watch")),
        groups=groups,
        comparison=comparison,
    )
    path = tmp_path_factory.mktemp("browser_wide") / "report.html"
    html.write(path, html.render(wide))
    return path


@pytest.mark.parametrize("width", WIDTHS)
def test_nothing_overflows_sideways(
    chromium: str, wide_page: Path, report: dict[str, Any], width: int, tmp_path: Path
) -> None:
    """At a laptop's and a phone's width the page is no wider than the window: wide tables
    scroll in their own box, long ids wrap. Checked as loaded, and with a lazy section (the
    long id's) opened."""
    assert any(LONG in t["nodeid"] for t in report["tests"])
    text = wide_page.read_text(encoding="utf-8")
    m = re.search(
        r'<details class="test v-ok" id="(t\d+)"><summary>(?:(?!</summary>).)*w{50}', text
    )
    assert m is not None, "the long id's section should be lazy"
    for url in (wide_page.as_uri(), wide_page.as_uri() + "#" + m.group(1)):
        scan = dump_dom(chromium, tmp_path, url, f"--window-size={width},2000")
        assert scan.body.get("data-status") == "ok", scan.body
        assert "data-errors" not in scan.body, scan.body.get("data-errors")
        assert scan.body.get("data-overflow") == "0", (url, width, scan.body)


@pytest.mark.parametrize("width", WIDTHS)
def test_screenshot(chromium: str, wide_page: Path, width: int, tmp_path: Path) -> None:
    shot = tmp_path / f"shot_{width}.png"
    run_chromium(
        chromium,
        tmp_path / "profile",
        f"--screenshot={shot}",
        f"--window-size={width},2000",
        "--hide-scrollbars",
        wide_page.as_uri(),
    )
    assert shot.is_file()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    w, h = struct.unpack(">II", data[16:24])
    assert (w, h) == (width, 2000)
    assert len(data) > 10_000, f"screenshot only {len(data)} bytes: a blank page?"
